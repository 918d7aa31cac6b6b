import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createCtrlplaneClient } from '../clients/typescript/client.ts';
import { GENERATED_TYPES_PATH, generateClientTypes } from '../clients/typescript/generate-types.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// The typed client against the real API (no worker is needed for these reads and refusals).
describe('the typed client in clients/typescript', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ worker: false, env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0' } });
  });
  after(() => stack?.close());

  it('has the types of the document the API serves: a route added without `npm run client:generate` fails here', async () => {
    const served = (await (await fetch(`${stack.api.url}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    const checkedIn = readFileSync(GENERATED_TYPES_PATH, 'utf8');
    assert.ok(
      (await generateClientTypes(served)) === checkedIn,
      'clients/typescript/openapi-types.ts is not what /openapi.json generates: run `npm run client:generate`',
    );
    for (const path of Object.keys(served.paths)) {
      assert.ok(checkedIn.includes(`"${path}": {`), `${path} is in the client`);
    }
  });

  it('calls the API with typed answers: a page of instances, a refusal as the problem document', async () => {
    const tenant = uniqueTenant('client');
    const api = createCtrlplaneClient({ baseUrl: stack.api.url, token: await stack.token(tenant) });
    const list = await api.GET('/v1/instances', { params: { query: { limit: 5 } } });
    assert.equal(list.response.status, 200);
    assert.deepEqual(list.data?.items, []);
    assert.equal(list.data?.total, 0);

    const refused = await api.POST('/v1/instances', { body: { name: '', services: [] } });
    assert.equal(refused.response.status, 400);
    assert.equal(refused.error?.code, 'invalid_request');
    assert.ok(
      refused.error?.errors?.some((e) => e.field === 'name'),
      JSON.stringify(refused.error),
    );

    const anonymous = createCtrlplaneClient({ baseUrl: stack.api.url });
    const denied = await anonymous.GET('/v1/instances/{id}', { params: { path: { id: 'inst_x' } } });
    assert.equal(denied.response.status, 401);
    assert.equal(denied.error?.code, 'unauthorized');
  });
});
