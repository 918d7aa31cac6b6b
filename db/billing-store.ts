import type { BillingSweepPhase, SweepCursor, SweepTarget } from '../domain/billing-policy.ts';
import type { InstanceState } from '../domain/instance-state.ts';
import type { Orm } from './database.ts';
import {
  type BillingAccountRecord,
  BillingAccountRecordSchema,
  type BillingStatus,
} from './entities/billing-account.ts';

export interface BillingAccountPut {
  tenantId: string;
  status: BillingStatus;
  /** The grace period given with the request; null keeps the account's own (or `defaultGraceSeconds` for a new one). */
  gracePeriodSeconds: number | null;
  defaultGraceSeconds: number;
}

export interface SweepTargetQuery {
  phase: BillingSweepPhase;
  /** The sweep's fixed "now": a tenant is overdue once past_due_since + its grace period is not after it. */
  asOf: Date;
  /** Only instances in these states. */
  states: readonly InstanceState[];
  /** The suspension reason the sweep owns: suspend skips suspended instances, unsuspend lifts only this one. */
  reason: string;
  after?: SweepCursor;
  limit: number;
}

const suspendTargets = (states: string) => `
  select i.tenant_id, i.id as instance_id, i.seq
  from billing_accounts a
  join instances i on i.tenant_id = a.tenant_id
  where a.status = 'past_due'
    and a.past_due_since + make_interval(secs => a.grace_period_seconds) <= ?
    and i.state in (${states})
    and i.suspend_reason is null
    and (i.tenant_id, i.id) > (?, ?)
  order by i.tenant_id, i.id
  limit ?`;

const unsuspendTargets = (states: string) => `
  select i.tenant_id, i.id as instance_id, i.seq
  from billing_accounts a
  join instances i on i.tenant_id = a.tenant_id
  where a.status = 'active'
    and i.suspend_reason = ?
    and i.state in (${states})
    and (i.tenant_id, i.id) > (?, ?)
  order by i.tenant_id, i.id
  limit ?`;

/** Tenants' billing accounts, and the billing sweep's reads of them joined with the read model. */
export class BillingStore {
  constructor(private readonly orm: Orm) {}

  async getAccount(tenantId: string): Promise<BillingAccountRecord | null> {
    return this.orm.em.fork().findOne(BillingAccountRecordSchema, { tenant_id: tenantId });
  }

  /**
   * Creates or updates the account in one statement, so concurrent PUTs cannot lose past_due_since: a tenant
   * already past due keeps the time it fell past due (its grace period does not restart); active clears it.
   */
  async putAccount(put: BillingAccountPut): Promise<{ account: BillingAccountRecord; created: boolean }> {
    const [row] = await this.orm.em
      .fork()
      .getConnection()
      .execute<(BillingAccountRecord & { created: boolean })[]>(
        `insert into billing_accounts as a (tenant_id, status, past_due_since, grace_period_seconds, updated_at)
         values (?, ?, case when ? = 'past_due' then now() end, ?, now())
         on conflict (tenant_id) do update set
           status = excluded.status,
           past_due_since = case when excluded.status = 'past_due' then coalesce(a.past_due_since, now()) end,
           grace_period_seconds = coalesce(?::integer, a.grace_period_seconds),
           updated_at = now()
         returning a.tenant_id, a.status, a.past_due_since, a.grace_period_seconds, a.updated_at,
           (xmax = 0) as created`,
        [
          put.tenantId,
          put.status,
          put.status,
          put.gracePeriodSeconds ?? put.defaultGraceSeconds,
          put.gracePeriodSeconds,
        ],
      );
    if (!row) throw new Error('billing account upsert returned no row');
    const { created, ...account } = row;
    return { account, created };
  }

  /**
   * One page of the sweep's phase, in (tenant, instance) order after `after`: for `suspend`, the unsuspended
   * instances of tenants overdue at `asOf`; for `unsuspend`, the instances of active tenants suspended for
   * `reason`.
   */
  async sweepTargets(query: SweepTargetQuery): Promise<SweepTarget[]> {
    const position = [query.after?.tenant_id ?? '', query.after?.instance_id ?? ''];
    const states = query.states.map(() => '?').join(', ');
    const [sql, first] =
      query.phase === 'suspend'
        ? [suspendTargets(states), query.asOf]
        : [unsuspendTargets(states), query.reason];
    const rows = await this.orm.em
      .fork()
      .getConnection()
      .execute<{ tenant_id: string; instance_id: string; seq: number }[]>(sql, [
        first,
        ...query.states,
        ...position,
        query.limit,
      ]);
    return rows.map((r) => ({ tenant_id: r.tenant_id, instance_id: r.instance_id, seq: Number(r.seq) }));
  }
}
