import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { InstanceRecord } from '../db/entities/instance-record.ts';
import { InstanceStore } from '../db/instance-store.ts';
import { newInstanceId } from '../domain/ids.ts';
import type { InstanceState } from '../domain/instance-state.ts';
import { type ApiCall, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { deleteTenantRows, seedRecord, seedRows } from './support/api-seed.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// The subject here is the API's listing over the read model, not a provider: rows are seeded straight into
// PostgreSQL (no workflow, no container behind them) and the concurrent creates go through the API's own
// InstanceStore insert, the one a create uses.
describe('listing: keyset pagination under concurrent creates, and every filter combination', () => {
  let stack: Stack;
  let checker: OpenApiChecker;

  before(async () => {
    stack = await startStack({ worker: false, env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0' } });
    await deleteTenantRows(stack.orm, 'ten_list');
    checker = await OpenApiChecker.load(stack.api.url);
  });

  after(async () => {
    await deleteTenantRows(stack.orm, 'ten_list');
    await stack?.close();
  });

  async function client(tenant: string): Promise<ApiCall> {
    return checkedClient(stack.api.url, checker, await stack.token(tenant));
  }

  /** Every page of a listing, following next_cursor; checks order and the absence of repeats on the way. */
  async function pageThrough(api: ApiCall, query: string, limit: number, onPage?: () => Promise<void>) {
    const ids: string[] = [];
    const totals: number[] = [];
    let cursor: string | undefined;
    let previous: { created_at: string; id: string } | undefined;
    let pages = 0;
    do {
      const res = await api(
        'GET',
        `/v1/instances?limit=${limit}${query ? `&${query}` : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      pages++;
      totals.push(res.body.total);
      assert.ok(res.body.items.length <= limit);
      for (const item of res.body.items as { created_at: string; id: string }[]) {
        if (previous) {
          const newerFirst =
            item.created_at < previous.created_at ||
            (item.created_at === previous.created_at && item.id < previous.id);
          assert.ok(newerFirst, `order broken at ${item.id} after ${previous.id}`);
        }
        previous = item;
        ids.push(item.id);
      }
      cursor = res.body.next_cursor;
      if (cursor) assert.equal(res.body.items.length, limit, 'a page with a next_cursor is full');
      await onPage?.();
    } while (cursor);
    return { ids, totals, pages };
  }

  it('lists 1,000 rows with limit 7 while 200 more are created: each row once, no skip, totals right', async () => {
    const tenant = uniqueTenant('list');
    const api = await client(tenant);
    const base = Date.now() - 3_600_000;
    // Spread over an hour, three rows per millisecond value, so the id breaks ties in the keyset.
    const initial = Array.from({ length: 1000 }, (_, i) =>
      seedRecord({
        tenant_id: tenant,
        name: `seed-${i}`,
        created_at: new Date(base + Math.floor(i / 3) * 1000).toISOString(),
        labels: { parity: i % 2 === 0 ? 'even' : 'odd' },
      }),
    );
    await seedRows(stack.orm, initial);

    const store = new InstanceStore(stack.orm);
    let inserted = 0;
    const insertOne = async (i: number) => {
      const row = seedRecord({
        tenant_id: tenant,
        name: `late-${i}`,
        labels: { parity: i % 2 === 0 ? 'even' : 'odd' },
      });
      await store.insertNew({ ...row, created_at: new Date(), id: newInstanceId(), seq: 0 });
      inserted++;
    };
    // The writers start once both listings have read their first page, and go on while they page.
    let release!: () => void;
    const started = new Promise<void>((r) => {
      release = r;
    });
    let firstPages = 0;
    const onPage = async () => {
      firstPages++;
      if (firstPages === 2) release();
      await new Promise((r) => setImmediate(r));
    };
    const writers = started.then(async () => {
      for (let batch = 0; batch < 20; batch++) {
        await Promise.all(Array.from({ length: 10 }, (_, k) => insertOne(batch * 10 + k)));
        await new Promise((r) => setTimeout(r, 20));
      }
    });

    const [all, even] = await Promise.all([
      pageThrough(api, '', 7, onPage),
      pageThrough(api, 'label=parity%3Deven', 7, onPage),
      writers,
    ]);

    assert.equal(inserted, 200);
    const initialIds = new Set(initial.map((r) => r.id));
    const evenIds = new Set(initial.filter((r) => r.labels?.parity === 'even').map((r) => r.id));
    for (const [listing, expected] of [
      [all, initialIds],
      [even, evenIds],
    ] as const) {
      assert.equal(new Set(listing.ids).size, listing.ids.length, 'no row is listed twice');
      assert.equal(listing.ids.length, expected.size, 'every row present at the start is listed once');
      for (const id of listing.ids) assert.ok(expected.has(id), `${id} was not present at the start`);
      assert.equal(listing.pages, Math.ceil(expected.size / 7));
    }
    // total counts every match at the time of each page: from the first count to the final one, never down.
    for (const [listing, start, end] of [
      [all, 1000, 1200],
      [even, 500, 600],
    ] as const) {
      assert.equal(listing.totals[0], start);
      listing.totals.forEach((t, i) => {
        assert.ok(t >= start && t <= end, `total ${t} out of range`);
        if (i > 0) assert.ok(t >= (listing.totals[i - 1] ?? 0), 'total never goes down while rows are added');
      });
    }
    const final = await api('GET', '/v1/instances?limit=1');
    assert.equal(final.body.total, 1200);
    const finalEven = await api('GET', '/v1/instances?limit=1&label=parity=even');
    assert.equal(finalEven.body.total, 600);
  });

  it('answers each combination of state, provider, datacenter, label and slug with exactly its rows', async () => {
    const tenant = uniqueTenant('listf');
    const decoy = uniqueTenant('listdecoy');
    const api = await client(tenant);
    const states: InstanceState[] = ['running', 'stopped', 'failed', 'destroyed'];
    const providers = ['docker', 'kubernetes'];
    const datacenters = [undefined, 'dc_a', 'dc_b'];
    const envs = [undefined, 'prod', 'dev'];
    const teams = ['a', 'b'];
    const rows: InstanceRecord[] = [];
    const decoys: InstanceRecord[] = [];
    let n = 0;
    const base = Date.now() - 600_000;
    for (const state of states)
      for (const provider_name of providers)
        for (const datacenter_id of datacenters)
          for (const env of envs)
            for (const team of teams) {
              const labels: Record<string, string> = { team, ...(env ? { env } : {}) };
              const fields = {
                name: `f ${state} ${provider_name} ${datacenter_id ?? 'none'} ${env ?? 'none'} ${team}`,
                state,
                provider_name,
                labels,
                created_at: new Date(base + n++ * 10).toISOString(),
                ...(datacenter_id ? { datacenter_id } : {}),
              };
              rows.push(seedRecord({ tenant_id: tenant, ...fields }));
              decoys.push(seedRecord({ tenant_id: decoy, ...fields }));
            }
    await seedRows(stack.orm, [...rows, ...decoys]);
    assert.equal(rows.length, 144);

    const labelFilters: string[][] = [
      [],
      ['env=prod'],
      ['team=a'],
      ['env=prod', 'team=a'],
      ['env=dev', 'team=b'],
    ];
    const slugs = [undefined, rows[7]?.slug, rows[100]?.slug, 'no-such-slug'];
    let combinations = 0;
    for (const state of [undefined, ...states])
      for (const provider of [undefined, ...providers])
        for (const datacenter of [undefined, 'dc_a', 'dc_b'])
          for (const labels of labelFilters)
            for (const slug of state === undefined && provider === undefined ? slugs : [undefined]) {
              const expected = rows.filter(
                (r) =>
                  (state ? r.state === state : r.state !== 'destroyed') &&
                  (!provider || r.provider_name === provider) &&
                  (!datacenter || r.datacenter_id === datacenter) &&
                  labels.every((l) => {
                    const [k, v] = l.split('=') as [string, string];
                    return r.labels?.[k] === v;
                  }) &&
                  (!slug || r.slug === slug),
              );
              const query = new URLSearchParams();
              if (state) query.set('state', state);
              if (provider) query.set('provider', provider);
              if (datacenter) query.set('datacenter', datacenter);
              for (const l of labels) query.append('label', l);
              if (slug) query.set('slug', slug);
              const listing = await pageThrough(api, query.toString(), 100);
              const what = query.toString() || '(no filter)';
              assert.deepEqual([...listing.ids].sort(), expected.map((r) => r.id).sort(), `rows for ${what}`);
              for (const total of listing.totals) assert.equal(total, expected.length, `total for ${what}`);
              combinations++;
            }
    assert.ok(combinations >= 180, `${combinations} combinations`);
  });

  it('rejects bad list parameters with 400 naming the parameter', async () => {
    const api = await client(uniqueTenant('listbad'));
    const cases: [string, string][] = [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=seven', 'limit'],
      ['limit=1&limit=2', 'limit'],
      ['state=sleeping', 'state'],
      ['label=novalue', 'label[0]'],
      ['label[a]=b', 'label'],
      ['cursor=not-a-cursor', 'cursor'],
      [
        `cursor=${Buffer.from(JSON.stringify(['+275760-09-13T00:00:00.000Z', 'x'])).toString('base64url')}`,
        'cursor',
      ],
      ['colour=blue', 'colour'],
      [`slug=${'x'.repeat(301)}`, 'slug'],
    ];
    for (const [query, field] of cases) {
      const res = await api('GET', `/v1/instances?${query}`);
      assert.equal(res.status, 400, query);
      assert.ok(
        res.body.errors?.some((e: { field: string }) => e.field === field),
        `${query}: ${field} named in ${JSON.stringify(res.body)}`,
      );
    }
    const empty = await api('GET', '/v1/instances');
    assert.deepEqual(empty.body, { items: [], total: 0 });
  });

  it('a cursor whose row is gone still continues from its encoded position', async () => {
    const tenant = uniqueTenant('listgone');
    const api = await client(tenant);
    const base = Date.now() - 100_000;
    const rows = Array.from({ length: 9 }, (_, i) =>
      seedRecord({ tenant_id: tenant, name: `g${i}`, created_at: new Date(base + i * 1000).toISOString() }),
    );
    await seedRows(stack.orm, rows);
    const first = await api('GET', '/v1/instances?limit=3');
    const lastId = first.body.items[2].id;
    await stack.orm.em.fork().getConnection().execute('delete from instances where id = ?', [lastId]);
    const second = await api('GET', `/v1/instances?limit=3&cursor=${first.body.next_cursor}`);
    assert.deepEqual(
      second.body.items.map((i: { name: string }) => i.name),
      ['g5', 'g4', 'g3'],
    );
    assert.equal(second.body.total, 8);
  });
});
