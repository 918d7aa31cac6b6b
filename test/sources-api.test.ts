import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ApiCall, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { containersOf, docker, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';
import { tenantRows, tenantWorkflowIds } from './support/tenant-footprint.ts';

const IDLE = "trap 'exit 0' TERM; while true; do sleep 1; done";

// Real Temporal, PostgreSQL, worker and Docker engine: sources, variables and templates go in through the API
// (every answer checked against the OpenAPI document) and come out rendered on the engine.
describe('deployment sources and variables through the API, on the real Docker engine', () => {
  let stack: Stack;
  let checker: OpenApiChecker;
  let owner: ApiCall;
  let refused: ApiCall;
  const tenant = uniqueTenant('srcapi');
  const refusedTenant = uniqueTenant('srcapirefused');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_srcapi');
    stack = await startStack({ env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0' } });
    checker = await OpenApiChecker.load(stack.api.url);
    owner = checkedClient(stack.api.url, checker, await stack.token(tenant));
    refused = checkedClient(stack.api.url, checker, await stack.token(refusedTenant));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  it('runs a templated image tag and env values from variables, rendered, while the API shows them un-rendered', async () => {
    const services = [
      {
        name: 'web',
        image: 'ctrlplane-test/busybox:{{ .var.tag }}',
        command: ['/bin/sh', '-c', `echo started-{{ .instance.name }}; ${IDLE}`],
        env: {
          GREETING: '{{ .var.greeting }}-{{ .region }}',
          HOST: '{{ .var.host }}',
          INSTANCE_ID: '{{ .instance.id }}',
          TENANT: '{{ .tenant.id }}',
          STATIC: 'plain',
        },
      },
    ];
    const variables = [
      { name: 'tag', type: 'string', default: '1', pattern: '^[0-9]+$' },
      { name: 'greeting', type: 'string', required: true },
      // Computed, and declared before... nothing: order does not matter.
      { name: 'host', type: 'string', expression: '{{ .var.greeting }}.{{ .region }}.example.com' },
    ];
    const res = await owner('POST', '/v1/instances?wait=60s', {
      name: 'templated',
      region: 'eu-west',
      services,
      variables,
      variable_values: { greeting: 'hello' },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.state, 'running', res.text);
    const id: string = res.body.id;
    created.push(id);

    const [container] = await containersOf(id);
    assert.ok(container, 'a container for the instance');
    const inspected = await docker.getContainer(container.Id).inspect();
    assert.equal(inspected.Config.Image, 'ctrlplane-test/busybox:1', 'the image tag came from the default');
    const env = inspected.Config.Env;
    for (const expected of [
      'GREETING=hello-eu-west',
      'HOST=hello.eu-west.example.com',
      `INSTANCE_ID=${id}`,
      `TENANT=${tenant}`,
      'STATIC=plain',
    ]) {
      assert.ok(env.includes(expected), `${expected} in ${JSON.stringify(env)}`);
    }
    const commandLine = [...(inspected.Config.Entrypoint ?? []), ...(inspected.Config.Cmd ?? [])].join(' ');
    assert.match(commandLine, /echo started-templated;/);

    // The API (and the read model behind it) keeps the source as submitted, templates and all.
    const got = await owner('GET', `/v1/instances/${id}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.region, 'eu-west');
    assert.equal(got.body.services[0].image, 'ctrlplane-test/busybox:{{ .var.tag }}');
    assert.equal(got.body.services[0].env.GREETING, '{{ .var.greeting }}-{{ .region }}');
    assert.equal(got.body.source.type, 'services');
    assert.equal(got.body.source.services[0].image, 'ctrlplane-test/busybox:{{ .var.tag }}');
    assert.deepEqual(got.body.source.services[0].env, services[0]!.env);
    assert.ok(!JSON.stringify(got.body).includes('hello-eu-west'), 'nothing rendered in the answer');

    // A stop and a start keep the rendered container; delete removes it.
    assert.equal((await owner('POST', `/v1/instances/${id}/stop?wait=30s`)).status, 200);
    assert.equal((await owner('POST', `/v1/instances/${id}/start?wait=30s`)).status, 200);
    const restarted = await docker.getContainer(container.Id).inspect();
    assert.ok(restarted.Config.Env.includes('GREETING=hello-eu-west'));
    assert.equal((await owner('DELETE', `/v1/instances/${id}?wait=30s`)).status, 204);
    assert.deepEqual(await containersOf(id), []);
  });

  it('refuses bad sources, variables and templates with a 400 naming the field or variable, writing nothing', async () => {
    const service = { name: 'web', image: 'ctrlplane-test/busybox:1', command: ['/bin/sh', '-c', IDLE] };
    const withImage = (image: string) => [{ ...service, image }];
    const withEnv = (env: Record<string, string>) => [{ ...service, env }];
    const cases: { what: string; body: Record<string, unknown>; code: string; field: RegExp }[] = [
      {
        what: 'a helm source on Docker',
        body: { name: 'r1', source: { type: 'helm', helm: { chart: 'redis' } } },
        code: 'unsupported_source',
        field: /^source\.type$/,
      },
      {
        what: 'a manifests source on Docker',
        body: { name: 'r2', source: { type: 'manifests', manifests: { inline: 'kind: ConfigMap\n' } } },
        code: 'unsupported_source',
        field: /^source\.type$/,
      },
      {
        what: 'an argocd source on Docker',
        body: { name: 'r3', source: { type: 'argocd', argocd: { repo_url: 'https://git.example/x' } } },
        code: 'unsupported_source',
        field: /^source\.type$/,
      },
      {
        what: 'an unknown source type',
        body: { name: 'r4', source: { type: 'weird' } },
        code: 'invalid_request',
        field: /^source\.type$/,
      },
      {
        what: 'a helm source without its payload',
        body: { name: 'r5', source: { type: 'helm' } },
        code: 'invalid_request',
        field: /^source\.helm$/,
      },
      {
        what: 'a helm source with a blank chart',
        body: { name: 'r6', source: { type: 'helm', helm: { chart: ' ' } } },
        code: 'invalid_request',
        field: /^source\.helm\.chart$/,
      },
      {
        what: 'a payload of another type',
        body: { name: 'r7', source: { type: 'services', services: [service], helm: { chart: 'x' } } },
        code: 'invalid_request',
        field: /^source\.helm$/,
      },
      {
        what: 'a required variable without a value',
        body: {
          name: 'r8',
          services: withEnv({ G: '{{ .var.greeting }}' }),
          variables: [{ name: 'greeting', type: 'string', required: true }],
        },
        code: 'missing_required',
        field: /^variable_values\.greeting$/,
      },
      {
        what: 'an enum value that is not a member',
        body: {
          name: 'r9',
          services: [service],
          variables: [{ name: 'plan', type: 'enum', enum: ['free', 'pro'] }],
          variable_values: { plan: 'enterprise' },
        },
        code: 'invalid_value',
        field: /plan/,
      },
      {
        what: 'a value that does not match the pattern',
        body: {
          name: 'r10',
          services: [service],
          variables: [{ name: 'tag', type: 'string', pattern: '^[0-9]+$' }],
          variable_values: { tag: 'latest' },
        },
        code: 'invalid_value',
        field: /tag/,
      },
      {
        what: 'an int that is not one',
        body: {
          name: 'r11',
          services: [service],
          variables: [{ name: 'replicas', type: 'int' }],
          variable_values: { replicas: 'notanint' },
        },
        code: 'invalid_value',
        field: /replicas/,
      },
      {
        what: 'computed variables in a cycle',
        body: {
          name: 'r12',
          services: [service],
          variables: [
            { name: 'a', type: 'string', expression: '{{ .var.b }}-a' },
            { name: 'b', type: 'string', expression: '{{ .var.a }}-b' },
          ],
        },
        code: 'cycle',
        field: /^variables\.(a|b)$/,
      },
      {
        what: 'a default and an expression',
        body: {
          name: 'r13',
          services: [service],
          variables: [{ name: 'x', type: 'string', default: 'd', expression: '{{ .region }}' }],
        },
        code: 'invalid_definition',
        field: /^variables\[0\]\.default$/,
      },
      {
        what: 'two variables of one name',
        body: {
          name: 'r14',
          services: [service],
          variables: [
            { name: 'x', type: 'string' },
            { name: 'x', type: 'int' },
          ],
        },
        code: 'invalid_definition',
        field: /^variables\[1\]\.name$/,
      },
      {
        what: 'a template naming a variable that does not exist',
        body: { name: 'r15', services: withImage('ctrlplane-test/busybox:{{ .var.nope }}') },
        code: 'render_failed',
        field: /web image/,
      },
      {
        what: 'a template construct outside the {{ .path }} subset',
        body: { name: 'r16', services: withEnv({ X: '{{ if .region }}x{{ end }}' }) },
        code: 'render_failed',
        field: /web env X/,
      },
      {
        what: 'a rendered image that is not an image reference',
        body: {
          name: 'r17',
          services: withImage('ctrlplane-test/busybox:{{ .var.tag }}'),
          variables: [{ name: 'tag', type: 'string' }],
          variable_values: { tag: 'one two' },
        },
        code: 'render_failed',
        field: /^services\[0\]\.image$/,
      },
      {
        what: 'a value for a secret variable',
        body: {
          name: 'r18',
          services: [service],
          variables: [
            { name: 'db-password', type: 'secret', secret: { key: 'tenant/db/password', type: 'env' } },
          ],
          variable_values: { 'db-password': 'hunter2' },
        },
        code: 'invalid_value',
        field: /^variable_values\.db-password$/,
      },
      {
        what: 'a secret variable whose env var a service sets already',
        body: {
          name: 'r19',
          services: withEnv({ DB_PASSWORD: 'x' }),
          variables: [{ name: 'db-password', type: 'secret', secret: { key: 'tenant/db/password' } }],
        },
        code: 'invalid_source',
        field: /DB_PASSWORD/,
      },
      {
        what: 'a variable definition of an unknown type',
        body: { name: 'r20', services: [service], variables: [{ name: 'x', type: 'float' }] },
        code: 'invalid_request',
        field: /^variables\[0\]\.type$/,
      },
    ];
    for (const [i, c] of cases.entries()) {
      const res = await refused('POST', '/v1/instances', c.body, {
        headers: { 'idempotency-key': `refused-${i}` },
      });
      assert.equal(res.status, 400, `${c.what}: ${res.text}`);
      assert.equal(res.body.code, c.code, `${c.what}: ${res.text}`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.ok(
        res.body.errors?.some((e: { field: string }) => c.field.test(e.field)),
        `${c.what}: errors name ${c.field}: ${res.text}`,
      );
      assert.ok(!res.text.includes('hunter2'), `${c.what}: the answer repeats no secret value`);
    }
    assert.deepEqual(await tenantRows(stack.orm, refusedTenant), {
      instances: 0,
      instance_events: 0,
      idempotency_keys: 0,
    });

    // No workflow either: once a valid create of the tenant is visible, it is the tenant's only workflow.
    const valid = await refused('POST', '/v1/instances', { name: 'valid', services: [service] });
    assert.equal(valid.status, 201, valid.text);
    created.push(valid.body.id);
    const expected = [`instance/${valid.body.id}`];
    await eventually('the valid create to be visible', async () =>
      JSON.stringify(await tenantWorkflowIds(stack.client, refusedTenant)) === JSON.stringify(expected)
        ? true
        : undefined,
    );
    assert.deepEqual(await tenantWorkflowIds(stack.client, refusedTenant), expected);
    assert.equal((await refused('DELETE', `/v1/instances/${valid.body.id}?wait=30s`)).status, 204);
  });
});
