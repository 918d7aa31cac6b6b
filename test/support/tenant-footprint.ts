import type { Client } from '@temporalio/client';
import type { Orm } from '../../db/database.ts';

/** What a tenant has written: rows of the read model, the event outbox and idempotency keys. */
export async function tenantRows(
  orm: Orm,
  tenantId: string,
): Promise<{ instances: number; instance_events: number; idempotency_keys: number }> {
  const conn = orm.em.fork().getConnection();
  const count = async (table: string) => {
    const [row] = await conn.execute<{ count: string }[]>(
      `select count(*) from ${table} where tenant_id = ?`,
      [tenantId],
    );
    return Number(row?.count ?? 0);
  };
  return {
    instances: await count('instances'),
    instance_events: await count('instance_events'),
    idempotency_keys: await count('idempotency_keys'),
  };
}

/** Ids of the tenant's instance workflows, as Temporal's visibility lists them (by the tenant search attribute). */
export async function tenantWorkflowIds(client: Client, tenantId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of client.workflow.list({ query: `CtrlplaneTenantId = '${tenantId}'` })) {
    ids.push(wf.workflowId);
  }
  return ids.sort();
}
