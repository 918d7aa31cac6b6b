import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ServiceSpec } from '../domain/instance.ts';
import { configFilesOf } from '../providers/docker/config-files.ts';
import { buildContainerConfig, limitsUpdate, resourceLimits } from '../providers/docker/container-config.ts';
import { dockerHealthcheck } from '../providers/docker/health-check.ts';
import {
  DEFAULT_HOST_LIMITS,
  resourceProblems,
  serviceLimitProblems,
} from '../providers/docker/host-limits.ts';
import { ImageAllowlist, parseImageName } from '../providers/docker/image-allowlist.ts';
import { pullAuthFor, registryHost } from '../providers/docker/images.ts';
import { demuxAll, dockerSince, LogDemuxer, timestampNanos } from '../providers/docker/log-stream.ts';
import { canonicalJson, specHash, specHashKey } from '../providers/docker/spec-hash.ts';
import { tarArchive } from '../providers/docker/tar.ts';
import { containerUsage, sumUsage } from '../providers/docker/usage.ts';
import { PermanentProviderError } from '../providers/provider.ts';

/** Pure parts of the Docker provider, without an engine. */

const KEY = specHashKey('k'.repeat(40));

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

const svc = (extra: Partial<ServiceSpec> & Record<string, unknown> = {}): ServiceSpec => ({
  name: 'web',
  image: 'img:1',
  resources: { cpu_millis: 250, memory_mb: 64, replicas: 1 },
  ...extra,
});

describe('log demultiplexing', () => {
  const ts1 = '2024-05-01T10:00:00.123456789Z';
  const ts2 = '2024-05-01T10:00:01.5Z';

  it('splits frames into lines with their stream and timestamp, across chunk boundaries', () => {
    const body = Buffer.concat([
      frame(1, `${ts1} hello\n`),
      frame(2, `${ts1} oops\n`),
      frame(1, `${ts2} a\r\n`),
      frame(1, `${ts2} \n`),
    ]);
    const demuxer = new LogDemuxer();
    const lines = [];
    for (let i = 0; i < body.length; i += 5) lines.push(...demuxer.push(body.subarray(i, i + 5)));
    lines.push(...demuxer.end());
    assert.deepEqual(lines, [
      { ts: ts1, stream: 'stdout', line: 'hello' },
      { ts: ts1, stream: 'stderr', line: 'oops' },
      { ts: ts2, stream: 'stdout', line: 'a' },
    ]);
  });

  it('joins a message the log driver cut, keeping its first timestamp; flushes a last line without \\n', () => {
    const lines = demuxAll(
      Buffer.concat([
        frame(1, `${ts1} part-one `),
        frame(2, `${ts1} err\n`),
        frame(1, `${ts2} part-two\n`),
        frame(1, `${ts2} tail`),
      ]),
    );
    assert.deepEqual(lines, [
      { ts: ts1, stream: 'stderr', line: 'err' },
      { ts: ts1, stream: 'stdout', line: 'part-one part-two' },
      { ts: ts2, stream: 'stdout', line: 'tail' },
    ]);
  });

  it('reads an unframed (TTY) body as stdout, and lines without a timestamp get ts ""', () => {
    assert.deepEqual(demuxAll(`${ts1} one\nplain\n`), [
      { ts: ts1, stream: 'stdout', line: 'one' },
      { ts: '', stream: 'stdout', line: 'plain' },
    ]);
  });

  it('rejects a malformed frame header', () => {
    const demuxer = new LogDemuxer();
    demuxer.push(frame(1, `${ts1} ok\n`));
    assert.throws(() => demuxer.push(Buffer.from([9, 9, 9, 9, 0, 0, 0, 1, 65])), /malformed/);
  });

  it('converts RFC 3339 times to the daemon since format, keeping nanoseconds', () => {
    assert.equal(dockerSince('2024-05-01T10:00:00Z'), '1714557600.000000000');
    assert.equal(dockerSince('2024-05-01T10:00:00.5Z'), '1714557600.500000000');
    assert.equal(dockerSince('2024-05-01T12:00:00.123456789+02:00'), '1714557600.123456789');
    assert.throws(() => dockerSince('yesterday'));
    assert.ok(timestampNanos('2024-05-01T10:00:00.5Z') > timestampNanos('2024-05-01T10:00:00.45Z'));
  });
});

describe('tar archive', () => {
  it('is read by tar(1), with nested and very long paths', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-tar-'));
    try {
      const long = `${'deep/'.repeat(40)}file.txt`;
      const archive = tarArchive([
        { path: 'etc/app/config.json', content: Buffer.from('{"a":1}\n') },
        { path: long, content: Buffer.from('long\n'), mode: 0o600 },
        { path: 'empty', content: Buffer.alloc(0) },
      ]);
      assert.equal(archive.length % 512, 0);
      writeFileSync(join(dir, 'a.tar'), archive);
      execFileSync('tar', ['-xf', 'a.tar'], { cwd: dir });
      assert.equal(readFileSync(join(dir, 'etc/app/config.json'), 'utf8'), '{"a":1}\n');
      assert.equal(readFileSync(join(dir, long), 'utf8'), 'long\n');
      assert.equal(readFileSync(join(dir, 'empty'), 'utf8'), '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('config files', () => {
  it('renders by format and resolves a directory path with the name', () => {
    const files = configFilesOf(
      svc({
        config_files: [
          { name: 'a.txt', path: '/etc/a.txt', format: 'text', content: 'plain' },
          { name: 'b.json', path: '/etc/app/', format: 'json', content: { x: [1, 2] } },
          { name: 'c.yaml', path: '/etc/c.yaml', format: 'yaml', content: { y: 'z' } },
          { name: 'd.env', path: '/etc/d.env', format: 'env', content: { K: 'V' } },
        ],
      }),
    );
    assert.deepEqual(
      files.map((f) => [f.path, f.content.toString()]),
      [
        ['/etc/a.txt', 'plain'],
        ['/etc/app/b.json', '{\n  "x": [\n    1,\n    2\n  ]\n}\n'],
        ['/etc/c.yaml', 'y: z\n'],
        ['/etc/d.env', 'K=V\n'],
      ],
    );
    assert.deepEqual(configFilesOf(svc()), []);
    assert.throws(
      () =>
        configFilesOf(
          svc({
            config_files: [{ name: 'x', path: '/a', content: 'x' }, { path: '/a', content: 'y' } as never],
          }),
        ),
      PermanentProviderError,
    );
  });

  it('changes the spec hash when the content changes', () => {
    const plan = (content: string) =>
      buildContainerConfig({
        instanceId: 'inst_1',
        service: svc({ config_files: [{ name: 'a', path: '/a', content }] }),
        containerName: 'cp-inst_1-web',
        networkName: 'cp-inst_1-net',
        labels: {},
        limits: DEFAULT_HOST_LIMITS,
        specHashKey: KEY,
      });
    assert.notEqual(
      plan('one').config.Labels?.['ctrlplane.spec-hash'],
      plan('two').config.Labels?.['ctrlplane.spec-hash'],
    );
    assert.equal(
      plan('one').config.Labels?.['ctrlplane.spec-hash'],
      plan('one').config.Labels?.['ctrlplane.spec-hash'],
    );
  });
});

describe('resource limits', () => {
  it('leaves the limits out of the spec hash', () => {
    const plan = (memory_mb: number, cpu_millis: number) =>
      buildContainerConfig({
        instanceId: 'inst_1',
        service: svc({ resources: { cpu_millis, memory_mb, replicas: 1 } }),
        containerName: 'cp-inst_1-web',
        networkName: 'cp-inst_1-net',
        labels: {},
        limits: DEFAULT_HOST_LIMITS,
        specHashKey: KEY,
      });
    const small = plan(64, 250);
    const big = plan(128, 1000);
    assert.equal(small.config.Labels?.['ctrlplane.spec-hash'], big.config.Labels?.['ctrlplane.spec-hash']);
    assert.equal(big.config.HostConfig?.Memory, 128 * 1024 * 1024);
    assert.equal(big.config.HostConfig?.NanoCpus, 1_000_000_000);
  });

  it('updates limits in place; 0 or absent takes the operator default, never "no limit"', () => {
    const mib = 1024 * 1024;
    const limits = { ...DEFAULT_HOST_LIMITS, defaultMemoryMb: 300, defaultCpuMillis: 700 };
    const current = { Memory: 64 * mib, MemorySwap: 64 * mib, NanoCpus: 250_000_000 };
    assert.equal(
      limitsUpdate(current, resourceLimits({ memory_mb: 64, cpu_millis: 250 }, limits)),
      undefined,
    );
    assert.deepEqual(limitsUpdate(current, resourceLimits({ memory_mb: 128, cpu_millis: 250 }, limits)), {
      Memory: 128 * mib,
      MemorySwap: 128 * mib,
    });
    assert.deepEqual(resourceLimits({ memory_mb: 0, cpu_millis: 0 }, limits), {
      Memory: 300 * mib,
      MemorySwap: 300 * mib,
      NanoCpus: 700_000_000,
    });
    assert.deepEqual(
      resourceLimits(undefined, limits),
      resourceLimits({ memory_mb: 0, cpu_millis: 0 }, limits),
    );
  });

  it('gives every container the pids limit, no-new-privileges, log rotation and the default limits', () => {
    const limits = { ...DEFAULT_HOST_LIMITS, pidsLimit: 99, logMaxSize: '5m', logMaxFile: 2 };
    const { config } = buildContainerConfig({
      instanceId: 'inst_1',
      service: svc({ resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 }, ports: [{ container: 80 }] }),
      containerName: 'cp-inst_1-web',
      networkName: 'cp-inst_1-net',
      labels: {},
      limits,
      specHashKey: KEY,
    });
    const host = config.HostConfig ?? {};
    assert.equal(host.PidsLimit, 99);
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges:true']);
    assert.deepEqual(host.LogConfig, { Type: 'json-file', Config: { 'max-size': '5m', 'max-file': '2' } });
    assert.equal(host.Memory, 512 * 1024 * 1024);
    assert.equal(host.NanoCpus, 1_000_000_000);
    // No host port asked for: a free one of the operator's range, on the configured address only.
    assert.deepEqual(host.PortBindings, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '30000-32767' }] });
  });

  it('refuses, naming the field, what is above the ceilings, a host port outside the range and a volume size', () => {
    const limits = { ...DEFAULT_HOST_LIMITS, maxMemoryMb: 1024, maxCpuMillis: 2000 };
    const problems = serviceLimitProblems(
      svc({
        resources: { cpu_millis: 2001, memory_mb: 1025, replicas: 1 },
        ports: [
          { container: 80, host: 80 },
          { container: 81, host: 30001 },
          { container: 82, host: 40000 },
        ],
        volumes: [{ name: 'data', mount_path: '/data', size_mb: 100 }],
      }),
      limits,
    );
    assert.deepEqual(
      problems.map((p) => p.path.join('.')),
      ['resources.cpu_millis', 'resources.memory_mb', 'ports.0.host', 'ports.2.host', 'volumes.0.size_mb'],
    );
    assert.match(problems[1]?.message ?? '', /at most 1024/);
    assert.match(problems[2]?.message ?? '', /30000-32767/);
    assert.deepEqual(resourceProblems({ memory_mb: 1024, cpu_millis: 2000 }, limits), []);
  });
});

describe('spec hash', () => {
  it('is an HMAC under the install key: another key gives another hash, the plain sha256 is not it', () => {
    const config = { Image: 'img:1', Env: ['PASSWORD=hunter2'] };
    const a = specHash(KEY, config);
    assert.equal(a, specHash(specHashKey('k'.repeat(40)), config));
    assert.notEqual(a, specHash(specHashKey('x'.repeat(40)), config));
    for (const version of ['v2', 'v3']) {
      const plain = createHash('sha256')
        .update(`${version}\n${canonicalJson(config)}`)
        .digest('hex');
      assert.notEqual(a, plain, 'not guessable without the key');
    }
    assert.throws(() => specHashKey('short'), /at least 32/);
  });
});

describe('image allowlist', () => {
  it('normalises image names as Docker does', () => {
    assert.deepEqual(parseImageName('nginx'), {
      registry: 'docker.io',
      repository: 'library/nginx',
      tag: 'latest',
    });
    assert.deepEqual(parseImageName('ctrlplane-test/busybox:1'), {
      registry: 'docker.io',
      repository: 'ctrlplane-test/busybox',
      tag: '1',
    });
    assert.deepEqual(parseImageName('localhost:5000/app@sha256:abc'), {
      registry: 'localhost:5000',
      repository: 'app',
      digest: 'sha256:abc',
    });
    assert.equal(parseImageName(`sha256:${'a'.repeat(64)}`), undefined);
    assert.equal(parseImageName('a'.repeat(64)), undefined);
  });

  it('matches repositories, exact tags and prefixes, and nothing else', () => {
    const list = new ImageAllowlist([
      'docker.io/library/nginx',
      'ghcr.io/acme/*',
      'registry.example.com/team/app:2',
      'quay.io/*',
    ]);
    for (const ok of [
      'nginx',
      'nginx:1.27',
      'docker.io/library/nginx:1',
      'ghcr.io/acme/api:3',
      'quay.io/x/y:1',
    ])
      assert.equal(list.allows(ok), true, ok);
    for (const no of [
      'nginxx',
      'evil/nginx',
      'ghcr.io/acme',
      'ghcr.io/acmeevil/x:1',
      'registry.example.com/team/app:3',
      'registry.example.com/team/app',
      `sha256:${'a'.repeat(64)}`,
    ])
      assert.equal(list.allows(no), false, no);
    assert.throws(() => new ImageAllowlist(['']), /not an image name/);
  });
});

describe('health check command', () => {
  it('uses wget/curl with a path and nc without, with defaults for unset durations', () => {
    const http = dockerHealthcheck(svc({ health_check: { port: 8080, path: "it's" } }));
    assert.deepEqual(http?.Test, [
      'CMD-SHELL',
      "wget -q -O /dev/null 'http://127.0.0.1:8080/it'\\''s' || curl -fsS -o /dev/null 'http://127.0.0.1:8080/it'\\''s'",
    ]);
    assert.equal(http?.Interval, 10_000_000_000);
    assert.equal(http?.Timeout, 5_000_000_000);
    assert.equal(http?.Retries, 3);
    const tcp = dockerHealthcheck(svc({ health_check: { port: 5432, interval: 2_000_000_000, retries: 5 } }));
    assert.match(tcp?.Test?.[1] ?? '', /^nc -z 127\.0\.0\.1 5432 /);
    assert.equal(tcp?.Interval, 2_000_000_000);
    assert.equal(tcp?.Retries, 5);
    assert.equal(dockerHealthcheck(svc()), undefined);
  });
});

describe('registry credentials', () => {
  it('finds the registry of an image reference', () => {
    assert.equal(registryHost('busybox'), 'docker.io');
    assert.equal(registryHost('library/busybox:1'), 'docker.io');
    assert.equal(registryHost('index.docker.io/library/busybox'), 'docker.io');
    assert.equal(registryHost('ghcr.io/org/app:1'), 'ghcr.io');
    assert.equal(registryHost('localhost:5000/app'), 'localhost:5000');
    assert.equal(registryHost('localhost/app'), 'localhost');
  });

  it('picks the credentials of that registry', () => {
    const auth = {
      'ghcr.io': { username: 'u', password: 'p' },
      'docker.io': { username: 'hub', password: 'h' },
    };
    assert.deepEqual(pullAuthFor('ghcr.io/org/app:1', auth), {
      username: 'u',
      password: 'p',
      serveraddress: 'ghcr.io',
    });
    assert.deepEqual(pullAuthFor('busybox', auth), {
      username: 'hub',
      password: 'h',
      serveraddress: 'https://index.docker.io/v1/',
    });
    assert.equal(pullAuthFor('quay.io/x/y', auth), undefined);
    assert.equal(pullAuthFor('busybox', undefined), undefined);
  });
});

describe('usage', () => {
  it('computes cpu%, memory without the page cache and network per container, and sums them', () => {
    const mib = 1024 * 1024;
    const one = containerUsage({
      cpu_stats: { cpu_usage: { total_usage: 2_000 }, system_cpu_usage: 20_000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 1_000 }, system_cpu_usage: 10_000 },
      memory_stats: { usage: 30 * mib, limit: 64 * mib, stats: { total_inactive_file: 10 * mib } },
      networks: { eth0: { rx_bytes: mib, tx_bytes: 2 * mib }, eth1: { rx_bytes: mib, tx_bytes: 0 } },
    });
    assert.deepEqual(one, {
      cpuPercent: 20,
      memoryUsedBytes: 20 * mib,
      memoryLimitBytes: 64 * mib,
      rxBytes: 2 * mib,
      txBytes: 2 * mib,
    });
    const two = containerUsage({ memory_stats: { usage: 5 * mib, limit: 32 * mib } });
    assert.equal(two.cpuPercent, 0);
    assert.deepEqual(sumUsage([one, two]), {
      cpu_percent: 20,
      memory_used_mb: 25,
      memory_limit_mb: 96,
      network_in_mb: 2,
      network_out_mb: 2,
    });
    assert.equal(sumUsage([one, two], 80 * mib).memory_limit_mb, 80, 'capped at the host memory');
  });
});
