import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ApiCall, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { deleteTenantRows, seedRecord, seedRows } from './support/api-seed.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Rows are seeded straight into PostgreSQL: the subject is the listing's `total`, not a workflow or provider.
describe('listing: total is counted up to CTRLPLANE_LIST_TOTAL_LIMIT', () => {
  let stack: Stack;
  let checker: OpenApiChecker;

  before(async () => {
    stack = await startStack({
      worker: false,
      env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0', CTRLPLANE_LIST_TOTAL_LIMIT: '5' },
    });
    await deleteTenantRows(stack.orm, 'ten_total');
    checker = await OpenApiChecker.load(stack.api.url);
  });

  after(async () => {
    await deleteTenantRows(stack.orm, 'ten_total');
    await stack?.close();
  });

  async function client(tenant: string): Promise<ApiCall> {
    return checkedClient(stack.api.url, checker, await stack.token(tenant));
  }

  it('says total_capped beyond the limit, keeps paging every row, and counts exactly below it', async () => {
    const big = uniqueTenant('total');
    const small = uniqueTenant('total');
    await seedRows(
      stack.orm,
      Array.from({ length: 8 }, (_, i) => seedRecord({ tenant_id: big, name: `big-${i}`, state: 'running' })),
    );
    await seedRows(
      stack.orm,
      Array.from({ length: 4 }, (_, i) =>
        seedRecord({ tenant_id: small, name: `small-${i}`, state: 'running' }),
      ),
    );

    const bigApi = await client(big);
    const first = await bigApi('GET', '/v1/instances?limit=3');
    assert.equal(first.status, 200);
    assert.equal(first.body.total, 5);
    assert.equal(first.body.total_capped, true);
    const seen = new Set<string>(first.body.items.map((i: { id: string }) => i.id));
    for (let cursor = first.body.next_cursor; cursor; ) {
      const page = await bigApi('GET', `/v1/instances?limit=3&cursor=${cursor}`);
      assert.equal(page.status, 200);
      for (const item of page.body.items) seen.add(item.id);
      cursor = page.body.next_cursor;
    }
    assert.equal(seen.size, 8, 'the cap limits the count, never the pages');

    const smallPage = await (await client(small))('GET', '/v1/instances?limit=2');
    assert.equal(smallPage.body.total, 4);
    assert.equal('total_capped' in smallPage.body, false);
  });
});
