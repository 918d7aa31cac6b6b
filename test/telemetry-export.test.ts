import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';
import { eventually } from './support/http.ts';

interface Received {
  path: string;
  contentType: string;
  body: string;
}

/** `npm run api` as a process, with or without a collector; resolves with its URL once it listens. */
function startApiProcess(extraEnv: Record<string, string>) {
  const { NODE_OPTIONS: _dropped, OTEL_EXPORTER_OTLP_ENDPOINT: _otel, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
    cwd: REPO_ROOT,
    env: {
      ...inherited,
      PORT: '0',
      HOST: '127.0.0.1',
      CTRLPLANE_JWT_SECRET: `test-secret-${randomUUID()}`,
      // The request log lines are what is checked.
      LOG_LEVEL: 'info',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const url = new Promise<string>((resolve, reject) => {
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const parts = (pending + chunk.toString('utf8')).split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        const parsed = JSON.parse(line);
        if (parsed.msg === 'api listening') resolve(parsed.url);
      }
    });
    child.once('exit', (code) => reject(new Error(`the API exited (${code}) before listening`)));
    setTimeout(
      () => reject(new Error(`the API did not listen within 60 s: ${lines.join('\n')}`)),
      60_000,
    ).unref();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, url, lines, exited };
}

// A stand-in OTLP/HTTP collector on loopback (no real collector runs here); the API is the real process.
describe('OTLP export happens when OTEL_EXPORTER_OTLP_ENDPOINT is set, and not otherwise', () => {
  const received: Received[] = [];
  let collector: Server;
  let endpoint: string;

  before(async () => {
    collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          path: req.url ?? '',
          contentType: String(req.headers['content-type'] ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => collector.close(() => resolve())));

  it("sends the API's request spans to <endpoint>/v1/traces, and the request's log line has its trace id", async () => {
    const api = startApiProcess({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
    try {
      const url = await api.url;
      const res = await fetch(`${url}/healthz`);
      assert.equal(res.status, 200);
    } finally {
      api.child.kill('SIGTERM');
    }
    assert.equal(await api.exited, 0);
    // Shutdown flushes what the batch processor still held.
    const exported = await eventually('the spans at the collector', async () =>
      received.find((r) => r.body.includes('GET /healthz')),
    );
    assert.equal(exported.path, '/v1/traces');
    assert.match(exported.body, /ctrlplane-api/, 'the service name');
    const traceId = /"traceId":"([0-9a-f]{32})"/.exec(exported.body)?.[1];
    assert.ok(traceId, exported.body.slice(0, 300));
    const logged = api.lines.map((l) => JSON.parse(l)).find((l) => l.req?.url === '/healthz');
    assert.equal(logged?.trace_id, traceId, 'the request log line carries the trace id');
  });

  it('exports nothing and writes no trace ids without it', async () => {
    const before = received.length;
    const api = startApiProcess({});
    try {
      const url = await api.url;
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
    } finally {
      api.child.kill('SIGTERM');
    }
    assert.equal(await api.exited, 0);
    assert.equal(received.length, before, 'nothing reached the collector');
    const logged = api.lines.map((l) => JSON.parse(l)).find((l) => l.req?.url === '/healthz');
    assert.ok(logged, 'the request was logged');
    assert.equal(logged.trace_id, undefined);
  });
});
