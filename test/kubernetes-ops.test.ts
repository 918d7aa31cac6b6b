import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AuthorizationV1Api } from '@kubernetes/client-node';
import { tenantNamespace } from '../providers/kubernetes/index.ts';
import { tenantIdentity } from '../providers/kubernetes/tenant-namespace.ts';
import { eventsOf } from './support/events.ts';
import { apiClient } from './support/http.ts';
import { Cluster } from './support/kubernetes.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and worker, and the run's REAL kube-apiserver (test/support/kubernetes.ts). Its node is
// kwok's: pods are reported Running but no container runs and no kubelet serves exec, so no command really runs
// here. What is tested for real: the 422s of what Kubernetes cannot do (restart one service, a chosen stop signal
// or timeout), the refusals before the provider is reached, that the exec reaches the instance's own pod through
// the API server and fails cleanly where kwok runs nothing, and RBAC: the tenant's identity cannot exec.
const cluster = new Cluster();

describe('per-service restart, exec and stop options on Kubernetes', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  let intruder: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('k8sops');
  const prefix = `k8sops-${randomBytes(3).toString('hex')}`;
  const system = `${prefix}-system`;
  const ns = tenantNamespace(prefix, tenant);
  let id: string;

  before(async () => {
    stack = await startStack({
      env: {
        CTRLPLANE_K8S_KUBECONFIG: cluster.kubeconfigPath,
        CTRLPLANE_K8S_NAMESPACE_PREFIX: prefix,
        CTRLPLANE_K8S_SYSTEM_NAMESPACE: system,
      },
    });
    api = apiClient(stack.api.url, await stack.token(tenant));
    intruder = apiClient(stack.api.url, await stack.token(uniqueTenant('k8sopsx')));
    const res = await api('POST', '/v1/instances?wait=60s', {
      name: 'kube-ops',
      provider_name: 'kubernetes',
      services: [
        { name: 'web', image: 'nginx:1.27', ports: [{ container: 8080 }] },
        { name: 'side', image: 'busybox:1.36', role: 'sidecar', command: ['sleep', '3600'] },
      ],
    });
    assert.equal(res.body.state, 'running', JSON.stringify(res.body));
    id = res.body.id;
  });

  after(async () => {
    await stack?.close();
    for (const name of [ns, system]) await cluster.delete('v1', 'Namespace', name);
    for (const kind of ['ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicy']) {
      await cluster.delete('admissionregistration.k8s.io/v1', kind, `${system}-service-exposure`);
    }
  });

  it('a per-service restart is 422 not_supported, naming the provider; nothing is sent', async () => {
    const before = (await eventsOf(stack.orm, id)).length;
    const res = await api('POST', `/v1/instances/${id}/services/side/restart?wait=true`);
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.code, 'not_supported');
    assert.match(res.body.detail, /provider kubernetes cannot restart a single service/);
    assert.equal((await eventsOf(stack.orm, id)).length, before);
  });

  it('a stop with a signal or a timeout is 422 naming the field and the provider; a plain stop is not', async () => {
    for (const [body, field] of [
      [{ signal: 'SIGINT' }, 'signal'],
      [{ timeout: 5 }, 'timeout'],
    ] as const) {
      const res = await api('POST', `/v1/instances/${id}/stop?wait=true`, body);
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.code, 'not_supported');
      assert.equal(res.body.errors[0].field, field);
      assert.match(res.body.detail, /provider kubernetes/);
    }
    assert.equal((await api('GET', `/v1/instances/${id}`)).body.state, 'running', 'still running');
  });

  it('the tenant identity has no pods/exec (RBAC): a tenant workload cannot exec into pods', async () => {
    const identity = tenantIdentity(system, ns);
    const review = await cluster.kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: identity.username,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${system}`, 'system:authenticated'],
          resourceAttributes: { namespace: ns, verb: 'create', resource: 'pods', subresource: 'exec' },
        },
      },
    });
    assert.equal(review.status?.allowed, false, JSON.stringify(review.status));
    // …while it does hold pods/log in its namespace, so the review is not refusing the identity as such.
    const logs = await cluster.kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: identity.username,
          resourceAttributes: { namespace: ns, verb: 'get', resource: 'pods', subresource: 'log' },
        },
      },
    });
    assert.equal(logs.status?.allowed, true, JSON.stringify(logs.status));
  });

  it('exec refusals: another tenant 404, unknown service 400, bad input 400; nothing recorded', async () => {
    const before = (await eventsOf(stack.orm, id)).length;
    const attack = await intruder('POST', `/v1/instances/${id}/exec`, { command: ['id'] });
    assert.equal(attack.status, 404, JSON.stringify(attack.body));
    const unknown = await api('POST', `/v1/instances/${id}/exec`, { service: 'nope', command: ['id'] });
    assert.equal(unknown.status, 400, JSON.stringify(unknown.body));
    assert.equal(unknown.body.errors[0].field, 'service');
    const tty = await api('POST', `/v1/instances/${id}/exec`, { command: ['sh'], tty: true });
    assert.equal(tty.status, 400);
    assert.equal(tty.body.errors[0].field, 'tty');
    assert.equal((await eventsOf(stack.orm, id)).length, before);
  });

  it('exec reaches the instance pod through the API server; kwok runs no command: 502, recording nothing', async () => {
    const before = (await eventsOf(stack.orm, id)).length;
    const res = await api('POST', `/v1/instances/${id}/exec`, {
      service: 'side',
      command: ['id'],
      timeout: 10,
    });
    // kwok's kubelet answers the exec the API server forwards to the pod's node, naming the container and the
    // instance's pod: it has no command to run (a real kubelet would run it).
    assert.equal(res.status, 502, JSON.stringify(res.body));
    assert.equal(res.body.code, 'provider_failed');
    assert.match(res.body.detail, /could not be run in container side: .*no exec found for container "side"/);
    assert.match(res.body.detail, new RegExp(`pod "${ns}/inst-`));
    assert.equal((await eventsOf(stack.orm, id)).length, before, 'an exec that did not run is not recorded');
  });

  it('exec is refused (409) once the instance is stopped', async () => {
    assert.equal((await api('POST', `/v1/instances/${id}/stop?wait=60s`)).body.state, 'stopped');
    const res = await api('POST', `/v1/instances/${id}/exec`, { command: ['id'] });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.code, 'invalid_state');
  });
});
