import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import type { Endpoint, ServiceSpec } from '../../domain/instance.ts';
import { dockerClient } from '../../providers/docker/docker-client.ts';
import type { ProvisionRequest } from '../../providers/provider.ts';

/** Helpers for the Docker provider tests on the real engine, with the local image only (nothing is pulled). */
export const IMAGE = 'ctrlplane-test/busybox:1';
/** The operator's allowlist the tests' providers get: the locally imported test images. */
export const TEST_ALLOWED_IMAGES = ['docker.io/ctrlplane-test/*'];
/** The engine, through the client the provider uses (its calls always settle). */
export const docker = dockerClient(process.env.DOCKER_HOST);

/** Instance ids made by one test file, all under one tenant so leftovers of an interrupted run can be found. */
export class TestInstances {
  readonly ids: string[] = [];
  constructor(readonly tenantId: string) {}

  newId(): string {
    const id = `inst_${randomBytes(6).toString('hex')}`;
    this.ids.push(id);
    return id;
  }

  request(instanceId: string, services: ServiceSpec[], labels?: Record<string, string>): ProvisionRequest {
    return {
      instance_id: instanceId,
      tenant_id: this.tenantId,
      name: 'test',
      kind: 'deployment',
      services,
      labels,
    };
  }

  /** Removes this file's instances, and whatever an earlier run of it left under its tenant. */
  async cleanup(): Promise<void> {
    const filter = { label: ['ctrlplane.managed=true', `ctrlplane.tenant=${this.tenantId}`] };
    const leftovers = new Set(this.ids);
    for (const c of await docker.listContainers({ all: true, filters: filter }))
      leftovers.add(c.Labels['ctrlplane.instance'] ?? '');
    for (const n of await docker.listNetworks({ filters: filter }))
      leftovers.add(n.Labels?.['ctrlplane.instance'] ?? '');
    for (const v of (await docker.listVolumes({ filters: filter })).Volumes ?? [])
      leftovers.add(v.Labels?.['ctrlplane.instance'] ?? '');
    leftovers.delete('');
    for (const id of leftovers) await removeInstance(id);
  }
}

async function removeInstance(id: string): Promise<void> {
  const filter = { label: [`ctrlplane.instance=${id}`] };
  for (const c of await docker.listContainers({ all: true, filters: filter }))
    await docker
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => {});
  for (const n of await docker.listNetworks({ filters: filter }))
    await docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => {});
  for (const v of (await docker.listVolumes({ filters: filter })).Volumes ?? [])
    await docker
      .getVolume(v.Name)
      .remove()
      .catch(() => {});
}

export function service(name: string, script: string, extra: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name,
    image: IMAGE,
    resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
    command: ['/bin/sh', '-c', script],
    ...extra,
  };
}

export async function projectContainers(instanceId: string): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`ctrlplane.instance=${instanceId}`] } });
}

export async function projectVolumes(instanceId: string): Promise<Dockerode.VolumeInspectInfo[]> {
  const { Volumes } = await docker.listVolumes({ filters: { label: [`ctrlplane.instance=${instanceId}`] } });
  return Volumes ?? [];
}

/** GETs a URL, retrying while the server starts. */
export async function fetchText(url: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return await res.text();
      lastError = new Error(`HTTP ${res.status}`);
    } catch (err) {
      lastError = err;
    }
    await sleep(200);
  }
  throw new Error(`${url} did not answer: ${String(lastError)}`);
}

export function publicUrl(endpoints: Endpoint[], serviceName: string): string {
  const endpoint = endpoints.find((e) => e.public && e.service_name === serviceName);
  assert.ok(endpoint, `no public endpoint for ${serviceName}: ${JSON.stringify(endpoints)}`);
  return endpoint.url;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a value other than undefined/false. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

/** Runs a command in a running container; returns its exit code and stdout. */
export async function exec(containerName: string, cmd: string[]): Promise<{ code: number; stdout: string }> {
  const container = docker.getContainer(containerName);
  const run = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await run.start({ hijack: true, stdin: false });
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (c: Buffer) => chunks.push(c));
  docker.modem.demuxStream(stream, stdout, new PassThrough());
  await new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  const info = await run.inspect();
  return { code: info.ExitCode ?? -1, stdout: Buffer.concat(chunks).toString('utf8') };
}
