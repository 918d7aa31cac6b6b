import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DockerProvider } from '../providers/docker/docker-provider.ts';
import { timestampNanos } from '../providers/docker/log-stream.ts';
import { type LogLine, type LogOptions, PermanentProviderError } from '../providers/provider.ts';
import {
  docker,
  IMAGE,
  service,
  TEST_ALLOWED_IMAGES,
  TestInstances,
  waitFor,
} from './support/docker-fixtures.ts';

/** Logs of a multi-service instance on the real engine: per service, in order, since/tail, follow. */
const provider = new DockerProvider({ docker, allowedImages: TEST_ALLOWED_IMAGES, stopTimeoutSeconds: 1 });
const instances = new TestInstances('ten_dockerlogs');
const RFC3339_NANO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,9}Z$/;

async function collect(instanceId: string, options: LogOptions): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  for await (const line of provider.logs(instanceId, options)) lines.push(line);
  return lines;
}

const text = (lines: LogLine[], stream?: LogLine['stream']) =>
  lines.filter((l) => !stream || l.stream === stream).map((l) => l.line);

before(async () => {
  await docker.getImage(IMAGE).inspect();
  await instances.cleanup();
});
after(() => instances.cleanup());

describe('logs', () => {
  const id = instances.newId();

  before(async () => {
    await provider.provision(
      instances.request(id, [
        service('app', 'echo main-started; exec sleep 3600'),
        service(
          'talker',
          'for i in 1 2 3 4 5; do echo out-$i; echo err-$i >&2; done; sleep 1.2; ' +
            'echo late-1; echo late-2 >&2; echo late-3; exec sleep 3600',
          { role: 'sidecar' },
        ),
        service('ticker', 'i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done', {
          role: 'sidecar',
        }),
      ]),
    );
    await waitFor('the talker to finish talking', async () =>
      text(await collect(id, { service_name: 'talker' })).includes('late-3'),
    );
  });

  it('serves each service separately: the main one by default, another by name', async () => {
    const main = await collect(id, {});
    assert.deepEqual(main, [{ ts: main[0]?.ts ?? '', stream: 'stdout', line: 'main-started' }]);
    assert.match(main[0]?.ts ?? '', RFC3339_NANO);
    assert.deepEqual(text(await collect(id, { service_name: 'app' })), ['main-started']);

    const talker = await collect(id, { service_name: 'talker' });
    assert.ok(!text(talker).some((l) => l === 'main-started' || l.startsWith('tick-')));
    assert.deepEqual(text(talker, 'stdout'), [
      'out-1',
      'out-2',
      'out-3',
      'out-4',
      'out-5',
      'late-1',
      'late-3',
    ]);
    assert.deepEqual(text(talker, 'stderr'), ['err-1', 'err-2', 'err-3', 'err-4', 'err-5', 'late-2']);
    for (const line of talker) assert.match(line.ts, RFC3339_NANO);
    for (const stream of ['stdout', 'stderr'] as const) {
      const ts = talker.filter((l) => l.stream === stream).map((l) => timestampNanos(l.ts));
      assert.deepEqual(
        ts,
        [...ts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
        `${stream} in time order`,
      );
    }
    const firstLate = talker.findIndex((l) => l.line.startsWith('late-'));
    assert.equal(firstLate, 10, 'the ten early lines come before the late ones');
  });

  it('refuses an unknown service, naming it', async () => {
    await assert.rejects(collect(id, { service_name: 'nope' }), (err: unknown) => {
      assert.ok(err instanceof PermanentProviderError);
      assert.equal(err.code, 'invalid_request');
      assert.match(err.message, /no service "nope"/);
      return true;
    });
    await assert.rejects(
      collect(instances.newId(), { service_name: 'app' }),
      (err: unknown) => err instanceof PermanentProviderError && err.code === 'invalid_request',
    );
    assert.deepEqual(await collect(instances.newId(), {}), [], 'an instance without containers: no lines');
  });

  it('honours tail and since', async () => {
    const all = await collect(id, { service_name: 'talker' });
    const tail = await collect(id, { service_name: 'talker', tail: 3 });
    assert.deepEqual(text(tail).sort(), ['late-1', 'late-2', 'late-3']);
    assert.deepEqual(await collect(id, { service_name: 'talker', tail: 0 }), all, 'tail 0: everything');

    const late = all.filter((l) => l.line.startsWith('late-'));
    const since = late.map((l) => l.ts).sort((a, b) => (timestampNanos(a) < timestampNanos(b) ? -1 : 1))[0];
    assert.ok(since);
    const fromSince = await collect(id, { service_name: 'talker', since });
    assert.deepEqual(text(fromSince).sort(), ['late-1', 'late-2', 'late-3'], 'since is inclusive');
    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.deepEqual(await collect(id, { service_name: 'talker', since: future }), []);
    await assert.rejects(
      collect(id, { service_name: 'talker', since: 'yesterday' }),
      (err: unknown) => err instanceof PermanentProviderError && err.code === 'invalid_request',
    );
  });

  it('follows new lines until aborted', async () => {
    const controller = new AbortController();
    const lines: LogLine[] = [];
    const started = Date.now();
    for await (const line of provider.logs(
      id,
      { service_name: 'ticker', follow: true, tail: 1 },
      { signal: controller.signal },
    )) {
      lines.push(line);
      if (lines.length === 4) controller.abort();
    }
    assert.equal(lines.length, 4, 'the iteration ends at the abort, without an error');
    const numbers = lines.map((l) => Number(l.line.replace('tick-', '')));
    assert.deepEqual(
      numbers,
      numbers.map((_, i) => (numbers[0] ?? 0) + i),
      'consecutive ticks',
    );
    assert.ok(Date.now() - started >= 350, 'three new lines arrived while following');
  });

  it('follow ends when the container stops', async () => {
    const lines: LogLine[] = [];
    const done = (async () => {
      for await (const line of provider.logs(id, { service_name: 'ticker', follow: true, tail: 1 }))
        lines.push(line);
    })();
    await waitFor('a followed line', async () => lines.length > 1);
    await docker.getContainer(`cp-${id}-ticker`).stop({ t: 1 });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('follow did not end')), 10_000);
      }),
    ]).finally(() => clearTimeout(timer));
    assert.ok(lines.length > 1);
  });
});
