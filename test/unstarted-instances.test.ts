/**
 * The holes a chaos run finds when nobody cleans up: an instance row whose create never started its workflow
 * (the API died between its two writes, or Temporal never confirmed the start) is removed by the worker's
 * sweeper once no workflow exists and no live request holds its key; a request in doubt keeps its
 * Idempotency-Key bound to it; a request that fails because PostgreSQL is away is a 503, not a 500.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ConnectionException, DriverException } from '@mikro-orm/core';
import { Client, Connection } from '@temporalio/client';
import { databaseUnavailable } from '../api/database-unavailable.ts';
import { requestFingerprint } from '../api/idempotency.ts';
import { isInDoubt } from '../api/in-doubt.ts';
import { RetryableError } from '../api/problem.ts';
import { createLogger } from '../config/logger.ts';
import { type Orm, openOrm } from '../db/database.ts';
import { InstanceRecordSchema } from '../db/entities/instance-record.ts';
import { IdempotencyStore } from '../db/idempotency-store.ts';
import { sweepUnstartedInstances } from '../worker/unstarted-instance-sweeper.ts';
import { INSTANCE_WORKFLOW_TYPE, instanceWorkflowId } from '../workflows/messages.ts';
import { seedRecord, seedRows } from './support/api-seed.ts';
import { ownDatabase } from './support/own-database.ts';

describe('instance rows whose workflow was never started, and requests in doubt', () => {
  let database: Awaited<ReturnType<typeof ownDatabase>>;
  let orm: Orm;
  let connection: Connection;
  let client: Client;
  const logger = createLogger('unstarted-test', 'silent');
  const tenant = `ten_unstarted_${randomUUID().slice(0, 8)}`;

  before(async () => {
    database = await ownDatabase('unstarted');
    orm = await openOrm(database.url, { poolMax: 2 });
    connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
    client = new Client({ connection });
  });

  after(async () => {
    await orm?.close(true);
    await connection?.close();
    await database?.drop();
  });

  const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

  async function keyFor(resourceId: string, lockedForMs: number): Promise<string> {
    const key = `k-${randomUUID()}`;
    await orm.em
      .fork()
      .getConnection()
      .execute(
        `insert into idempotency_keys (tenant_id, key, fingerprint, method, path, resource_id, locked_until, expires_at)
         values (?, ?, 'f', 'POST', '/v1/instances', ?, now() + ? * interval '1 millisecond', now() + interval '1 hour')`,
        [tenant, key, resourceId, lockedForMs],
      );
    return key;
  }

  async function keyExists(key: string): Promise<boolean> {
    const rows = await orm.em
      .fork()
      .getConnection()
      .execute('select 1 from idempotency_keys where tenant_id = ? and key = ?', [tenant, key]);
    return rows.length > 0;
  }

  it('removes an old unstarted row and its dead key, and leaves every other row alone', async () => {
    const abandoned = seedRecord(
      { tenant_id: tenant, name: 'abandoned', state: 'provisioning', created_at: minutesAgo(10) },
      0,
    );
    const held = seedRecord(
      { tenant_id: tenant, name: 'held', state: 'provisioning', created_at: minutesAgo(10) },
      0,
    );
    const fresh = seedRecord({ tenant_id: tenant, name: 'fresh', state: 'provisioning' }, 0);
    const started = seedRecord(
      { tenant_id: tenant, name: 'started', state: 'provisioning', created_at: minutesAgo(10) },
      0,
    );
    const moved = seedRecord(
      { tenant_id: tenant, name: 'moved', state: 'running', created_at: minutesAgo(10) },
      1,
    );
    await seedRows(orm, [abandoned, held, fresh, started, moved]);
    const deadKey = await keyFor(abandoned.id, -60_000);
    const liveKey = await keyFor(held.id, 60_000);
    // A workflow under the instance's id on a queue nobody polls: it exists, so its row stays.
    const handle = await client.workflow.start(INSTANCE_WORKFLOW_TYPE, {
      workflowId: instanceWorkflowId(started.id),
      taskQueue: `unstarted-${randomUUID()}`,
      args: [{}],
    });
    try {
      const removed = await sweepUnstartedInstances({ orm, client, logger, ageMs: 60_000 });
      assert.deepEqual(removed, [abandoned.id]);
      const left = (await orm.em.fork().find(InstanceRecordSchema, { tenant_id: tenant })).map((r) => r.name);
      assert.deepEqual(left.sort(), ['fresh', 'held', 'moved', 'started']);
      assert.equal(await keyExists(deadKey), false, 'the dead create’s key is free for a retry');
      assert.equal(await keyExists(liveKey), true);
      // A second sweeper (the other worker) finds nothing more to do.
      assert.deepEqual(await sweepUnstartedInstances({ orm, client, logger, ageMs: 60_000 }), []);
    } finally {
      await handle.terminate('test over');
    }
  });

  it('keeps a key in doubt bound to its request: the retry resumes it with the reserved id', async () => {
    const store = new IdempotencyStore(orm, { ttlMs: 60_000, lockMs: 60_000 });
    const scope = (body: unknown, resourceId?: string) => ({
      tenantId: tenant,
      key: 'in-doubt',
      method: 'POST',
      path: '/v1/instances',
      fingerprint: requestFingerprint('POST', '/v1/instances', body),
      ...(resourceId ? { resourceId } : {}),
    });
    assert.equal((await store.claim(scope({ a: 1 }, 'inst_first'))).outcome, 'owner');
    await store.releaseInDoubt(scope({ a: 1 }));
    assert.deepEqual(await store.claim(scope({ a: 1 }, 'inst_second')), {
      outcome: 'owner',
      resourceId: 'inst_first',
      resumed: true,
    });
    await store.releaseInDoubt(scope({ a: 1 }));
    assert.deepEqual(await store.claim(scope({ a: 2 }, 'inst_third')), { outcome: 'mismatch' });
    assert.equal(isInDoubt(new RetryableError('temporal_unavailable', 'not confirmed', 1)), true);
    assert.equal(isInDoubt(new RetryableError('capacity_exhausted', 'full', 60)), false);
  });

  it('answers 503 database_unavailable for a database that is away, and leaves other errors to the 500', () => {
    const shuttingDown = new DriverException(
      Object.assign(new Error('the database system is shutting down'), { code: '57P01' }),
    );
    const reset = new ConnectionException(
      Object.assign(new Error('connect ECONNRESET'), { code: 'ECONNRESET' }),
    );
    const syntax = new DriverException(
      Object.assign(new Error('syntax error at or near "x"'), { code: '42601' }),
    );
    // As the pool throws it while the server is starting up: the driver's DatabaseError, not wrapped.
    const startingUp = Object.assign(new Error('the database system is starting up'), {
      code: '57P03',
      severity: 'FATAL',
    });
    for (const err of [shuttingDown, reset, startingUp]) {
      const unavailable = databaseUnavailable(err);
      assert.equal(unavailable?.code, 'database_unavailable');
      assert.equal(unavailable?.retryAfterSeconds, 1);
    }
    assert.equal(databaseUnavailable(syntax), undefined);
    assert.equal(databaseUnavailable(new Error('the database system is shutting down')), undefined);
    assert.equal(databaseUnavailable(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), undefined);
    assert.equal(
      databaseUnavailable(Object.assign(new Error('dup'), { code: '23505', severity: 'ERROR' })),
      undefined,
    );
  });
});
