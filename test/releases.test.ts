import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ReadModelProjection } from '../db/read-model-projection.ts';
import { newInstanceId } from '../domain/ids.ts';
import type { Instance } from '../domain/instance.ts';
import type { Release } from '../domain/release.ts';
import { releaseIdFromUuid } from '../domain/release.ts';
import { type ApiCall, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import {
  containersOf,
  docker,
  httpdService,
  removeInstances,
  removeTenantLeftovers,
} from './support/docker.ts';
import { eventsOf } from './support/events.ts';
import { eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and Docker. Every answer is checked against the OpenAPI document. The bad image is
// one on the allowlist that exists nowhere: nothing can be pulled here, so its deploy fails for real.
const MISSING_IMAGE = 'ctrlplane-test/no-such-image:1';

describe('releases, rollback and safe deploys', () => {
  let stack: Stack;
  let api: ApiCall;
  const tenant = uniqueTenant('rel');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_rel_');
    stack = await startStack();
    const checker = await OpenApiChecker.load(stack.api.url);
    api = checkedClient(stack.api.url, checker, await stack.token(tenant));
  });

  after(async () => {
    await stack?.orm.em
      .fork()
      .getConnection()
      .execute("delete from releases where tenant_id like 'ten_rel_%'");
    await stack?.close();
    await removeInstances(created);
  });

  const web = (content: string, image?: string) => ({
    ...httpdService(content),
    ...(image ? { image } : {}),
    resources: { cpu_millis: 0, memory_mb: 64, replicas: 1 },
  });

  async function newInstance(name: string): Promise<Instance> {
    const res = await api('POST', '/v1/instances?wait=30s', { name, services: [web(name)] });
    assert.equal(res.body.state, 'running', JSON.stringify(res.body));
    created.push(res.body.id);
    return res.body;
  }

  const releasesOf = async (id: string): Promise<(Release & { current: boolean })[]> => {
    const res = await api('GET', `/v1/instances/${id}/releases?limit=100`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items;
  };

  /** What the instance's one container runs: its greeting, and whether it runs. */
  async function container(id: string): Promise<{ greeting: string | undefined; running: boolean }> {
    const [c] = await containersOf(id);
    assert.ok(c, 'the instance has a container');
    const inspected = await docker.getContainer(c.Id).inspect();
    const env = inspected.Config.Env.find((e) => e.startsWith('GREETING='));
    return { greeting: env?.slice('GREETING='.length), running: inspected.State.Running };
  }

  /** The page the instance's public endpoint serves. */
  async function served(instance: Instance): Promise<string> {
    const endpoint = instance.endpoints?.find((e) => e.public);
    assert.ok(endpoint, `a public endpoint in ${JSON.stringify(instance.endpoints)}`);
    return eventually('the published port to answer', async () => {
      const page = await fetch(endpoint.url).catch(() => undefined);
      return page?.status === 200 ? (await page.text()).trim() : undefined;
    });
  }

  it('makes a release per change, lists them newest first, and rolls back to one as a new release', async () => {
    const instance = await newInstance('rel-one');
    const id = instance.id;
    const [v1] = await releasesOf(id);
    assert.ok(v1);
    assert.equal(v1.number, 1);
    assert.equal(v1.status, 'deployed');
    assert.equal(v1.description, 'create');
    assert.equal(v1.actor, `user-${tenant}`);
    assert.match(v1.request_id, /^create:/);
    assert.equal(v1.current, true);
    assert.match(v1.id, /^rel_/);
    assert.equal(instance.current_release, v1.id, 'the create answers with its release');
    assert.equal(v1.spec.services?.[0]?.env?.GREETING, 'rel-one');

    const patch = await api('PATCH', `/v1/instances/${id}?wait=true`, { services: [web('rel-two')] });
    assert.equal(patch.status, 200, JSON.stringify(patch.body));
    assert.deepEqual(await container(id), { greeting: 'rel-two', running: true });
    const v2 = (await releasesOf(id))[0];
    assert.equal(v2?.number, 2);
    assert.equal(v2?.description, 'update: services');
    assert.equal(v2?.status, 'deployed');
    assert.equal((await api('GET', `/v1/instances/${id}`)).body.current_release, v2?.id);
    // A rename or a relabel changes nothing that runs: no release.
    await api('PATCH', `/v1/instances/${id}?wait=true`, { labels: { team: 'a' } });
    assert.equal((await releasesOf(id)).length, 2);

    const first = await api('GET', `/v1/instances/${id}/releases?limit=1`);
    assert.deepEqual(
      first.body.items.map((r: Release) => r.number),
      [2],
    );
    assert.ok(first.body.next_cursor);
    const second = await api('GET', `/v1/instances/${id}/releases?limit=1&cursor=${first.body.next_cursor}`);
    assert.deepEqual(
      second.body.items.map((r: Release) => r.number),
      [1],
    );
    assert.equal(second.body.next_cursor, undefined);

    const byNumber = await api('GET', `/v1/instances/${id}/releases/1`);
    const byId = await api('GET', `/v1/instances/${id}/releases/${v1.id}`);
    assert.equal(byNumber.status, 200);
    assert.deepEqual(byId.body, byNumber.body);
    assert.equal(byNumber.body.current, false);
    const missing = await api('GET', `/v1/instances/${id}/releases/99`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.errors[0].field, 'release');
    const malformed = await api('GET', `/v1/instances/${id}/releases/v1`);
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.errors[0].field, 'release');

    for (const [body, field] of [
      [{}, 'release'],
      [{ release: 0 }, 'release'],
      [{ release: 'latest' }, 'release'],
      [{ release: 1, force: true }, 'force'],
    ] as const) {
      const refused = await api('POST', `/v1/instances/${id}/rollback`, body);
      assert.equal(refused.status, 400, JSON.stringify(body));
      assert.equal(refused.body.errors[0].field, field, JSON.stringify(refused.body));
    }
    const unknown = await api('POST', `/v1/instances/${id}/rollback?wait=true`, { release: 42 });
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    assert.equal(unknown.body.errors[0].field, 'release');
    assert.equal((await releasesOf(id)).length, 2, 'a refused rollback makes no release');

    const key = { headers: { 'Idempotency-Key': `rollback-${id}` } };
    const rollback = await api('POST', `/v1/instances/${id}/rollback?wait=true`, { release: 1 }, key);
    assert.equal(rollback.status, 200, JSON.stringify(rollback.body));
    assert.equal(await served(rollback.body), 'rel-one');
    assert.deepEqual(await container(id), { greeting: 'rel-one', running: true });
    const again = await api('POST', `/v1/instances/${id}/rollback?wait=true`, { release: 1 }, key);
    assert.equal(again.status, 200);
    const releases = await releasesOf(id);
    assert.deepEqual(
      releases.map((r) => [r.number, r.description, r.status, r.current]),
      [
        [3, 'rollback to v1', 'deployed', true],
        [2, 'update: services', 'deployed', false],
        [1, 'create', 'deployed', false],
      ],
      'the repeated rollback (same Idempotency-Key) made no second release',
    );
    assert.equal(releases[0]?.rollback_of, 1);
    assert.deepEqual(releases[0]?.spec, v1.spec, "v3 runs v1's spec");
    assert.equal(releases[0]?.actor, `user-${tenant}`);
    assert.equal(rollback.body.current_release, releases[0]?.id);
    const rolledBack = (await eventsOf(stack.orm, id)).filter((e) => e.type === 'instance.rolled_back');
    assert.equal(rolledBack.length, 1);
    assert.equal(rolledBack[0]?.payload.conclusion, 'succeeded');
    assert.equal(rolledBack[0]?.payload.rollback_of, 1);
  });

  it('goes back to the previous release by itself when a new one cannot start, and keeps serving', async () => {
    const instance = await newInstance('rel-safe');
    const id = instance.id;
    const [v1] = await releasesOf(id);

    const bad = await api('PATCH', `/v1/instances/${id}?wait=true`, {
      services: [web('rel-broken', MISSING_IMAGE)],
    });
    assert.ok(bad.status >= 400, `the update concludes failed: ${JSON.stringify(bad.body)}`);
    assert.match(bad.body.detail, /release v2 failed and the instance went back to v1/);
    const after = (await api('GET', `/v1/instances/${id}`)).body;
    assert.equal(after.state, 'running', JSON.stringify(after));
    assert.equal(after.error, undefined);
    assert.equal(after.current_release, v1?.id);
    assert.equal(after.services[0].image, instance.services?.[0]?.image, 'the instance has v1 spec again');
    assert.deepEqual(await container(id), { greeting: 'rel-safe', running: true });
    assert.equal(await served(after), 'rel-safe');
    const [v2, first] = await releasesOf(id);
    assert.equal(v2?.number, 2);
    assert.equal(v2?.status, 'failed');
    assert.match(v2?.error ?? '', /no-such-image/);
    assert.equal(v2?.current, false);
    assert.equal(first?.current, true);
    assert.equal(first?.status, 'deployed');
    const concluded = (await eventsOf(stack.orm, id)).filter((e) => e.payload.conclusion);
    assert.equal(concluded.at(-1)?.type, 'instance.deploy_rolled_back');
    assert.equal(concluded.at(-1)?.payload.conclusion, 'failed');
    assert.equal(concluded.at(-1)?.payload.failed_release, 2);
    assert.equal(concluded.at(-1)?.payload.restored_release, 1);

    // Opting out keeps today's behaviour: the instance is failed on the bad release.
    const kept = await api('PATCH', `/v1/instances/${id}?wait=true&rollback_on_failure=false`, {
      services: [web('rel-broken-again', MISSING_IMAGE)],
    });
    assert.ok(kept.status >= 400, JSON.stringify(kept.body));
    const failed = (await api('GET', `/v1/instances/${id}`)).body;
    assert.equal(failed.state, 'failed');
    assert.match(failed.error, /no-such-image/);
    const [v3] = await releasesOf(id);
    assert.equal(v3?.number, 3);
    assert.equal(v3?.status, 'failed');
    assert.equal(failed.current_release, v3?.id);
    const badQuery = await api('PATCH', `/v1/instances/${id}?rollback_on_failure=maybe`, { labels: {} });
    assert.equal(badQuery.status, 400);
    assert.equal(badQuery.body.errors[0].field, 'rollback_on_failure');

    // The way back from a failed instance: roll back to v1 (recorded at once), then start it.
    const rollback = await api('POST', `/v1/instances/${id}/rollback?wait=true`, { release: v1?.id });
    assert.equal(rollback.status, 200, JSON.stringify(rollback.body));
    assert.equal(
      rollback.body.state,
      'failed',
      'a rollback of a failed instance is applied at its next start',
    );
    assert.equal((await releasesOf(id))[0]?.status, 'pending');
    const start = await api('POST', `/v1/instances/${id}/start?wait=true`);
    assert.equal(start.status, 200, JSON.stringify(start.body));
    assert.equal(start.body.state, 'running');
    assert.equal(await served(start.body), 'rel-safe');
    const [v4] = await releasesOf(id);
    assert.deepEqual(
      [v4?.number, v4?.description, v4?.status, v4?.current],
      [4, 'rollback to v1', 'deployed', true],
    );
  });

  it('writes each release once: a retried write adds nothing and an older one never moves its status back', async () => {
    const projection = new ReadModelProjection(stack.orm);
    const now = new Date().toISOString();
    const instance: Instance = {
      id: newInstanceId(),
      created_at: now,
      updated_at: now,
      tenant_id: tenant,
      name: 'rel-projection',
      slug: `rel-projection-${Date.now()}`,
      provider_name: 'docker',
      provider_ref: '',
      region: '',
      state: 'provisioning',
      kind: 'deployment',
      services: [web('x')],
    };
    const release: Release = {
      id: releaseIdFromUuid(crypto.randomUUID()),
      instance_id: instance.id,
      tenant_id: tenant,
      number: 1,
      spec: { services: instance.services },
      status: 'pending',
      description: 'create',
      request_id: 'create:test',
      created_at: now,
    };
    const write = (seq: number, r: Release) =>
      projection.record({
        instance: { ...instance, current_release: r.id },
        seq,
        event: { type: 'instance.provisioning', payload: {} },
        releases: [r],
      });
    await write(1, release);
    await write(2, { ...release, status: 'failed', error: 'boom' });
    await write(1, release); // the first write, retried after the second
    await write(2, { ...release, status: 'failed', error: 'boom' });
    const rows = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ number: number; status: string; error: string | null }[]>(
        'select number, status, error from releases where instance_id = ?',
        [instance.id],
      );
    assert.deepEqual(rows, [{ number: 1, status: 'failed', error: 'boom' }]);
    await stack.orm.em.fork().getConnection().execute('delete from instances where id = ?', [instance.id]);
  });
});
