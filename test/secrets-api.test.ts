import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { redactionMarker } from '../domain/sources/secret-redaction.ts';
import { secretEnvName } from '../providers/secret-env-name.ts';
import { instanceWorkflowId } from '../workflows/messages.ts';
import { type ApiCall, type CheckedResponse, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { containersOf, docker, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

/**
 * The JSON of a workflow history as fetched (proto JSON: payload bytes are base64), plus the same JSON with
 * every payload's `data` decoded to text, so a value inside a payload is findable either way.
 */
function historyText(history: unknown): string {
  const raw = JSON.stringify(history, (_key, value) =>
    value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value,
  );
  const decoded = JSON.stringify(JSON.parse(raw), (key, value) =>
    key === 'data' && typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : value,
  );
  return `${raw}\n${decoded}`;
}

// Real Temporal, PostgreSQL, worker and Docker engine. The secret store is the env store of the worker (the
// stack's env, as CTRLPLANE_SECRET_STORE=env reads it): the marker is set there and nothing else.
describe('a secret variable reaches the container and nothing else', () => {
  let stack: Stack;
  let checker: OpenApiChecker;
  let api: ApiCall;
  const tenant = uniqueTenant('secrets');
  const victim = uniqueTenant('secretsvictim');
  const marker = `s3cr3t-${randomUUID()}`;
  const victimMarker = `victim-${randomUUID()}`;
  const created: string[] = [];
  const answers: CheckedResponse[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_secrets');
    stack = await startStack({
      env: {
        CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0',
        CTRLPLANE_SECRET_STORE: 'env',
        CTRLPLANE_DRIFT_CHECK_INTERVAL_MS: '1000',
        [secretEnvName('CTRLPLANE_SECRET_', tenant, ['db', 'password'])]: marker,
        // The victim's secret, where the store keeps it and where a `<victim>/db/password` key used to lead.
        [secretEnvName('CTRLPLANE_SECRET_', victim, ['db', 'password'])]: victimMarker,
        [`CTRLPLANE_SECRET_${victim.toUpperCase()}_DB_PASSWORD`]: victimMarker,
      },
    });
    checker = await OpenApiChecker.load(stack.api.url);
    const call = checkedClient(stack.api.url, checker, await stack.token(tenant));
    api = async (method, path, body, options) => {
      const res = await call(method, path, body, options);
      answers.push(res);
      return res;
    };
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  it('is in the container environment, and absent from the read model, events, API answers and history', async () => {
    const res = await api('POST', '/v1/instances?wait=60s', {
      name: 'with-secret',
      region: 'eu-west',
      services: [
        {
          name: 'app',
          image: 'ctrlplane-test/busybox:1',
          command: ['/bin/sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1; done"],
          env: { MODE: '{{ .var.mode }}' },
        },
      ],
      variables: [
        { name: 'mode', type: 'enum', enum: ['dev', 'prod'], default: 'prod' },
        { name: 'db-password', type: 'secret', secret: { key: 'db/password', type: 'env' } },
      ],
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.state, 'running', res.text);
    const id: string = res.body.id;
    created.push(id);

    // Present where it belongs: the container's environment.
    const [container] = await containersOf(id);
    assert.ok(container);
    const inspected = await docker.getContainer(container.Id).inspect();
    assert.ok(inspected.Config.Env.includes(`DB_PASSWORD=${marker}`), JSON.stringify(inspected.Config.Env));
    assert.ok(inspected.Config.Env.includes('MODE=prod'));
    assert.ok(!JSON.stringify(inspected.Config.Labels).includes(marker), 'not in the container labels');

    // Exercise the answers a client sees: the instance, the list, its events, and a command.
    await api('GET', `/v1/instances/${id}`);
    await api('GET', '/v1/instances');
    await api('GET', `/v1/instances/${id}/events`);
    assert.equal((await api('POST', `/v1/instances/${id}/restart?wait=30s`)).status, 200);
    await api('GET', `/v1/instances/${id}/events`);
    await api('GET', `/v1/instances/${id}/resources`);
    for (const answer of answers) {
      assert.ok(
        !answer.text.includes(marker),
        `an API answer shows the secret: ${answer.text.slice(0, 300)}`,
      );
    }

    // The read model: every column of the row, every event, every stored idempotent answer.
    const conn = stack.orm.em.fork().getConnection();
    const [row] = await conn.execute<{ json: string }[]>(
      'select row_to_json(i)::text as json from instances i where id = ?',
      [id],
    );
    assert.ok(row && !row.json.includes(marker), 'the instance row holds no secret');
    const events = await conn.execute<{ json: string }[]>(
      'select row_to_json(e)::text as json from instance_events e where instance_id = ?',
      [id],
    );
    assert.ok(events.length >= 3, `${events.length} events`);
    for (const event of events)
      assert.ok(!event.json.includes(marker), `an event holds the secret: ${event.json}`);

    // The workflow's history, every event, with payloads decoded.
    const history = await stack.client.workflow.getHandle(instanceWorkflowId(id)).fetchHistory();
    const text = historyText(history);
    assert.ok((history.events ?? []).length > 10, 'a history to search');
    assert.ok(text.includes('db/password'), 'the search sees payloads: the reference is there');
    assert.ok(text.includes('{{ .var.mode }}'), 'and the un-rendered source');
    assert.ok(!text.includes(marker), 'the workflow history holds no secret');
    assert.ok(!text.includes(Buffer.from(marker).toString('base64').slice(0, 24)), 'not even base64-encoded');

    assert.equal((await api('DELETE', `/v1/instances/${id}?wait=30s`)).status, 204);
    assert.deepEqual(await containersOf(id), []);
  });

  it('fails the instance, naming the variable and its reference, when the secret store lacks it', async () => {
    const res = await api('POST', '/v1/instances?wait=60s', {
      name: 'missing-secret',
      services: [{ name: 'app', image: 'ctrlplane-test/busybox:1', command: ['/bin/sh', '-c', 'sleep 60'] }],
      variables: [{ name: 'api-key', type: 'secret', secret: { key: 'api/key' } }],
    });
    assert.equal(res.status, 201, res.text);
    created.push(res.body.id);
    assert.equal(res.body.state, 'failed', res.text);
    assert.match(res.body.error ?? '', /api-key/);
    assert.match(res.body.error ?? '', /api\/key/);
    assert.deepEqual(await containersOf(res.body.id), [], 'nothing was started without its secret');
    assert.equal((await api('DELETE', `/v1/instances/${res.body.id}?wait=30s`)).status, 204);
  });

  it("does not put another tenant's secret into the caller's container, whatever the key names", async () => {
    const res = await api('POST', '/v1/instances?wait=60s', {
      name: 'cross-tenant',
      services: [{ name: 'app', image: 'ctrlplane-test/busybox:1', command: ['/bin/sh', '-c', 'sleep 60'] }],
      variables: [{ name: 'stolen', type: 'secret', secret: { key: `${victim}/db/password` } }],
    });
    assert.equal(res.status, 201, res.text);
    created.push(res.body.id);
    for (const container of await containersOf(res.body.id)) {
      const inspected = await docker.getContainer(container.Id).inspect();
      assert.ok(
        !JSON.stringify(inspected.Config.Env).includes(victimMarker),
        "the victim's secret is in the attacker's container",
      );
    }
    assert.equal(res.body.state, 'failed', 'the key is a key of the caller, which holds no such secret');
    assert.match(res.body.error ?? '', /stolen.*not found/);
    assert.ok(!res.text.includes(victimMarker));
    assert.equal((await api('DELETE', `/v1/instances/${res.body.id}?wait=30s`)).status, 204);
  });

  it("refuses a key that could leave the tenant's secrets with a 422 naming the field, writing nothing", async () => {
    const keys = [
      '/etc/passwd',
      '../other/db/password',
      'db/../../x',
      './db',
      'a//b',
      'db/',
      'env:HOME',
      'a\\b',
    ];
    for (const [i, key] of keys.entries()) {
      const name = `bad-key-${i}`;
      const res = await api('POST', '/v1/instances', {
        name,
        services: [
          { name: 'app', image: 'ctrlplane-test/busybox:1', command: ['/bin/sh', '-c', 'sleep 60'] },
        ],
        variables: [{ name: 'pw', type: 'secret', secret: { key } }],
      });
      assert.equal(res.status, 422, `${key}: ${res.text}`);
      assert.equal(res.body.code, 'invalid_secret_key', res.text);
      assert.deepEqual(
        res.body.errors?.map((e: { field: string }) => e.field),
        ['variables[0].secret.key'],
        res.text,
      );
      const listed = await api('GET', '/v1/instances');
      assert.ok(!listed.text.includes(name), `${key}: an instance was written`);
    }
  });

  it("redacts the secret from a failed init service's output: in the error, the events and the workflow history", async () => {
    const res = await api('POST', '/v1/instances?wait=60s', {
      name: 'leaky-init',
      services: [
        {
          name: 'migrate',
          role: 'init',
          image: 'ctrlplane-test/busybox:1',
          command: ['/bin/sh', '-c', 'env; echo "password is $DB_PASSWORD"; exit 1'],
        },
        { name: 'app', image: 'ctrlplane-test/busybox:1', command: ['/bin/sh', '-c', 'sleep 60'] },
      ],
      variables: [{ name: 'db-password', type: 'secret', secret: { key: 'db/password' } }],
    });
    assert.equal(res.status, 201, res.text);
    const id: string = res.body.id;
    created.push(id);
    assert.equal(res.body.state, 'failed', res.text);
    const hidden = redactionMarker('db-password');
    const error: string = res.body.error ?? '';
    assert.match(error, /init service migrate exited with code 1/);
    assert.ok(!error.includes(marker), `the error shows the secret: ${error}`);
    assert.ok(error.includes(`DB_PASSWORD=${hidden}`), error);
    assert.ok(error.includes(`password is ${hidden}`), error);

    const instance = await api('GET', `/v1/instances/${id}`);
    assert.ok(!instance.text.includes(marker) && instance.text.includes(hidden), instance.text);
    const events = await api('GET', `/v1/instances/${id}/events`);
    assert.ok(!events.text.includes(marker), `an event shows the secret: ${events.text}`);
    assert.ok(events.text.includes(hidden), events.text);

    const history = await stack.client.workflow.getHandle(instanceWorkflowId(id)).fetchHistory();
    const text = historyText(history);
    assert.ok(text.includes('init service migrate exited with code 1'), 'the failure is in the history');
    assert.ok(!text.includes(marker), 'the workflow history holds no secret');
    assert.ok(text.includes(hidden), 'but the marker');
    assert.equal((await api('DELETE', `/v1/instances/${id}?wait=30s`)).status, 204);
  });

  it('redacts the secret from health-check output the drift check reads into the workflow history', async () => {
    // The health check's HTTP GET gets a 500 whose reason phrase is the secret; wget prints it.
    const serve =
      'while true; do printf "HTTP/1.1 500 %s\\r\\nContent-Length: 0\\r\\n\\r\\n" "$DB_PASSWORD" | nc -l -p 8080 >/dev/null; done';
    const res = await api('POST', '/v1/instances?wait=60s', {
      name: 'leaky-health',
      services: [
        {
          name: 'web',
          image: 'ctrlplane-test/busybox:1',
          command: ['/bin/sh', '-c', serve],
          health_check: {
            port: 8080,
            path: '/healthz',
            interval: 500_000_000,
            timeout: 2_000_000_000,
            retries: 1,
          },
        },
      ],
      variables: [{ name: 'db-password', type: 'secret', secret: { key: 'db/password' } }],
    });
    assert.equal(res.status, 201, res.text);
    const id: string = res.body.id;
    created.push(id);
    assert.equal(res.body.state, 'running', res.text);
    const [container] = await containersOf(id);
    assert.ok(container);
    const hidden = redactionMarker('db-password');
    const handle = stack.client.workflow.getHandle(instanceWorkflowId(id));
    const deadline = Date.now() + 30_000;
    let text = '';
    for (;;) {
      const health = (await docker.getContainer(container.Id).inspect()).State.Health;
      const printed = health?.Log?.some((entry) => entry.Output.includes(marker)) ?? false;
      text = historyText(await handle.fetchHistory());
      if (printed && text.includes('health check unhealthy')) break;
      assert.ok(Date.now() < deadline, `no unhealthy drift observation within 30 s (printed: ${printed})`);
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(!text.includes(marker), 'the health-check output in the history holds the secret');
    const quoted = `health check unhealthy (exit 127: wget: server returned error: HTTP/1.1 500 ${hidden} `;
    const at = text.indexOf('health check unhealthy');
    assert.ok(text.includes(quoted), text.slice(at - 100, at + 300));

    const events = await api('GET', `/v1/instances/${id}/events`);
    assert.ok(!events.text.includes(marker), events.text);
    assert.equal((await api('DELETE', `/v1/instances/${id}?wait=30s`)).status, 204);
  });
});
