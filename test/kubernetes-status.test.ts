/**
 * What the Kubernetes provider reads back — status, logs, resource usage — and how it behaves when the API server
 * fails, against the run's REAL cluster (test/support/kubernetes.ts), each test in a namespace of its own.
 *
 * What is real: the pods (made by the real ReplicaSet controller, admitted or refused by the real ResourceQuota
 * admission, scheduled by the real scheduler onto kwok's node, and reported by kwok as a kubelet would: Running and
 * Ready, or — for two test images, on the local control plane only — a crash loop or an image pull error, see
 * scripts/k8s-test-cluster/kwok-stages.yaml); the pod log endpoint (the real API server proxies it to kwok's
 * kubelet endpoint on 127.0.0.1, which serves the files the test names in kwok Logs objects); 404 discovery of an
 * absent metrics.k8s.io; the 409 of a conflicting write.
 * What stands in: metrics-server cannot run here (it scrapes kubelets, and the API server could only reach it
 * through a Service IP), so the summing test serves metrics.k8s.io from a CRD it applies and fills PodMetrics
 * objects in as metrics-server would; and a loopback proxy (test/support/kubernetes-fault-proxy.ts) injects the
 * 5xx answers and dropped connections.
 * On another cluster (KUBECONFIG), the tests that need kwok (crash loop, logs) or the metrics stand-in are not
 * registered.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiException, KubeConfig, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import type { ServiceSpec } from '../domain/instance.ts';
import { KubernetesProvider } from '../providers/kubernetes/index.ts';
import { streamPodLog } from '../providers/kubernetes/log-stream.ts';
import { PermanentProviderError, type ProvisionRequest } from '../providers/provider.ts';
import {
  Cluster,
  CRASH_LOOP_IMAGE,
  eventually,
  IMAGE_PULL_ERROR_IMAGE,
  LOCAL_CONTROL_PLANE,
  nameOf,
  newInstanceId,
  testKubeConfig,
} from './support/kubernetes.ts';
import { KubernetesFaultProxy } from './support/kubernetes-fault-proxy.ts';

const IMAGE = 'registry.k8s.io/pause:3.9';
const TENANT = 'ten_test';
const cluster = new Cluster(testKubeConfig());

function request(instanceId: string, services: ServiceSpec[]): ProvisionRequest {
  return { instance_id: instanceId, tenant_id: TENANT, name: 'test', kind: 'deployment', services };
}

function services(replicas: number, images: { web?: string; proxy?: string } = {}): ServiceSpec[] {
  return [
    {
      name: 'web',
      image: images.web ?? IMAGE,
      resources: { cpu_millis: 250, memory_mb: 64, replicas },
      ports: [{ container: 8080 }],
    },
    {
      name: 'proxy',
      image: images.proxy ?? IMAGE,
      role: 'sidecar',
      resources: { cpu_millis: 100, memory_mb: 32, replicas: 1 },
    },
  ];
}

/** `promise`, or a failure after `ms` (a hang is a failure, not a stuck test). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not settled within ${ms}ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A namespace and a provider writing into it, for one describe block. */
function namespaced(options: { provider?: (kc: KubeConfig, ns: string) => KubernetesProvider } = {}) {
  const scope = {
    ns: '',
    provider: undefined as unknown as KubernetesProvider,
    dispose: async () => {},
  };
  before(async () => {
    const namespace = await cluster.namespace();
    scope.ns = namespace.name;
    scope.dispose = namespace.dispose;
    scope.provider =
      options.provider?.(cluster.kc, namespace.name) ??
      new KubernetesProvider({
        kubeConfig: cluster.kc,
        namespacePerTenant: false,
        namespace: namespace.name,
        helm: false,
      });
  });
  after(() => scope.dispose());
  return scope;
}

async function runningPods(ns: string, id: string, count: number): Promise<string[]> {
  let names: string[] = [];
  await eventually(async () => {
    const pods = (await cluster.pods(ns, id)).filter(
      (p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running',
    );
    names = pods.map((p) => p.metadata?.name ?? '');
    return pods.length === count;
  }, `${count} running pods of ${id}`);
  return names;
}

describe('Kubernetes provider — status from real pods (ReplicaSet controller, ResourceQuota, kwok node)', () => {
  const scope = namespaced();

  it('none admitted yet → provisioning, some ready → starting, all ready → running; stop → stopped', async () => {
    const { ns, provider } = scope;
    // The namespace's quota admits no pod at first, then one, then two: the real admission plugin refuses the
    // ReplicaSet controller's creates until there is room.
    const quota = (pods: string) =>
      cluster.apply({
        apiVersion: 'v1',
        kind: 'ResourceQuota',
        metadata: { name: 'pods', namespace: ns },
        spec: { hard: { pods } },
      } as KubernetesObject);
    await quota('0');
    await eventually(async () => {
      const live = await cluster.read<KubernetesObject & { status?: { hard?: Record<string, string> } }>(
        'v1',
        'ResourceQuota',
        'pods',
        ns,
      );
      return live?.status?.hard?.pods === '0';
    }, 'the quota in force');

    const id = newInstanceId();
    await provider.provision(
      request(id, [
        ...services(2),
        {
          name: 'migrate',
          image: IMAGE,
          role: 'init',
          resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
        },
      ]),
    );
    // The ReplicaSet exists and reports that the quota refused its pods.
    await eventually(async () => {
      const sets = await cluster.list<KubernetesObject & { status?: { conditions?: { type: string }[] } }>(
        'apps/v1',
        'ReplicaSet',
        ns,
        `ctrlplane.io/instance-id=${id}`,
      );
      return sets.some((rs) => rs.status?.conditions?.some((c) => c.type === 'ReplicaFailure'));
    }, 'the quota refusing the pods');
    let status = await provider.status(id);
    assert.equal(status.state, 'provisioning');
    assert.equal(status.ready, false);
    assert.equal(status.message, '0/2 replicas ready, no pods yet');
    assert.equal(status.endpoints[0]?.port, 8080);

    await quota('1');
    await eventually(async () => (await provider.status(id)).state === 'starting', 'state starting');
    status = await provider.status(id);
    assert.equal(status.message, '1/2 replicas ready');
    assert.equal(status.ready, true);

    await quota('10');
    await eventually(async () => (await provider.status(id)).state === 'running', 'state running', 90_000);
    status = await provider.status(id);
    assert.equal(status.message, '2/2 replicas ready');
    assert.equal(status.services?.web?.state, 'running');
    assert.equal(status.services?.proxy?.state, 'running');
    assert.equal(status.services?.migrate?.state, 'stopped'); // the init container completed
    assert.match(status.services?.web?.provider_ref ?? '', new RegExp(`^pod/${nameOf(id)}-`));
    assert.ok(status.started_at);

    await provider.stop(id);
    await eventually(async () => (await provider.status(id)).state === 'stopped', 'state stopped');
    assert.deepEqual(await cluster.pods(ns, id), []);
    assert.equal((await provider.status(id)).message, 'scaled to 0 replicas');
  });

  it('an image pull error fails the status and names it and the container', async () => {
    const { provider } = scope;
    const id = newInstanceId();
    await provider.provision(request(id, services(1, { proxy: IMAGE_PULL_ERROR_IMAGE })));
    // kwok reports ErrImagePull; a real kubelet reports ErrImagePull, then ImagePullBackOff.
    await eventually(async () => (await provider.status(id)).state === 'failed', 'state failed', 180_000);
    const status = await provider.status(id);
    assert.match(status.message ?? '', /ErrImagePull|ImagePullBackOff/);
    assert.match(status.message ?? '', /container proxy/);
    assert.equal(status.services?.proxy?.state, 'failed');
    assert.equal(status.ready, false);
  });

  if (LOCAL_CONTROL_PLANE) {
    it('a crash loop fails the status and names the reason, the container and the restarts', async () => {
      const { provider } = scope;
      const id = newInstanceId();
      await provider.provision(request(id, services(1, { web: CRASH_LOOP_IMAGE })));
      await eventually(async () => (await provider.status(id)).state === 'failed', 'state failed');
      const status = await provider.status(id);
      assert.match(status.message ?? '', /CrashLoopBackOff: container web of pod \S+: back-off 40s/);
      assert.equal(status.restarts, 3);
      assert.equal(status.services?.web?.state, 'failed');
      assert.equal(status.services?.web?.restarts, 3);
      assert.equal(status.services?.proxy?.state, 'running');
    });
  }
});

if (LOCAL_CONTROL_PLANE) {
  describe('Kubernetes provider — logs through the API server (kwok serves the kubelet log endpoint)', () => {
    const scope = namespaced();
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ctrlplane-kwok-logs-'));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    /** A CRI log line, as a container runtime writes it (kwok reads the file as the kubelet would). */
    const cri = (text: string, at = new Date()) =>
      `${at.toISOString().replace('Z', '000000Z')} stdout F ${text}\n`;

    /** Files for the containers of a pod, named to kwok by a Logs object; the pod's name. */
    async function withLogs(
      id: string,
      lines: Record<string, string[]>,
    ): Promise<{ pod: string; files: Record<string, string> }> {
      const [pod] = await runningPods(scope.ns, id, 1);
      assert.ok(pod);
      const files: Record<string, string> = {};
      for (const [container, content] of Object.entries(lines)) {
        files[container] = join(dir, `${pod}-${container}.log`);
        await writeFile(files[container], content.map((l) => cri(l)).join(''));
      }
      await cluster.apply({
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'Logs',
        metadata: { name: pod, namespace: scope.ns },
        spec: {
          logs: Object.entries(files).map(([container, logsFile]) => ({
            containers: [container],
            logsFile,
            follow: true,
          })),
        },
      } as KubernetesObject);
      // kwok picks the Logs object up from its watch.
      await eventually(async () => {
        try {
          for await (const _ of streamPodLog(cluster.kc, { namespace: scope.ns, pod, container: 'web' }, {}))
            return true;
          return false;
        } catch {
          return false;
        }
      }, 'kwok serving the log files');
      return { pod, files };
    }

    it('logs of a named container with tail, and of the main one by default; an unknown service is refused', async () => {
      const { provider } = scope;
      const id = newInstanceId();
      await provider.provision(request(id, services(1)));
      await withLogs(id, {
        web: [1, 2, 3, 4, 5].map((i) => `web line ${i}`),
        proxy: ['proxy line 1', 'proxy line 2'],
      });

      const lines = [];
      for await (const l of provider.logs(id, { service_name: 'proxy', tail: 1 })) lines.push(l);
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.line, 'proxy line 2');
      assert.equal(lines[0]?.stream, 'stdout');
      assert.match(lines[0]?.ts ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/);

      const main = [];
      for await (const l of provider.logs(id, { tail: 3 })) main.push(l.line);
      assert.deepEqual(main, ['web line 3', 'web line 4', 'web line 5']);

      const all = [];
      for await (const l of provider.logs(id, {})) all.push(l.line);
      assert.equal(all.length, 5);

      await assert.rejects(
        (async () => {
          for await (const _ of provider.logs(id, { service_name: 'nope' })) void _;
        })(),
        (err: unknown) => err instanceof PermanentProviderError && err.code === 'invalid_request',
      );
    });

    it('logs follow new lines as they are written, until the signal aborts', async () => {
      const { provider } = scope;
      const id = newInstanceId();
      await provider.provision(request(id, services(1)));
      const { files } = await withLogs(id, { web: ['before'] });
      const abort = new AbortController();
      const seen: string[] = [];
      const reading = (async () => {
        for await (const l of provider.logs(id, { follow: true }, { signal: abort.signal })) {
          seen.push(l.line);
          if (seen.length === 1) await appendFile(files.web ?? '', cri('after 1') + cri('after 2'));
          if (seen.length === 3) abort.abort();
        }
      })();
      await within(reading, 30_000);
      assert.deepEqual(seen, ['before', 'after 1', 'after 2']);
    });

    it('an abort while the request is being made ends the stream; so does a dropped connection', async () => {
      const { provider, ns } = scope;
      const id = newInstanceId();
      await provider.provision(request(id, services(1)));
      const { pod } = await withLogs(id, { web: ['one'] });
      const target = { namespace: ns, pod, container: 'web' };

      // Aborted after the call started, before client-node's Log.log has its answer.
      const abort = new AbortController();
      const early = streamPodLog(cluster.kc, target, { follow: true }, abort.signal);
      const first = early.next();
      abort.abort();
      assert.deepEqual(await within(first, 5000), { done: true, value: undefined });

      // The connection of a followed log breaks: the stream ends instead of waiting forever.
      const proxy = await new KubernetesFaultProxy(cluster.kc).start();
      try {
        const lines: string[] = [];
        const reading = (async () => {
          for await (const l of streamPodLog(proxy.kubeConfig(), target, { follow: true })) {
            lines.push(l.line);
            if (lines.length === 1) proxy.dropConnections();
          }
        })();
        await within(reading, 5000);
        assert.deepEqual(lines, ['one']);
      } finally {
        await proxy.stop();
      }
    });
  });
}

describe('Kubernetes provider — resources', () => {
  const scope = namespaced();
  const ZERO = { cpu_percent: 0, memory_used_mb: 0, memory_limit_mb: 0, network_in_mb: 0, network_out_mb: 0 };

  it('no pods (stopped): logs yield nothing and resources are zero', async () => {
    const { provider, ns } = scope;
    const id = newInstanceId();
    await provider.provision(request(id, services(1)));
    await provider.stop(id);
    await eventually(async () => (await cluster.pods(ns, id)).length === 0, 'no pods');
    const lines = [];
    for await (const l of provider.logs(id, {})) lines.push(l);
    assert.deepEqual(lines, []);
    assert.deepEqual(await provider.resources(id), ZERO);
  });

  if (LOCAL_CONTROL_PLANE) {
    it('zero while metrics.k8s.io is not served (404), summed over the pods once it answers', async () => {
      const { provider, ns } = scope;
      const id = newInstanceId();
      await provider.provision(request(id, services(2)));
      const pods = await runningPods(ns, id, 2);
      assert.deepEqual(await provider.resources(id), ZERO);

      // metrics-server's API, played by a CRD of the same group, version and resource (see the header).
      const crd = {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: {
          name: 'pods.metrics.k8s.io',
          annotations: { 'api-approved.kubernetes.io': 'unapproved, a test stand-in for metrics-server' },
        },
        spec: {
          group: 'metrics.k8s.io',
          scope: 'Namespaced',
          names: { kind: 'PodMetrics', plural: 'pods', singular: 'podmetrics' },
          versions: [
            {
              name: 'v1beta1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    timestamp: { type: 'string' },
                    window: { type: 'string' },
                    containers: {
                      type: 'array',
                      // `items` is untyped in client-node's model: here the wire name is the one that arrives.
                      items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                    },
                  },
                },
              },
            },
          ],
        },
      };
      await cluster.apply(crd as KubernetesObject);
      try {
        const usage = (pod: string, containers: Record<string, { cpu: string; memory: string }>) =>
          eventually(async () => {
            try {
              await cluster.apply({
                apiVersion: 'metrics.k8s.io/v1beta1',
                kind: 'PodMetrics',
                metadata: { name: pod, namespace: ns },
                timestamp: new Date().toISOString(),
                window: '30s',
                containers: Object.entries(containers).map(([name, u]) => ({ name, usage: u })),
              } as KubernetesObject);
              return true;
            } catch (err) {
              if (err instanceof ApiException && err.code === 404) return false; // CRD not served yet
              throw err;
            }
          }, 'the PodMetrics stand-in served');
        await usage(pods[0] ?? '', {
          web: { cpu: '250m', memory: '64Mi' },
          proxy: { cpu: '50000000n', memory: '16Mi' },
        });
        await usage(pods[1] ?? '', { web: { cpu: '0.5', memory: '32Mi' }, proxy: { cpu: '0', memory: '0' } });
        // The same provider, with its warnings kept (resources() never throws: it says why in a warning).
        const warnings: string[] = [];
        const watched = new KubernetesProvider({
          kubeConfig: cluster.kc,
          namespacePerTenant: false,
          namespace: ns,
          helm: false,
          logger: { info: () => {}, warn: (o, m) => warnings.push(`${m} ${JSON.stringify(o)}`) },
        });
        const summed = await watched.resources(id);
        assert.equal(summed.cpu_percent, 80, warnings.join('\n')); // 250m + 50m + 500m = 800m = 80 % of one core
        assert.equal(summed.memory_used_mb, 112);
        assert.equal(summed.memory_limit_mb, 192); // (64 + 32) Mi of limits per pod, two pods
        assert.equal(summed.network_in_mb, 0);
      } finally {
        await cluster.delete('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'pods.metrics.k8s.io');
      }
    });
  }
});

describe('Kubernetes provider — failures of the API server (real server behind a fault-injecting proxy)', () => {
  let proxy: KubernetesFaultProxy;
  before(async () => {
    proxy = await new KubernetesFaultProxy(cluster.kc).start();
  });
  after(() => proxy.stop());
  const scope = namespaced({
    provider: (_kc, ns) =>
      new KubernetesProvider({
        kubeConfig: proxy.kubeConfig(),
        namespacePerTenant: false,
        namespace: ns,
        helm: false,
      }),
  });

  const labelled = (ns: string, id: string) =>
    cluster.labelled(id, ns, [
      ['apps/v1', 'Deployment'],
      ['v1', 'Service'],
      ['v1', 'Secret'],
    ]);

  it('5xx answers and dropped connections are thrown as they are (retryable), and a retry converges', async () => {
    const { provider, ns } = scope;
    const id = newInstanceId();
    const spec = request(id, [{ ...services(1)[0], env: { A: 'b' } } as ServiceSpec]);
    proxy.failNext({
      method: 'PATCH',
      path: '/services/',
      status: 500,
      message: 'etcdserver: request timed out',
    });
    await assert.rejects(provider.provision(spec), (err: unknown) => {
      assert.ok(!(err instanceof PermanentProviderError));
      assert.ok(err instanceof ApiException && err.code === 500);
      return true;
    });
    proxy.failNext({ method: 'PATCH', path: '/deployments/', drop: true });
    await assert.rejects(
      provider.provision(spec),
      (err: unknown) => !(err instanceof PermanentProviderError),
    );
    await provider.provision(spec);
    const name = nameOf(id);
    assert.deepEqual(await labelled(ns, id), [
      `Deployment/${name}`,
      `Secret/${name}-web-env`,
      `Service/${name}`,
    ]);
    proxy.failNext({ method: 'DELETE', status: 503 });
    await assert.rejects(
      provider.deprovision(id),
      (err: unknown) => err instanceof ApiException && err.code === 503,
    );
    await provider.deprovision(id);
    await eventually(async () => (await labelled(ns, id)).length === 0, 'nothing left');
  });

  it('a conflicting write in between (stale resourceVersion → the real 409) is retried with a fresh read', async () => {
    const { provider, ns } = scope;
    const id = newInstanceId();
    const name = nameOf(id);
    await provider.provision(request(id, services(3)));
    // Someone else changes the Deployment between the provider's read and its conditional write.
    proxy.failNext({
      method: 'PATCH',
      path: `/deployments/${name}`,
      before: async () => {
        await cluster.apply({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name, namespace: ns, annotations: { 'example.com/touched-by': 'someone-else' } },
        } as KubernetesObject);
      },
    });
    await provider.stop(id);
    const deployment = await cluster.read<V1Deployment>('apps/v1', 'Deployment', name, ns);
    assert.equal(deployment?.spec?.replicas, 0);
    assert.equal(deployment?.metadata?.annotations?.['ctrlplane.io/replicas-before-stop'], '3');
    assert.equal(deployment?.metadata?.annotations?.['example.com/touched-by'], 'someone-else');
  });

  it('healthCheck never throws: an unreachable API server is reported unhealthy', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'gone', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'c', cluster: 'gone', user: 'u' }],
      currentContext: 'c',
    });
    const health = await new KubernetesProvider({ kubeConfig: kc }).healthCheck();
    assert.equal(health.healthy, false);
    assert.match(health.message, /unreachable/);
  });

  it('capabilities and info', () => {
    assert.deepEqual(scope.provider.info(), { name: 'kubernetes', version: '0.1.0', region: 'local' });
    assert.deepEqual(scope.provider.capabilities(), [
      'provision',
      'deploy',
      'scale',
      'logs',
      'exec',
      'volumes',
      'strategy:rolling',
      'source:manifests',
      'source:argocd',
    ]);
  });
});
