/**
 * The Kubernetes provider's settings as the configuration parses them (config/kubernetes-env.ts). Pure: a kubeconfig
 * whose server nobody listens on, no cluster.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { loadConfig } from '../config/env.ts';
import { KubernetesProvider } from '../providers/kubernetes/index.ts';

type Env = Record<string, string>;

/** The options the worker would build its Kubernetes provider from; undefined: no provider. */
function optionsOf(env: Env) {
  return loadConfig(env).kubernetes;
}

function providerOf(env: Env): KubernetesProvider | undefined {
  const options = optionsOf(env);
  return options ? new KubernetesProvider(options) : undefined;
}

describe('Kubernetes provider — configuration from the environment', () => {
  it('is not configured without CTRLPLANE_K8S_KUBECONFIG, KUBECONFIG or a pod service account', () => {
    assert.equal(optionsOf({}), undefined);
    assert.equal(providerOf({ CTRLPLANE_K8S_NAMESPACE: 'x' }), undefined);
    assert.equal(optionsOf({ KUBECONFIG: '/x', CTRLPLANE_K8S_ENABLED: 'false' }), undefined);
  });

  it('reads the CTRLPLANE_K8S_* settings', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubeconfig-'));
    try {
      // A kubeconfig whose server nobody listens on: nothing here needs a cluster.
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'none', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'c', cluster: 'none', user: 'u' }],
        currentContext: 'c',
      });
      const path = join(dir, 'config');
      await writeFile(path, kc.exportConfig());
      const env = {
        CTRLPLANE_K8S_KUBECONFIG: path,
        CTRLPLANE_K8S_CONTEXT: 'c',
        CTRLPLANE_K8S_NAMESPACE_PREFIX: 'tenant',
        CTRLPLANE_K8S_LABELS: 'env=dev, team=core',
        CTRLPLANE_K8S_IMAGE_PULL_SECRETS: 'regcred, other',
        CTRLPLANE_K8S_ARGO_NAMESPACE: 'gitops',
        CTRLPLANE_K8S_REGION: 'eu-west',
        CTRLPLANE_K8S_HELM_BIN: 'false',
        CTRLPLANE_K8S_SYSTEM_NAMESPACE: 'cp-system',
        CTRLPLANE_K8S_POD_SECURITY: 'baseline',
        CTRLPLANE_K8S_RUN_AS_USER: '10001',
        CTRLPLANE_K8S_QUOTA: 'pods=10, requests.cpu=2',
        CTRLPLANE_K8S_CONTAINER_DEFAULT_LIMITS: 'cpu=1,memory=1Gi',
        CTRLPLANE_K8S_CONTAINER_DEFAULT_REQUESTS: '',
        CTRLPLANE_K8S_SERVICE_EXPOSURE: 'loadbalancer',
        CTRLPLANE_K8S_TENANT_API_GROUPS: 'widgets.example.com',
        CTRLPLANE_K8S_HELM_REPOS: 'https://charts.example.com, oci://ghcr.io/acme, /srv/charts',
        CTRLPLANE_K8S_ARGO_REPOS: 'https://git.example.com/apps',
      };
      assert.deepEqual(optionsOf(env), {
        kubeconfigPath: path,
        context: 'c',
        namespacePerTenant: true,
        namespacePrefix: 'tenant',
        systemNamespace: 'cp-system',
        podSecurity: 'baseline',
        runAsUser: 10001,
        tenantLimits: {
          quota: { pods: '10', 'requests.cpu': '2' },
          containerDefaultLimits: { cpu: '1', memory: '1Gi' },
          containerDefaultRequests: {},
        },
        serviceExposure: ['LoadBalancer'],
        tenantApiGroups: ['widgets.example.com'],
        labels: { env: 'dev', team: 'core' },
        imagePullSecrets: ['regcred', 'other'],
        argoRepos: ['https://git.example.com/apps'],
        argoNamespace: 'gitops',
        argoDestServer: 'https://kubernetes.default.svc',
        region: 'eu-west',
        helm: false,
        helmRepos: ['https://charts.example.com', 'oci://ghcr.io/acme', '/srv/charts'],
      });
      // The safe defaults.
      const defaults = optionsOf({ CTRLPLANE_K8S_KUBECONFIG: path });
      assert.equal(defaults?.namespacePerTenant, true);
      assert.equal(defaults?.podSecurity, 'restricted');
      assert.equal(defaults?.runAsUser, 65532);
      assert.deepEqual(defaults?.serviceExposure, []);
      assert.deepEqual(defaults?.helmRepos, []);
      assert.deepEqual(defaults?.argoRepos, []);
      assert.equal(defaults?.tenantLimits?.quota.pods, '50');
      // The shared namespace only by explicit opt-in.
      assert.equal(
        optionsOf({
          CTRLPLANE_K8S_KUBECONFIG: path,
          CTRLPLANE_K8S_NAMESPACE_PER_TENANT: 'false',
          CTRLPLANE_K8S_NAMESPACE: 'apps',
        })?.namespace,
        'apps',
      );
      assert.throws(
        () => optionsOf({ ...env, CTRLPLANE_K8S_NAMESPACE: 'apps' }),
        /CTRLPLANE_K8S_NAMESPACE: names the namespace shared by all tenants, which needs CTRLPLANE_K8S_NAMESPACE_PER_TENANT=false/,
      );
      for (const [key, value, pattern] of [
        ['CP_K8S_ARGO_PROJECT', 'tenants', /CP_K8S_ARGO_PROJECT: is no longer read/],
        [
          'CTRLPLANE_K8S_POD_SECURITY',
          'privileged',
          /CTRLPLANE_K8S_POD_SECURITY: expected restricted or baseline/,
        ],
        ['CTRLPLANE_K8S_RUN_AS_USER', '0', /CTRLPLANE_K8S_RUN_AS_USER: expected a non-root UID/],
        [
          'CTRLPLANE_K8S_QUOTA',
          'pods=lots',
          /CTRLPLANE_K8S_QUOTA: pods=lots: "lots" is not a Kubernetes quantity/,
        ],
        [
          'CTRLPLANE_K8S_SERVICE_EXPOSURE',
          'HostPort',
          /CTRLPLANE_K8S_SERVICE_EXPOSURE: "HostPort" is not one of/,
        ],
        ['CTRLPLANE_K8S_HELM_REPOS', 'charts', /CTRLPLANE_K8S_HELM_REPOS: "charts" is neither/],
      ] as const) {
        assert.throws(() => optionsOf({ ...env, [key]: value }), pattern);
      }
      const provider = providerOf(env);
      assert.ok(provider);
      assert.equal(provider.info().region, 'eu-west');
      assert.match(provider.namespaceFor('ten_ABC'), /^tenant-ten-abc-[0-9a-f]{10}$/);
      const health = await provider.healthCheck();
      assert.equal(health.healthy, false);
      assert.match(health.message, /unreachable/);
      // Without CTRLPLANE_K8S_HELM_BIN: the helm setup built into .tools/bin (this run has it), else `helm` on PATH.
      const { CTRLPLANE_K8S_HELM_BIN: _, ...withoutHelm } = env;
      assert.equal(
        optionsOf(withoutHelm)?.helm,
        fileURLToPath(new URL('../.tools/bin/helm', import.meta.url)),
      );
      assert.throws(
        () => optionsOf({ ...env, CTRLPLANE_K8S_NAMESPACE_PER_TENANT: 'false', CTRLPLANE_K8S_NAMESPACE: '' }),
        /CTRLPLANE_K8S_NAMESPACE/,
      );
      assert.throws(
        () => optionsOf({ ...env, CTRLPLANE_K8S_NAMESPACE_PER_TENANT: 'maybe' }),
        /CTRLPLANE_K8S_NAMESPACE_PER_TENANT/,
      );
      assert.throws(() => providerOf({ ...env, CTRLPLANE_K8S_CONTEXT: 'missing' }), /no context "missing"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops at start when a variable still has its old CP_K8S_ name, naming the new one', () => {
    assert.throws(
      () => loadConfig({ CP_K8S_KUBECONFIG: '/etc/kubeconfig', CP_K8S_NAMESPACE_PREFIX: 'tenant' }),
      (err: Error & { problems?: { variable: string; message: string }[] }) => {
        assert.deepEqual(err.problems, [
          {
            variable: 'CP_K8S_KUBECONFIG',
            message: 'is no longer read: it was renamed CTRLPLANE_K8S_KUBECONFIG; set that instead',
          },
          {
            variable: 'CP_K8S_NAMESPACE_PREFIX',
            message: 'is no longer read: it was renamed CTRLPLANE_K8S_NAMESPACE_PREFIX; set that instead',
          },
        ]);
        return true;
      },
    );
  });
});
