/**
 * Tenant isolation on Kubernetes, attack by attack, against the run's REAL control plane (test/support/kubernetes.ts:
 * kube-apiserver v1.33 with RBAC, Pod Security and ResourceQuota admission, the real controllers, kwok's node).
 *
 * For every attack two things are checked:
 *  1. the provider's own policy refuses it before anything is written (PermanentProviderError invalid_spec, the
 *     API's 422), naming the object, the path and the rule;
 *  2. with that policy out of the way (the test sends the same objects straight to the API server, as the tenant's
 *     identity: the provider's per-tenant ServiceAccount, impersonated exactly as the provider writes), the API
 *     server refuses them itself (Pod Security, RBAC, or the Service admission policy the provider installs).
 *
 * What does not run here: no container (kwok plays the node), no network plugin (NetworkPolicies are checked as
 * objects, nothing enforces them), no chart repository (the allowlist refusal happens before helm would fetch).
 * helm is the real CLI (.tools/bin/helm on PATH under `npm test`).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KubernetesObject, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { findExecutable } from '../providers/find-executable.ts';
import { runHelm } from '../providers/kubernetes/helm.ts';
import { KubernetesProvider } from '../providers/kubernetes/index.ts';
import { hardenPodSpec } from '../providers/kubernetes/pod-policy.ts';
import { PermanentProviderError } from '../providers/provider.ts';
import {
  Cluster,
  eventually,
  forbidden,
  nameOf,
  newInstanceId,
  refused,
  testKubeConfig,
} from './support/kubernetes.ts';

const IMAGE = 'registry.k8s.io/pause:3.9';
const run = randomBytes(3).toString('hex');
const SYSTEM = `iso-sys-${run}`;
const PREFIX = `iso-${run}`;
const ATTACKER = `ten_attacker_${run}`;
const VICTIM = `ten_victim_${run}`;

const cluster = new Cluster(testKubeConfig());
let dir: string;
let provider: KubernetesProvider;
let attackerNs: string;
let victimNs: string;
/** The API server, spoken to as the attacking tenant's identity (what the provider writes its objects as). */
let asAttacker: Cluster;
let victimId: string;

/** What client-node read back, without the undefined fields of its models. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

/**
 * The attack pod as the API server would get it without our policy, but otherwise complying with restricted (what
 * the provider fills in), so that Pod Security's refusal names the attack itself.
 */
function raw(obj: KubernetesObject, namespace: string): KubernetesObject {
  const copy = structuredClone(obj) as KubernetesObject & { spec: Record<string, unknown> };
  hardenPodSpec(copy.spec, 65532);
  // The API server's own validation refuses privileged with allowPrivilegeEscalation false: leave it unset there.
  for (const c of copy.spec.containers as Array<{ securityContext?: Record<string, unknown> }>) {
    if (c.securityContext?.privileged === true) delete c.securityContext.allowPrivilegeEscalation;
  }
  return { ...copy, metadata: { ...copy.metadata, namespace } } as KubernetesObject;
}

function doc(obj: unknown): string {
  return JSON.stringify(obj);
}

function pod(name: string, spec: Record<string, unknown>): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { containers: [{ name: 'c', image: IMAGE }], ...spec },
  } as KubernetesObject;
}

/** The manifests source refuses the documents before writing anything of them. */
async function policyRefuses(docs: unknown[], pattern: RegExp): Promise<string> {
  const id = newInstanceId();
  await assert.rejects(
    provider.engines.manifests.apply({ instance_id: id, tenant_id: ATTACKER, docs: docs.map(doc) }),
    refused(pattern),
  );
  const left = await cluster.list('v1', 'ConfigMap', attackerNs, `ctrlplane.io/instance-id=${id}`);
  assert.deepEqual(left, [], 'nothing of a refused source is written');
  return id;
}

async function writeChart(name: string, templates: Record<string, string>): Promise<string> {
  const chart = join(dir, name);
  await mkdir(join(chart, 'templates'), { recursive: true });
  await writeFile(join(chart, 'Chart.yaml'), `apiVersion: v2\nname: ${name}\nversion: 0.1.0\n`);
  for (const [file, text] of Object.entries(templates)) await writeFile(join(chart, 'templates', file), text);
  return chart;
}

/** What `helm template` renders of a chart, parsed: the objects an unchecked helm source would write. */
async function helmTemplate(chart: string, namespace: string): Promise<KubernetesObject[]> {
  const binary = findExecutable('helm');
  assert.ok(binary, 'helm on PATH');
  const out = await runHelm({ binary }, ['template', 'attack', chart, '--namespace', namespace]);
  return parseAllDocuments(out)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => !!o);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrlplane-isolation-'));
  provider = new KubernetesProvider({
    kubeConfig: cluster.kc,
    namespacePrefix: PREFIX,
    systemNamespace: SYSTEM,
    helmRepos: [dir, 'https://charts.example.com/stable'],
  });
  attackerNs = provider.namespaceFor(ATTACKER);
  victimNs = provider.namespaceFor(VICTIM);
  // The victim: an instance with env in a Secret (of the services source), in its own tenant namespace.
  victimId = newInstanceId();
  await provider.provision({
    instance_id: victimId,
    tenant_id: VICTIM,
    name: 'victim',
    kind: 'deployment',
    services: [
      {
        name: 'db',
        image: IMAGE,
        env: { PASSWORD: 'hunter2' },
        ports: [{ container: 5432 }],
        resources: { cpu_millis: 100, memory_mb: 32, replicas: 1 },
      },
    ],
  });
  // The attacker's namespace exists once its first instance did.
  await provider.engines.manifests.apply({
    instance_id: newInstanceId(),
    tenant_id: ATTACKER,
    docs: [doc({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'hello' }, data: { a: 'b' } })],
  });
  const identity = provider.tenantIdentity(ATTACKER);
  assert.ok(identity);
  asAttacker = cluster.as(identity.username);
});

after(async () => {
  await provider?.deprovision(victimId).catch(() => {});
  for (const ns of [attackerNs, victimNs, SYSTEM]) if (ns) await cluster.delete('v1', 'Namespace', ns);
  for (const kind of ['ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicy']) {
    await cluster.delete('admissionregistration.k8s.io/v1', kind, `${SYSTEM}-service-exposure`);
  }
  await rm(dir, { recursive: true, force: true });
});

describe('Kubernetes isolation — the tenant namespace is a boundary the cluster enforces (real API server)', () => {
  it('each tenant gets its namespace with Pod Security restricted, a quota, limits, default-deny and a Role-only identity', async () => {
    assert.notEqual(attackerNs, victimNs);
    const ns = await cluster.read<KubernetesObject>('v1', 'Namespace', attackerNs);
    assert.equal(ns?.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
    assert.ok(await cluster.read('v1', 'ResourceQuota', 'ctrlplane-quota', attackerNs));
    const limits = await cluster.read<KubernetesObject & { spec: { limits: Record<string, unknown>[] } }>(
      'v1',
      'LimitRange',
      'ctrlplane-limits',
      attackerNs,
    );
    // client-node's model calls `default` `_default`: read back, it proves the field reached the API server.
    assert.deepEqual(plain(limits?.spec.limits[0]?._default), { cpu: '500m', memory: '512Mi' });
    const deny = await cluster.read<KubernetesObject & { spec: Record<string, unknown> }>(
      'networking.k8s.io/v1',
      'NetworkPolicy',
      'ctrlplane-default-deny',
      attackerNs,
    );
    assert.deepEqual(plain(deny?.spec), { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    // Within one instance traffic is allowed: the rule kept its `from` on the way out (read back through
    // client-node's model, which calls it `_from`; a rule without it would allow every source).
    const own = await cluster.read<KubernetesObject & { spec: { ingress: unknown[] } }>(
      'networking.k8s.io/v1',
      'NetworkPolicy',
      `${nameOf(victimId)}-ctrlplane-net`,
      victimNs,
    );
    assert.deepEqual(plain(own?.spec.ingress), [
      { _from: [{ podSelector: { matchLabels: { 'ctrlplane.io/instance-id': victimId } } }] },
    ]);
    // The identity holds a Role in its namespace only: it cannot lift its quota, nor read anything elsewhere.
    await assert.rejects(
      asAttacker.delete('v1', 'ResourceQuota', 'ctrlplane-quota', attackerNs),
      forbidden(/cannot delete resource "resourcequotas"/),
    );
    await assert.rejects(
      asAttacker.list('v1', 'Secret', victimNs),
      forbidden(/cannot list resource "secrets" .* in the namespace/),
    );
  });

  it('the generated workload complies with restricted: its pods are admitted by Pod Security, no service links, no token', async () => {
    const deployment = await cluster.read<V1Deployment>('apps/v1', 'Deployment', nameOf(victimId), victimNs);
    const spec = deployment?.spec?.template.spec;
    assert.equal(spec?.enableServiceLinks, false);
    assert.equal(spec?.automountServiceAccountToken, false);
    assert.equal(spec?.securityContext?.runAsNonRoot, true);
    assert.equal(spec?.securityContext?.runAsUser, 65532);
    assert.equal(spec?.securityContext?.seccompProfile?.type, 'RuntimeDefault');
    assert.deepEqual(plain(spec?.containers[0]?.securityContext), {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    // The real ReplicaSet controller made the pod and Pod Security (restricted) admitted it.
    await eventually(
      async () => (await cluster.pods(victimNs, victimId)).some((p) => p.status?.phase === 'Running'),
      'the victim pod running',
    );
  });

  it('baseline, if the operator chooses it, is what the namespace enforces', async () => {
    const baseline = new KubernetesProvider({
      kubeConfig: cluster.kc,
      namespacePrefix: `${PREFIX}-b`,
      systemNamespace: SYSTEM,
      podSecurity: 'baseline',
      helm: false,
    });
    const tenant = `ten_baseline_${run}`;
    const id = newInstanceId();
    await baseline.provision({
      instance_id: id,
      tenant_id: tenant,
      name: 'b',
      kind: 'deployment',
      services: [{ name: 'web', image: IMAGE, resources: { cpu_millis: 100, memory_mb: 32, replicas: 1 } }],
    });
    const ns = baseline.namespaceFor(tenant);
    try {
      const live = await cluster.read<KubernetesObject>('v1', 'Namespace', ns);
      assert.equal(live?.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'baseline');
      await eventually(async () => (await cluster.pods(ns, id)).length === 1, 'the pod admitted');
    } finally {
      await cluster.delete('v1', 'Namespace', ns);
    }
  });
});

describe('Kubernetes isolation — attacks: our policy refuses (422), and so does the API server without it', () => {
  const hostile: Array<[what: string, spec: Record<string, unknown>, rule: RegExp, podSecurity: RegExp]> = [
    [
      'hostPID',
      { hostPID: true },
      /spec\.hostPID: .*rule host-namespaces/,
      /host namespaces \(hostPID=true\)/,
    ],
    [
      'hostNetwork',
      { hostNetwork: true },
      /spec\.hostNetwork: .*rule host-namespaces/,
      /host namespaces \(hostNetwork=true\)/,
    ],
    [
      'a hostPath / volume',
      { volumes: [{ name: 'root', hostPath: { path: '/' } }] },
      /spec\.volumes\[0\]\.hostPath: .*rule host-path/,
      /volume "root".*hostPath/,
    ],
    [
      'a privileged container',
      { containers: [{ name: 'c', image: IMAGE, securityContext: { privileged: true } }] },
      /spec\.containers\[0\]\.securityContext\.privileged: .*rule privileged/,
      /privileged \(container "c" must not set securityContext\.privileged=true\)/,
    ],
    [
      'an added capability',
      {
        containers: [{ name: 'c', image: IMAGE, securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }],
      },
      /capabilities\.add: .*SYS_ADMIN.*rule added-capabilities/,
      /capabilities \(container "c" must not include "SYS_ADMIN"/,
    ],
    [
      'allowPrivilegeEscalation',
      { containers: [{ name: 'c', image: IMAGE, securityContext: { allowPrivilegeEscalation: true } }] },
      /allowPrivilegeEscalation: .*rule privilege-escalation/,
      /allowPrivilegeEscalation != false/,
    ],
  ];
  for (const [what, spec, rule, podSecurity] of hostile) {
    it(`a pod with ${what}: refused by the policy, and by Pod Security (restricted) as the tenant`, async () => {
      await policyRefuses([pod('attack', spec)], rule);
      await assert.rejects(
        asAttacker.create(raw(pod('attack', spec), attackerNs)),
        forbidden(new RegExp(`violates PodSecurity "restricted:latest": .*${podSecurity.source}`)),
      );
      assert.equal(await cluster.read('v1', 'Pod', 'attack', attackerNs), undefined);
    });
  }

  it('every pod template is checked: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob', async () => {
    const template = {
      metadata: { labels: { app: 'x' } },
      spec: { hostPID: true, containers: [{ name: 'c', image: IMAGE }] },
    };
    const selector = { matchLabels: { app: 'x' } };
    const workloads: Array<[string, string, Record<string, unknown>, string]> = [
      ['apps/v1', 'Deployment', { selector, template }, 'spec.template.spec.hostPID'],
      ['apps/v1', 'StatefulSet', { selector, serviceName: 'x', template }, 'spec.template.spec.hostPID'],
      ['apps/v1', 'DaemonSet', { selector, template }, 'spec.template.spec.hostPID'],
      ['apps/v1', 'ReplicaSet', { selector, template }, 'spec.template.spec.hostPID'],
      [
        'batch/v1',
        'Job',
        { template: { spec: { ...template.spec, restartPolicy: 'Never' } } },
        'spec.template.spec.hostPID',
      ],
      [
        'batch/v1',
        'CronJob',
        {
          schedule: '* * * * *',
          jobTemplate: { spec: { template: { spec: { ...template.spec, restartPolicy: 'Never' } } } },
        },
        'spec.jobTemplate.spec.template.spec.hostPID',
      ],
    ];
    for (const [apiVersion, kind, spec, path] of workloads) {
      await policyRefuses(
        [{ apiVersion, kind, metadata: { name: 'attack' }, spec }],
        new RegExp(
          `^${kind} attack \\(document 1\\): ${path.replaceAll('.', '\\.')}: .*\\(rule host-namespaces\\)$`,
        ),
      );
    }
    // Without the policy, the API server takes the Deployment (Pod Security only warns on templates) but the real
    // ReplicaSet controller's pods are refused: none ever exists.
    await asAttacker.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'attack-deploy', namespace: attackerNs },
      spec: { selector, template },
    } as KubernetesObject);
    await eventually(async () => {
      const events = await cluster.list<KubernetesObject & { reason?: string; message?: string }>(
        'v1',
        'Event',
        attackerNs,
      );
      return events.some((e) => e.reason === 'FailedCreate' && /violates PodSecurity/.test(e.message ?? ''));
    }, 'the ReplicaSet controller refused by Pod Security');
    const pods = await cluster.list<V1Pod>('v1', 'Pod', attackerNs, 'app=x');
    assert.deepEqual(pods, []);
    await cluster.delete('apps/v1', 'Deployment', 'attack-deploy', attackerNs);
  });

  it("a foreign serviceAccountName: refused by the policy, and by the API server (no such account in the tenant's namespace)", async () => {
    // The most valuable account to name: the tenant identity itself (it lives in the system namespace, out of reach).
    const identity = provider.tenantIdentity(ATTACKER);
    assert.ok(identity);
    // An account that does exist in the namespace (as an operator's tool might leave one) is refused too: a
    // tenant pod runs as `default`, which holds no rights.
    await cluster.apply({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'powerful', namespace: attackerNs },
    });
    for (const name of [identity.name, 'powerful']) {
      await policyRefuses(
        [pod('attack', { serviceAccountName: name })],
        new RegExp(
          `spec\\.serviceAccountName: a tenant pod runs as the ServiceAccount "default" of its namespace, not "${name}" \\(rule service-account\\)`,
        ),
      );
    }
    await policyRefuses(
      [pod('attack', { serviceAccount: 'powerful' })],
      /spec\.serviceAccount: .*rule service-account/,
    );
    await assert.rejects(
      asAttacker.create(raw(pod('attack', { serviceAccountName: identity.name }), attackerNs)),
      forbidden(new RegExp(`error looking up service account ${attackerNs}/${identity.name}`)),
    );
  });

  const services: Array<[string, Record<string, unknown>, RegExp]> = [
    ['type NodePort', { type: 'NodePort' }, /spec\.type: Services of type NodePort .*rule service-exposure/],
    [
      'type LoadBalancer',
      { type: 'LoadBalancer' },
      /spec\.type: Services of type LoadBalancer .*rule service-exposure/,
    ],
    ['externalIPs', { externalIPs: ['203.0.113.7'] }, /spec\.externalIPs: .*rule service-exposure/],
  ];
  for (const [what, extra, rule] of services) {
    it(`a Service with ${what}: refused by the policy, and by the API server's admission policy as the tenant`, async () => {
      const service = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'attack' },
        spec: { selector: { app: 'x' }, ports: [{ port: 80 }], ...extra },
      };
      await policyRefuses([service], rule);
      await assert.rejects(
        asAttacker.create({
          ...service,
          metadata: { name: 'attack', namespace: attackerNs },
        } as KubernetesObject),
        forbidden(/ValidatingAdmissionPolicy .*service-exposure.* denied request/),
      );
    });
  }

  it('the operator may allow NodePort: then the policy and the admission policy take it, and nothing else', async () => {
    const system = `${SYSTEM}-open`;
    const open = new KubernetesProvider({
      kubeConfig: cluster.kc,
      namespacePrefix: `${PREFIX}-open`,
      systemNamespace: system,
      serviceExposure: ['NodePort'],
      helm: false,
    });
    const service = (name: string, type: string) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name },
      spec: { type, selector: { app: 'x' }, ports: [{ port: 80 }] },
    });
    const ns = open.namespaceFor(ATTACKER);
    try {
      await open.engines.manifests.apply({
        instance_id: newInstanceId(),
        tenant_id: ATTACKER,
        docs: [doc(service('np', 'NodePort'))],
      });
      assert.equal(
        (await cluster.read<KubernetesObject & { spec: { type: string } }>('v1', 'Service', 'np', ns))?.spec
          .type,
        'NodePort',
      );
      await assert.rejects(
        open.engines.manifests.apply({
          instance_id: newInstanceId(),
          tenant_id: ATTACKER,
          docs: [doc(service('lb', 'LoadBalancer'))],
        }),
        refused(/Services of type LoadBalancer/),
      );
      const identity = open.tenantIdentity(ATTACKER);
      assert.ok(identity);
      await assert.rejects(
        cluster.as(identity.username).create({
          ...service('lb', 'LoadBalancer'),
          metadata: { name: 'lb', namespace: ns },
        } as KubernetesObject),
        forbidden(/Services of type LoadBalancer are not allowed in tenant namespaces/),
      );
    } finally {
      for (const name of [ns, system]) await cluster.delete('v1', 'Namespace', name);
      for (const kind of ['ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicy']) {
        await cluster.delete('admissionregistration.k8s.io/v1', kind, `${system}-service-exposure`);
      }
    }
  });

  it("envFrom of another instance's Secret: refused by the policy; the API server keeps other tenants' Secrets out of reach", async () => {
    const victimSecret = `${nameOf(victimId)}-db-env`;
    assert.ok(await cluster.read('v1', 'Secret', victimSecret, victimNs), 'the victim has an env Secret');
    const reader = pod('attack', {
      containers: [{ name: 'c', image: IMAGE, envFrom: [{ secretRef: { name: victimSecret } }] }],
    });
    await policyRefuses(
      [reader],
      new RegExp(
        `spec\\.containers\\[0\\]\\.envFrom\\[0\\]\\.secretRef: Secret ${victimSecret} is not this instance's .*rule foreign-reference`,
      ),
    );
    for (const [volume, path] of [
      [{ name: 'v', secret: { secretName: victimSecret } }, 'spec.volumes[0].secret'],
      [
        { name: 'v', persistentVolumeClaim: { claimName: 'data-0' } },
        'spec.volumes[0].persistentVolumeClaim',
      ],
      [
        { name: 'v', projected: { sources: [{ configMap: { name: 'kube-root-ca.crt' } }] } },
        'spec.volumes[0].projected.sources[0].configMap',
      ],
    ] as const) {
      await policyRefuses(
        [pod('attack', { volumes: [volume] })],
        new RegExp(`${path.replace(/[[\].]/g, '\\$&')}: .*rule foreign-reference`),
      );
    }
    // The same tenant's own Secret, in the same source, is fine.
    const own = newInstanceId();
    await provider.engines.manifests.apply({
      instance_id: own,
      tenant_id: ATTACKER,
      docs: [
        doc({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'mine' }, stringData: { k: 'v' } }),
        doc(
          pod('reader', {
            containers: [{ name: 'c', image: IMAGE, envFrom: [{ secretRef: { name: 'mine' } }] }],
          }),
        ),
      ],
    });
    await provider.engines.manifests.remove(own);
    // Without the policy: the victim's Secret is in another namespace, which a pod cannot name, and the tenant's
    // identity can neither write a pod there nor read the Secret.
    await assert.rejects(
      asAttacker.create({ ...reader, metadata: { name: 'attack', namespace: victimNs } } as KubernetesObject),
      forbidden(/cannot create resource "pods" in API group "" in the namespace/),
    );
    await assert.rejects(
      asAttacker.read('v1', 'Secret', victimSecret, victimNs),
      forbidden(/cannot get resource "secrets"/),
    );
  });

  it('a ClusterRoleBinding: refused by the policy, and by RBAC as the tenant', async () => {
    const crb = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `attack-${run}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: attackerNs }],
    };
    await policyRefuses([crb], /ClusterRoleBinding .* is cluster-scoped/);
    await assert.rejects(
      asAttacker.create(crb as KubernetesObject),
      forbidden(/cannot create resource "clusterrolebindings" .* at the cluster scope/),
    );
    assert.equal(
      await cluster.read('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', `attack-${run}`),
      undefined,
    );
  });

  it('an object in kube-system: refused by the policy, and by RBAC as the tenant', async () => {
    const cm = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `attack-${run}`, namespace: 'kube-system' },
    };
    await policyRefuses([cm], /names namespace kube-system/);
    await assert.rejects(
      asAttacker.create(cm as KubernetesObject),
      forbidden(/cannot create resource "configmaps" .* in the namespace "kube-system"/),
    );
  });
});

describe('Kubernetes isolation — helm: rendered offline, checked and applied like manifests (real helm CLI)', () => {
  it('a chart templating into kube-system: refused by the policy, and by RBAC as the tenant', async () => {
    const chart = await writeChart('into-kube-system', {
      'cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: attack\n  namespace: kube-system\ndata: {a: b}\n',
    });
    await assert.rejects(
      provider.engines.helm.apply({ instance_id: newInstanceId(), tenant_id: ATTACKER, chart: { chart } }),
      refused(/ConfigMap attack names namespace kube-system/),
    );
    for (const obj of await helmTemplate(chart, attackerNs)) {
      await assert.rejects(asAttacker.create(obj), forbidden(/in the namespace "kube-system"/));
    }
  });

  it('a chart creating a ClusterRoleBinding: refused by the policy, and by RBAC as the tenant', async () => {
    const chart = await writeChart('cluster-admin', {
      'crb.yaml': `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: attack-helm-${run}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: default, namespace: {{ .Release.Namespace }}}]
`,
    });
    await assert.rejects(
      provider.engines.helm.apply({ instance_id: newInstanceId(), tenant_id: ATTACKER, chart: { chart } }),
      refused(/ClusterRoleBinding attack-helm-.* is cluster-scoped/),
    );
    for (const obj of await helmTemplate(chart, attackerNs)) {
      await assert.rejects(asAttacker.create(obj), forbidden(/at the cluster scope/));
    }
  });

  it('a privileged pod in a chart is refused like one in manifests; `lookup` finds nothing (no cluster access)', async () => {
    const privileged = await writeChart('privileged', {
      'pod.yaml': `apiVersion: v1
kind: Pod
metadata: {name: attack}
spec:
  hostPID: true
  containers: [{name: c, image: ${IMAGE}}]
`,
    });
    await assert.rejects(
      provider.engines.helm.apply({
        instance_id: newInstanceId(),
        tenant_id: ATTACKER,
        chart: { chart: privileged },
      }),
      refused(/Pod attack \(document 1\): spec\.hostPID: .*rule host-namespaces/),
    );
    const lookup = await writeChart('lookup', {
      'cm.yaml': `apiVersion: v1
kind: ConfigMap
metadata: {name: found}
data:
  namespaces: {{ (lookup "v1" "Namespace" "" "") | toJson | quote }}
  secrets: {{ (lookup "v1" "Secret" "${victimNs}" "") | toJson | quote }}
`,
    });
    const id = newInstanceId();
    await provider.engines.helm.apply({ instance_id: id, tenant_id: ATTACKER, chart: { chart: lookup } });
    const cm = await cluster.read<KubernetesObject & { data: Record<string, string> }>(
      'v1',
      'ConfigMap',
      'found',
      attackerNs,
    );
    assert.deepEqual(cm?.data, { namespaces: '{}', secrets: '{}' });
    assert.equal(cm?.metadata?.labels?.['ctrlplane.io/instance-id'], id);
    assert.equal((await provider.engines.helm.status(id)).state, 'running');
    await provider.engines.helm.remove(id);
    assert.equal(await cluster.read('v1', 'ConfigMap', 'found', attackerNs), undefined);
    assert.equal((await provider.engines.helm.status(id)).state, 'destroyed');
  });

  it('a chart repository the operator does not allow is refused, naming it, before helm runs', async () => {
    // No API server is involved: this is a request the worker would make. Nothing answers at these addresses, and
    // the refusal comes back at once with the repository named.
    for (const chart of [
      { chart: 'evil', repo: 'https://charts.attacker.example' },
      { chart: 'evil', repo: 'https://charts.example.com/stable-but-not-really' },
      { chart: 'evil', repo: 'oci://registry.attacker.example/charts' },
      { chart: 'https://charts.attacker.example/evil-1.0.0.tgz' },
      { chart: 'bitnami/nginx' },
      { chart: '/etc' },
    ]) {
      const started = Date.now();
      await assert.rejects(
        provider.engines.helm.apply({ instance_id: newInstanceId(), tenant_id: ATTACKER, chart }),
        (err: unknown) => {
          assert.ok(err instanceof PermanentProviderError);
          assert.equal(err.code, 'invalid_spec');
          assert.ok(err.message.includes(JSON.stringify(chart.repo ?? chart.chart)), err.message);
          assert.match(err.message, /CTRLPLANE_K8S_HELM_REPOS/);
          return true;
        },
      );
      assert.ok(Date.now() - started < 1000, 'refused before any fetch');
    }
  });
});
