/**
 * The Kubernetes provider's manifests and Argo CD sources against the run's REAL cluster
 * (test/support/kubernetes.ts): discovery, server-side apply, validation and the controllers are the real
 * kube-apiserver's and kube-controller-manager's, in a namespace of the test's own. Custom resources come from
 * CRDs this test applies (and removes). Argo CD itself does not run here: its Application CRD is applied by the
 * test (a minimal schema-less one, unless the cluster already serves argoproj.io), so what is checked is the
 * Application ctrlplane writes and how it reads one back; the test plays Argo CD's controller where one is needed
 * (setting status, releasing the resources finalizer).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  type KubernetesObject,
  PatchStrategy,
  type V1ConfigMap,
  type V1Pod,
  type V1Service,
} from '@kubernetes/client-node';
import {
  KubernetesProvider,
  type KubernetesProviderOptions,
  tenantNamespace,
} from '../providers/kubernetes/index.ts';
import { PermanentProviderError } from '../providers/provider.ts';
import {
  Cluster,
  eventually,
  nameOf,
  newInstanceId,
  type ObjectKind,
  refused,
  testKubeConfig,
} from './support/kubernetes.ts';

const IMAGE = 'registry.k8s.io/pause:3.9';
const TENANT = 'ten_test';

const cluster = new Cluster(testKubeConfig());
let ns: string;
let disposeNamespace: () => Promise<void>;
let provider: KubernetesProvider;

async function must<T extends KubernetesObject>(
  apiVersion: string,
  kind: string,
  name: string,
  namespace: string | undefined = ns,
): Promise<T> {
  const found = await cluster.read<T>(apiVersion, kind, name, namespace);
  assert.ok(found, `${kind} ${name} should exist`);
  return found;
}

/** The kinds these tests write (nothing else can carry an instance's label). */
const WRITTEN_KINDS: ObjectKind[] = [
  ['v1', 'ConfigMap'],
  ['v1', 'Secret'],
  ['v1', 'Service'],
  ['apps/v1', 'Deployment'],
  ['batch/v1', 'CronJob'],
  ['networking.k8s.io/v1', 'NetworkPolicy'],
  ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
];
/** The objects labelled as the instance's, in any namespace. */
const labelled = (instanceId: string) => cluster.labelled(instanceId, undefined, WRITTEN_KINDS);

/** An instance of the services source (a Deployment with a Service), as the victim of the tests below. */
async function provisioned(replicas: number): Promise<string> {
  const id = newInstanceId();
  await provider.provision({
    instance_id: id,
    tenant_id: 'ten_victim',
    name: 'victim',
    kind: 'deployment',
    services: [
      {
        name: 'web',
        image: IMAGE,
        resources: { cpu_millis: 100, memory_mb: 32, replicas },
        ports: [{ container: 8080 }],
      },
    ],
  });
  return id;
}

/** Applies a CRD and waits until its kind is served. */
async function installCrd(crd: KubernetesObject & { spec: { names: { plural: string }; group: string } }) {
  await cluster.apply(crd);
  await eventually(async () => {
    const live = await cluster.read<
      KubernetesObject & { status?: { conditions?: { type: string; status: string }[] } }
    >('apiextensions.k8s.io/v1', 'CustomResourceDefinition', crd.metadata?.name ?? '');
    return !!live?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
  }, `CRD ${crd.metadata?.name} established`);
}

function crd(group: string, kind: string, plural: string, scope: 'Namespaced' | 'Cluster', version = 'v1') {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope,
      names: { kind, plural, singular: kind.toLowerCase() },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          // Server-side apply needs the top-level fields declared (as Argo CD's own CRD does). client-node
          // serializes a CRD through its model: the field names are the model's (x_kubernetes_preserve_unknown_fields).
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: { type: 'object', x_kubernetes_preserve_unknown_fields: true },
                status: { type: 'object', x_kubernetes_preserve_unknown_fields: true },
              },
            },
          },
        },
      ],
    },
  };
}

before(async () => {
  const namespace = await cluster.namespace();
  ns = namespace.name;
  disposeNamespace = namespace.dispose;
  provider = new KubernetesProvider({
    kubeConfig: cluster.kc,
    namespacePerTenant: false,
    namespace: ns,
    helm: false,
  });
});
after(async () => {
  await disposeNamespace?.();
});

describe('Kubernetes provider — manifests source (real control plane)', () => {
  const group = `ctrlplane-test-${randomBytes(3).toString('hex')}.example.com`;
  before(async () => {
    // The operator installed these CRDs: a namespaced kind a tenant may use, and a cluster-scoped one.
    await installCrd(crd(group, 'Widget', 'widgets', 'Namespaced'));
    await installCrd(crd(group, 'ClusterGizmo', 'clustergizmos', 'Cluster'));
  });
  after(async () => {
    await cluster.delete('apiextensions.k8s.io/v1', 'CustomResourceDefinition', `widgets.${group}`);
    await cluster.delete('apiextensions.k8s.io/v1', 'CustomResourceDefinition', `clustergizmos.${group}`);
  });

  const configMapDoc = (name: string, value: string) => `apiVersion: v1
kind: ConfigMap
metadata:
  name: ${name}
  labels:
    app: demo
data:
  value: "${value}"
`;
  const serviceDoc = (name: string) => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  selector:
    app: demo
  ports:
    - name: http
      port: 80
      targetPort: 8080
`;

  it('applies every document labelled, tracks them, prunes a dropped one on re-apply, and deletes all', async () => {
    const id = newInstanceId();
    const name = nameOf(id);
    const result = await provider.engines.manifests.apply({
      instance_id: id,
      tenant_id: TENANT,
      docs: [configMapDoc(`${name}-settings`, 'one'), serviceDoc(`${name}-api`)],
      labels: { team: 'manifests' },
    });
    assert.equal(result.provider_ref, `k8s:${ns}/${name}`);
    assert.equal(result.metadata?.objects, '2');

    const cm = await must<V1ConfigMap>('v1', 'ConfigMap', `${name}-settings`);
    assert.deepEqual(cm.data, { value: 'one' });
    assert.equal(cm.metadata?.labels?.app, 'demo');
    assert.equal(cm.metadata?.labels?.team, 'manifests');
    assert.equal(cm.metadata?.labels?.['ctrlplane.io/instance-id'], id);
    assert.equal(cm.metadata?.labels?.['ctrlplane.io/managed-by'], 'ctrlplane');
    const svc = await must<V1Service>('v1', 'Service', `${name}-api`);
    assert.equal(svc.metadata?.labels?.['ctrlplane.io/tenant-id'], TENANT);
    const tracking = await must<V1ConfigMap>('v1', 'ConfigMap', `${name}-manifests`);
    const refs = JSON.parse(tracking.data?.refs ?? '[]') as Array<{
      kind: string;
      name: string;
      resource: string;
    }>;
    assert.deepEqual(
      refs.map((r) => [r.kind, r.resource, r.name]),
      [
        ['ConfigMap', 'configmaps', `${name}-settings`],
        ['Service', 'services', `${name}-api`],
      ],
    );
    assert.equal((await provider.engines.manifests.status(id)).state, 'running');

    // Re-apply without the Service and with a changed ConfigMap: the Service is pruned.
    const again = await provider.engines.manifests.apply({
      instance_id: id,
      tenant_id: TENANT,
      docs: [configMapDoc(`${name}-settings`, 'two')],
    });
    assert.equal(again.metadata?.objects, '1');
    assert.deepEqual((await must<V1ConfigMap>('v1', 'ConfigMap', `${name}-settings`)).data, {
      value: 'two',
    });
    await eventually(async () => (await cluster.read('v1', 'Service', `${name}-api`, ns)) === undefined);
    const retracked = JSON.parse(
      (await must<V1ConfigMap>('v1', 'ConfigMap', `${name}-manifests`)).data?.refs ?? '[]',
    ) as unknown[];
    assert.equal(retracked.length, 1);

    await provider.engines.manifests.remove(id);
    await eventually(
      async () => (await cluster.read('v1', 'ConfigMap', `${name}-settings`, ns)) === undefined,
    );
    assert.equal(await cluster.read('v1', 'ConfigMap', `${name}-manifests`, ns), undefined);
    await provider.engines.manifests.remove(id); // a second delete is a no-op
    const status = await provider.engines.manifests.status(id);
    assert.equal(status.state, 'provisioning');
    assert.equal(status.message, 'no manifests applied');
  });

  it('refuses manifests without apiVersion/kind or of a kind the cluster does not serve', async () => {
    const base = { instance_id: newInstanceId(), tenant_id: TENANT };
    await assert.rejects(
      provider.engines.manifests.apply({ ...base, docs: ['metadata:\n  name: x\n'] }),
      (err: unknown) => err instanceof PermanentProviderError && /apiVersion or kind/.test(err.message),
    );
    await assert.rejects(
      provider.engines.manifests.apply({
        ...base,
        docs: ['apiVersion: example.com/v1\nkind: Gizmo\nmetadata:\n  name: x\n'],
      }),
      (err: unknown) => err instanceof PermanentProviderError && /does not serve Gizmo/.test(err.message),
    );
  });

  it('manifests: custom resources of an installed CRD, found through discovery; no CRD, Namespace or other namespace', async () => {
    // The operator installed the CRD (before()); a tenant's manifests may use the (namespaced) kind, which the
    // provider finds through discovery (it is not one of the kinds it knows).
    const id = newInstanceId();
    const name = nameOf(id);
    const widget = `apiVersion: ${group}/v1
kind: Widget
metadata:
  name: ${name}-w
spec:
  size: 3
`;
    await provider.engines.manifests.apply({ instance_id: id, tenant_id: TENANT, docs: [widget, '---\n'] });
    const stored = await cluster.read(`${group}/v1`, 'Widget', `${name}-w`, ns);
    assert.ok(stored);
    assert.equal(
      (stored.metadata as { labels?: Record<string, string> }).labels?.['ctrlplane.io/instance-id'],
      id,
    );

    const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: { kind: Gadget, plural: gadgets, singular: gadget }
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
`;
    const otherId = newInstanceId();
    for (const [doc, kind] of [
      [crd, 'CustomResourceDefinition'],
      ['apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x-extra\n', 'Namespace'],
    ] as const) {
      await assert.rejects(
        provider.engines.manifests.apply({
          instance_id: otherId,
          tenant_id: TENANT,
          docs: [doc, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata: {a: b}\n'],
        }),
        refused(new RegExp(`${kind} is cluster-scoped`)),
      );
    }
    assert.equal(
      await cluster.read('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'gadgets.example.com'),
      undefined,
    );
    assert.equal(await cluster.read('v1', 'Namespace', 'x-extra'), undefined);
    assert.deepEqual(await labelled(otherId), [], 'nothing written');

    await provider.engines.manifests.remove(id);
    assert.equal(await cluster.read(`${group}/v1`, 'Widget', `${name}-w`, ns), undefined);
  });

  it('manifests: cluster-scoped kinds are refused, by name and by discovery, before anything is written', async () => {
    // A cluster-scoped custom kind (its CRD applied in before()): discovery says so.
    const docs: Array<[string, string]> = [
      [
        'ClusterRoleBinding',
        `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pwn
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }
subjects: [{ kind: ServiceAccount, name: default, namespace: default }]
`,
      ],
      [
        'ClusterRole',
        'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: r\nrules: []\n',
      ],
      ['Namespace', 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kube-system\n'],
      ['PersistentVolume', 'apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: pv\nspec: {}\n'],
      [
        'StorageClass',
        'apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: fast\nprovisioner: x\n',
      ],
      [
        'ValidatingWebhookConfiguration',
        'apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: w\nwebhooks: []\n',
      ],
      ['ClusterGizmo', `apiVersion: ${group}/v1\nkind: ClusterGizmo\nmetadata:\n  name: g\n`],
    ];
    for (const [kind, doc] of docs) {
      const id = newInstanceId();
      await assert.rejects(
        provider.engines.manifests.apply({
          instance_id: id,
          tenant_id: TENANT,
          docs: ['apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n', doc],
        }),
        refused(new RegExp(`${kind} .*${kind} is cluster-scoped`)),
      );
      assert.deepEqual(await labelled(id), [], `nothing written for ${kind}`);
    }
    assert.equal(await cluster.read('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'pwn'), undefined);
    assert.equal(await cluster.read(`${group}/v1`, 'ClusterGizmo', 'g'), undefined);
  });

  it('manifests: only the instance namespace, whatever an object or the request names', async () => {
    const id = newInstanceId();
    await assert.rejects(
      provider.engines.manifests.apply({
        instance_id: id,
        tenant_id: TENANT,
        docs: [
          'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: kube-system\ndata: {a: b}\n',
        ],
      }),
      refused(
        new RegExp(`ConfigMap c names namespace kube-system: .*only write to its instance's namespace ${ns}`),
      ),
    );
    await assert.rejects(
      provider.engines.manifests.apply({
        instance_id: id,
        tenant_id: TENANT,
        namespace: 'kube-system',
        docs: ['apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata: {a: b}\n'],
      }),
      refused(new RegExp(`namespace ${ns}, not in kube-system`)),
    );
    assert.equal(await cluster.read('v1', 'ConfigMap', 'c', 'kube-system'), undefined);
    // The instance's own namespace, named explicitly, is fine.
    await provider.engines.manifests.apply({
      instance_id: id,
      tenant_id: TENANT,
      namespace: ns,
      docs: [`apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: ${ns}\ndata: {a: b}\n`],
    });
    assert.ok(await cluster.read('v1', 'ConfigMap', 'c', ns));
    await provider.engines.manifests.remove(id);
    assert.equal(await cluster.read('v1', 'ConfigMap', 'c', ns), undefined);
  });

  it("manifests: another instance's object, or one ctrlplane does not manage, is never taken over", async () => {
    const a = newInstanceId();
    const b = newInstanceId();
    const shared = (value: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared-${nameOf(a)}\ndata:\n  owner: "${value}"\n`;
    await provider.engines.manifests.apply({ instance_id: a, tenant_id: TENANT, docs: [shared('a')] });
    // Re-applying its own object is fine.
    await provider.engines.manifests.apply({ instance_id: a, tenant_id: TENANT, docs: [shared('a2')] });

    await assert.rejects(
      provider.engines.manifests.apply({ instance_id: b, tenant_id: 'ten_other', docs: [shared('b')] }),
      refused(new RegExp(`ConfigMap ${ns}/shared-\\S+ already exists and is owned by another instance`)),
    );
    const kept = (await cluster.read('v1', 'ConfigMap', `shared-${nameOf(a)}`, ns)) as {
      data?: Record<string, string>;
      metadata: { labels: Record<string, string> };
    };
    assert.deepEqual(kept.data, { owner: 'a2' });
    assert.equal(kept.metadata.labels['ctrlplane.io/instance-id'], a);
    assert.deepEqual(await labelled(b), [], 'b wrote nothing, not even its record');

    // An object nobody manages through ctrlplane (the operator's) is not adopted either.
    await cluster.apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'operator-creds', namespace: ns },
    });
    await assert.rejects(
      provider.engines.manifests.apply({
        instance_id: b,
        tenant_id: 'ten_other',
        docs: ['apiVersion: v1\nkind: Secret\nmetadata:\n  name: operator-creds\nstringData: {x: y}\n'],
      }),
      refused(new RegExp(`Secret ${ns}/operator-creds already exists and is not managed by ctrlplane`)),
    );
    assert.equal((await cluster.read('v1', 'Secret', 'operator-creds', ns))?.metadata?.labels, undefined);

    // A recorded object that changed hands is not deleted with the instance that recorded it.
    // (someone relabelled it, taking the label over from ctrlplane's field manager)
    await cluster.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: `shared-${nameOf(a)}`,
        namespace: ns,
        labels: { 'ctrlplane.io/instance-id': b },
      },
    });
    await provider.engines.manifests.remove(a);
    assert.ok(await cluster.read('v1', 'ConfigMap', `shared-${nameOf(a)}`, ns), 'left alone');
    assert.equal(await cluster.read('v1', 'ConfigMap', `${nameOf(a)}-manifests`, ns), undefined);
  });

  it("manifests: pod templates carry the reserved labels, and nothing may select another instance's pods", async () => {
    const victim = await provisioned(1);
    const id = newInstanceId();
    const name = nameOf(id);
    const deployment = (templateLabels: string, selector = '{ app: demo }') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}-app
spec:
  replicas: 1
  selector:
    matchLabels: ${selector}
  template:
    metadata:
      labels: ${templateLabels}
    spec:
      containers: [{ name: app, image: ${IMAGE} }]
`;
    const cronJob = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: ${name}-cron
spec:
  schedule: "* * * * *"
  jobTemplate:
    metadata:
      labels: { ctrlplane.io/instance-id: ${victim} }
    spec:
      template:
        metadata:
          labels: { ctrlplane.io/instance-id: ${victim}, ctrlplane.io/tenant-id: ten_victim }
        spec:
          restartPolicy: Never
          containers: [{ name: job, image: ${IMAGE} }]
`;
    const service = `apiVersion: v1
kind: Service
metadata:
  name: ${name}-svc
spec:
  selector: { app: demo }
  ports: [{ port: 80 }]
`;
    // A forged instance id on the pod template: the reserved labels win, so the pods never join the victim.
    await provider.engines.manifests.apply({
      instance_id: id,
      tenant_id: TENANT,
      docs: [
        deployment(`{ app: demo, ctrlplane.io/instance-id: ${victim}, ctrlplane.io/tenant-id: ten_victim }`),
        cronJob,
        service,
      ],
    });
    const applied = (await cluster.read('apps/v1', 'Deployment', `${name}-app`, ns)) as {
      spec: { template: { metadata: { labels: Record<string, string> } } };
    };
    assert.deepEqual(applied.spec.template.metadata.labels, {
      app: 'demo',
      'ctrlplane.io/instance-id': id,
      'ctrlplane.io/tenant-id': TENANT,
      'ctrlplane.io/managed-by': 'ctrlplane',
    });
    const cron = (await cluster.read('batch/v1', 'CronJob', `${name}-cron`, ns)) as {
      spec: {
        jobTemplate: {
          metadata: { labels: Record<string, string> };
          spec: { template: { metadata: { labels: Record<string, string> } } };
        };
      };
    };
    assert.equal(cron.spec.jobTemplate.metadata.labels['ctrlplane.io/instance-id'], id);
    assert.equal(cron.spec.jobTemplate.spec.template.metadata.labels['ctrlplane.io/instance-id'], id);
    assert.equal(cron.spec.jobTemplate.spec.template.metadata.labels['ctrlplane.io/tenant-id'], TENANT);
    // A Service's selector is narrowed to the instance's own pods.
    const svc = (await cluster.read('v1', 'Service', `${name}-svc`, ns)) as {
      spec: { selector: Record<string, string> };
    };
    assert.deepEqual(svc.spec.selector, { app: 'demo', 'ctrlplane.io/instance-id': id });
    // The Deployment controller makes the manifests' pods, with the template's (forced) labels.
    await eventually(
      async () =>
        (await cluster.list<V1Pod>('v1', 'Pod', ns, `app=demo,ctrlplane.io/instance-id=${id}`)).length > 0,
      'the pods of the manifests Deployment',
    );
    const victimService = (await must<V1Service>('v1', 'Service', nameOf(victim))).spec?.selector ?? {};
    const joined = await cluster.list<V1Pod>(
      'v1',
      'Pod',
      ns,
      Object.entries(victimService)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    );
    assert.ok(joined.length > 0, "the victim's own pod is selected");
    assert.deepEqual(
      joined
        .filter((p) => p.metadata?.labels?.['ctrlplane.io/instance-id'] !== victim)
        .map((p) => p.metadata?.name),
      [],
      "no pod of the manifests joins the victim's Service",
    );

    // Selecting on another instance's id is refused outright, wherever it is.
    const other = newInstanceId();
    for (const docs of [
      [deployment('{ app: demo }', `{ ctrlplane.io/instance-id: ${victim} }`)],
      [service.replace('{ app: demo }', `{ ctrlplane.io/instance-id: ${victim} }`)],
      [
        `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny
spec:
  podSelector:
    matchExpressions: [{ key: ctrlplane.io/instance-id, operator: Exists }]
  policyTypes: [Ingress]
`,
      ],
    ]) {
      await assert.rejects(
        provider.engines.manifests.apply({ instance_id: other, tenant_id: TENANT, docs }),
        refused(/reserved label ctrlplane\.io\/instance-id/),
      );
    }
    assert.deepEqual(await labelled(other), []);
    await provider.engines.manifests.remove(id);
  });

  it('manifests: in a shared namespace, RBAC objects and service-account token Secrets are refused', async () => {
    const id = newInstanceId();
    for (const [doc, pattern] of [
      [
        'apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rb\nroleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin }\nsubjects: []\n',
        /RBAC objects are not accepted in a namespace shared/,
      ],
      [
        'apiVersion: v1\nkind: Secret\nmetadata:\n  name: tok\n  annotations: { kubernetes.io/service-account.name: default }\ntype: kubernetes.io/service-account-token\n',
        /service-account token Secrets are not accepted/,
      ],
    ] as const) {
      await assert.rejects(
        provider.engines.manifests.apply({ instance_id: id, tenant_id: TENANT, docs: [doc] }),
        refused(pattern),
      );
    }
  });
});

const APPLICATION_CRD = crd('argoproj.io', 'Application', 'applications', 'Namespaced', 'v1alpha1');
const APPPROJECT_CRD = crd('argoproj.io', 'AppProject', 'appprojects', 'Namespaced', 'v1alpha1');
const ARGO_REPOS = ['https://github.com/argoproj', 'https://example.com/repo.git'];
/** Argo CD enabled: the repositories tenants' Applications may come from. */
function argoEnabled(extra: Partial<KubernetesProviderOptions> = {}): KubernetesProvider {
  return new KubernetesProvider({
    kubeConfig: cluster.kc,
    namespacePerTenant: false,
    namespace: ns,
    helm: false,
    argoRepos: ARGO_REPOS,
    ...extra,
  });
}
/** A real Argo CD on the cluster (KUBECONFIG of another cluster): then its CRD is left alone. */
const ARGO_INSTALLED = !!(await cluster.read(
  'apiextensions.k8s.io/v1',
  'CustomResourceDefinition',
  APPLICATION_CRD.metadata.name,
));

/** Argo CD's controller reporting on an Application (the test plays it: no Argo CD runs here). */
async function reportArgo(name: string, health: string, sync: string): Promise<void> {
  await cluster.api.patch(
    {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name, namespace: 'argocd' },
      status: { health: { status: health }, sync: { status: sync } },
    } as KubernetesObject,
    undefined,
    undefined,
    'argocd-application-controller',
    undefined,
    PatchStrategy.MergePatch,
  );
}

describe('Kubernetes provider — Argo CD source, disabled by default', () => {
  it('is refused as unsupported_source, saying why and how the operator enables it; nothing is written', async () => {
    const id = newInstanceId();
    await assert.rejects(
      provider.engines.argocd.apply({
        instance_id: id,
        tenant_id: TENANT,
        app: { repo_url: 'https://example.com/repo.git' },
      }),
      (err: unknown) => {
        assert.ok(err instanceof PermanentProviderError);
        assert.equal(err.code, 'unsupported_source');
        assert.match(err.message, /Argo CD deploys with its own cluster-wide rights/);
        assert.match(err.message, /per-tenant AppProject/);
        assert.match(err.message, /CTRLPLANE_K8S_ARGO_REPOS/);
        return true;
      },
    );
  });
});

if (!ARGO_INSTALLED) {
  describe('Kubernetes provider — Argo CD source without Argo CD (real control plane)', () => {
    it('the source is refused as unsupported_source, naming the missing Argo CD', async () => {
      await assert.rejects(
        argoEnabled().engines.argocd.apply({
          instance_id: newInstanceId(),
          tenant_id: TENANT,
          app: { repo_url: 'https://example.com/repo.git', dest_namespace: ns },
        }),
        (err: unknown) => {
          assert.ok(err instanceof PermanentProviderError);
          assert.equal(err.code, 'unsupported_source');
          assert.match(err.message, /is Argo CD installed\?/);
          return true;
        },
      );
    });
  });
}

describe('Kubernetes provider — Argo CD source (real control plane; the Application CRD applied here)', () => {
  before(async () => {
    if (!ARGO_INSTALLED) {
      await installCrd(APPLICATION_CRD);
      await installCrd(APPPROJECT_CRD);
    }
    await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'argocd' } });
  });
  after(async () => {
    for (const app of await cluster.list(
      'argoproj.io/v1alpha1',
      'Application',
      'argocd',
      `ctrlplane.io/tenant-id=${TENANT}`,
    )) {
      await cluster.api
        .patch(
          {
            apiVersion: 'argoproj.io/v1alpha1',
            kind: 'Application',
            metadata: { name: app.metadata?.name, namespace: 'argocd', finalizers: null },
          } as unknown as KubernetesObject,
          undefined,
          undefined,
          'ctrlplane-test',
          undefined,
          PatchStrategy.MergePatch,
        )
        .catch(() => {});
      await cluster.delete('argoproj.io/v1alpha1', 'Application', app.metadata?.name ?? '', 'argocd');
    }
    if (!ARGO_INSTALLED) {
      for (const definition of [APPLICATION_CRD, APPPROJECT_CRD]) {
        await cluster.delete('apiextensions.k8s.io/v1', 'CustomResourceDefinition', definition.metadata.name);
      }
      await cluster.delete('v1', 'Namespace', 'argocd');
      // Gone, not only terminating, before another test file needs it again.
      await eventually(
        async () => !(await cluster.read('v1', 'Namespace', 'argocd')),
        'namespace argocd gone',
      );
    }
  });

  it('creates its Application in the argo namespace, labelled; reads health and sync back; deletion waits for the finalizer', async () => {
    const id = newInstanceId();
    const name = nameOf(id);
    const result = await argoEnabled().engines.argocd.apply({
      instance_id: id,
      tenant_id: TENANT,
      labels: { team: 'gitops' },
      app: {
        repo_url: 'https://github.com/argoproj/argocd-example-apps.git',
        path: 'guestbook',
        target_revision: 'HEAD',
        dest_namespace: ns,
        helm: { value_files: ['values.yaml'], parameters: { replicas: '2' } },
        sync_policy: { automated: true, self_heal: true, prune: false },
      },
    });
    assert.equal(result.provider_ref, `argocd:argocd/${name}`);
    const app = await must<KubernetesObject & { spec?: Record<string, unknown> }>(
      'argoproj.io/v1alpha1',
      'Application',
      name,
      'argocd',
    );
    assert.equal(app.metadata?.labels?.team, 'gitops');
    assert.equal(app.metadata?.labels?.['ctrlplane.io/instance-id'], id);
    assert.equal(app.metadata?.labels?.['ctrlplane.io/tenant-id'], TENANT);
    assert.equal(app.metadata?.labels?.['ctrlplane.io/managed-by'], 'ctrlplane');
    assert.deepEqual(app.spec, {
      project: tenantNamespace('ctrlplane', TENANT),
      source: {
        repoURL: 'https://github.com/argoproj/argocd-example-apps.git',
        path: 'guestbook',
        targetRevision: 'HEAD',
        helm: { valueFiles: ['values.yaml'], parameters: [{ name: 'replicas', value: '2' }] },
      },
      destination: { server: 'https://kubernetes.default.svc', namespace: ns },
      syncPolicy: { automated: { selfHeal: true, prune: false } },
    });
    assert.equal((await provider.engines.argocd.status(id)).state, 'provisioning');

    // What Argo CD's controller reports becomes the instance state.
    await reportArgo(name, 'Progressing', 'OutOfSync');
    assert.equal((await provider.engines.argocd.status(id)).state, 'starting');
    await reportArgo(name, 'Healthy', 'Synced');
    const healthy = await provider.engines.argocd.status(id);
    assert.equal(healthy.state, 'running');
    assert.equal(healthy.ready, true);
    await reportArgo(name, 'Degraded', 'Synced');
    assert.equal((await provider.engines.argocd.status(id)).state, 'failed');

    await argoEnabled().engines.argocd.remove(id);
    // Argo CD's resources finalizer holds the Application (the real API server keeps it, with a deletion
    // timestamp) until Argo CD has removed what it deployed and released it; the test plays that part.
    const deleting = await must('argoproj.io/v1alpha1', 'Application', name, 'argocd');
    assert.ok(deleting.metadata?.deletionTimestamp, 'the Application is being deleted');
    assert.deepEqual(deleting.metadata?.finalizers, ['resources-finalizer.argocd.argoproj.io']);
    assert.equal((await provider.engines.argocd.status(id)).state, 'destroying');
    await cluster.api.patch(
      {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name, namespace: 'argocd', finalizers: null },
      } as unknown as KubernetesObject,
      undefined,
      undefined,
      'argocd-application-controller',
      undefined,
      PatchStrategy.MergePatch,
    );
    await eventually(
      async () => (await cluster.read('argoproj.io/v1alpha1', 'Application', name, 'argocd')) === undefined,
      'the Application gone',
    );
    await argoEnabled().engines.argocd.remove(id);
    assert.equal((await provider.engines.argocd.status(id)).state, 'destroyed');
  });

  it("argocd: the tenant's own AppProject (its namespace only, no cluster-scoped kinds, allowed repos), the configured server", async () => {
    const configured = argoEnabled({ argoDestServer: 'https://cluster.example:6443' });
    const project = tenantNamespace('ctrlplane', TENANT);
    const id = newInstanceId();
    const app = { repo_url: 'https://example.com/repo.git', path: 'app' };
    await configured.engines.argocd.apply({ instance_id: id, tenant_id: TENANT, app });
    const stored = (await cluster.read('argoproj.io/v1alpha1', 'Application', nameOf(id), 'argocd')) as {
      spec: Record<string, unknown>;
    };
    assert.equal(stored.spec.project, project);
    assert.deepEqual(stored.spec.destination, {
      server: 'https://cluster.example:6443',
      namespace: ns,
    });
    // The project Argo CD bounds the Application by: one destination, no cluster-scoped kind, the allowed repos.
    const appProject = (await cluster.read('argoproj.io/v1alpha1', 'AppProject', project, 'argocd')) as {
      spec: Record<string, unknown>;
      metadata: { labels: Record<string, string> };
    };
    assert.deepEqual(appProject.spec.destinations, [
      { server: 'https://cluster.example:6443', namespace: ns },
    ]);
    assert.deepEqual(appProject.spec.clusterResourceWhitelist, []);
    assert.deepEqual(appProject.spec.sourceRepos, ARGO_REPOS);
    assert.equal(appProject.metadata.labels['ctrlplane.io/tenant-id'], TENANT);
    // Repeating the provider's values is fine; anything else is refused, and nothing is written.
    await configured.engines.argocd.apply({
      instance_id: id,
      tenant_id: TENANT,
      app: { ...app, project, dest_server: 'https://cluster.example:6443', dest_namespace: ns },
    });
    const other = newInstanceId();
    for (const [extra, pattern] of [
      [{ project: 'default' }, /project is .*\(set by the provider\)/],
      [{ dest_server: 'https://other-cluster:6443' }, /dest_server is .*\(set by the provider\)/],
      [{ dest_namespace: 'kube-system' }, /dest_namespace is .*\(set by the provider\)/],
      [
        { repo_url: 'https://git.attacker.example/x.git' },
        /repo_url "https:\/\/git\.attacker\.example\/x\.git" is not one the operator allows \(CTRLPLANE_K8S_ARGO_REPOS\)/,
      ],
      [{ repo_url: 'https://example.com/repo.git.evil' }, /is not one the operator allows/],
    ] as const) {
      await assert.rejects(
        configured.engines.argocd.apply({ instance_id: other, tenant_id: TENANT, app: { ...app, ...extra } }),
        refused(pattern),
      );
    }
    assert.equal(
      await cluster.read('argoproj.io/v1alpha1', 'Application', nameOf(other), 'argocd'),
      undefined,
    );
    await cluster.delete('argoproj.io/v1alpha1', 'AppProject', project, 'argocd');
  });
});
