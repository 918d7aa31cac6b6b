/**
 * What must hold once the faults are over and the stack is quiet, checked against the database, the workflows
 * and the engine. Each check returns its figures and the violations it found (instance and request ids).
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type Dockerode from 'dockerode';
import { canonicalJson } from '../../api/idempotency.ts';
import type { Orm } from '../../db/database.ts';
import { type InstanceRecord, InstanceRecordSchema } from '../../db/entities/instance-record.ts';
import { recordToInstance } from '../../db/instance-mapping.ts';
import type { InstanceState } from '../../domain/instance-state.ts';
import { LABEL } from '../../providers/docker/labels.ts';
import { type InstanceSnapshot, instanceWorkflowId, snapshotQuery } from '../../workflows/messages.ts';
import { sleep } from './own-stack.ts';
import type { LoggedRequest, Probe } from './traffic.ts';

export interface Violation {
  invariant: string;
  instanceId?: string;
  /** The request's Idempotency-Key. */
  requestKey?: string;
  /** The id the workflow knows the request by: `<command>:<key>`, or `provision/<instance id>` for a create. */
  requestId?: string;
  detail: string;
}

export interface CheckResult {
  figures: [string, string][];
  violations: Violation[];
}

export const TRANSITIONAL: ReadonlySet<InstanceState> = new Set([
  'provisioning',
  'starting',
  'stopping',
  'destroying',
]);

const isSuccess = (status: number) => status >= 200 && status < 300;
const wasRetried = (r: LoggedRequest) => r.attempts.some((a) => a.status === undefined || a.status >= 500);

/** The id under which the workflow records the request's conclusion. */
export function requestIdOf(r: LoggedRequest): string | undefined {
  if (r.command === 'create') return r.instanceId ? `provision/${r.instanceId}` : undefined;
  return `${r.command}:${r.key}`;
}

async function concludingEvents(orm: Orm): Promise<Map<string, number>> {
  const rows: { request_id: string; n: string }[] = await orm.em
    .fork()
    .getConnection()
    .execute(
      `select payload->>'request_id' as request_id, count(*) as n from instance_events
        where payload ? 'conclusion' group by 1`,
    );
  return new Map(rows.map((r) => [r.request_id, Number(r.n)]));
}

/** Every 2xx concluded exactly once, every refused one not at all, none left unanswered. */
export async function checkExactlyOnce(orm: Orm, requests: LoggedRequest[]): Promise<CheckResult> {
  const events = await concludingEvents(orm);
  const violations: Violation[] = [];
  let answered2xx = 0;
  let retried = 0;
  let retried2xx = 0;
  let refused = 0;
  for (const r of requests) {
    if (wasRetried(r)) retried += 1;
    if (!r.final) {
      violations.push({
        invariant: 'every request answered (none lost)',
        requestKey: r.key,
        ...(requestIdOf(r) ? { requestId: requestIdOf(r) } : {}),
        ...(r.instanceId ? { instanceId: r.instanceId } : {}),
        detail: `${r.method} ${r.path}: ${r.attempts.length} attempts, no answer but 5xx/429/timeouts`,
      });
      continue;
    }
    const requestId = requestIdOf(r);
    const n = requestId ? (events.get(requestId) ?? 0) : 0;
    if (isSuccess(r.final.status)) {
      answered2xx += 1;
      if (wasRetried(r)) retried2xx += 1;
      if (n !== 1) {
        violations.push({
          invariant: wasRetried(r)
            ? 'a retried 5xx/timeout concluded exactly once'
            : 'a 2xx command concluded exactly once',
          requestKey: r.key,
          ...(requestId ? { requestId } : {}),
          ...(r.instanceId ? { instanceId: r.instanceId } : {}),
          detail: `${r.method} ${r.path} answered ${r.final.status}: ${n} concluding events for ${requestId}`,
        });
      }
    } else {
      refused += 1;
      if (n !== 0 && r.command !== 'create') {
        violations.push({
          invariant: 'a refused command was not applied',
          requestKey: r.key,
          ...(requestId ? { requestId } : {}),
          ...(r.instanceId ? { instanceId: r.instanceId } : {}),
          detail: `${r.method} ${r.path} answered ${r.final.status} ${r.final.code}: ${n} concluding events`,
        });
      }
    }
  }
  return {
    figures: [
      ['requests (each with its own Idempotency-Key)', String(requests.length)],
      [
        '  answered 2xx, concluded exactly once',
        `${answered2xx - countOf(violations, '2xx')} of ${answered2xx}`,
      ],
      ['  had a 5xx or timeout and were retried with their key', String(retried)],
      [
        '    of those answered 2xx, concluded exactly once',
        `${retried2xx - countOf(violations, 'retried')} of ${retried2xx}`,
      ],
      ['  refused (4xx), none applied', `${refused - countOf(violations, 'refused')} of ${refused}`],
      ['  never answered', String(requests.filter((r) => !r.final).length)],
      ['attempts sent (retries included)', String(requests.reduce((n, r) => n + r.attempts.length, 0))],
    ],
    violations,
  };
}

function countOf(violations: Violation[], word: string): number {
  return violations.filter((v) => v.invariant.includes(word)).length;
}

/** Each create answered 201 made one instance, and no instance exists that no create made. */
export async function checkCreates(orm: Orm, requests: LoggedRequest[]): Promise<CheckResult> {
  const rows = await orm.em.fork().find(InstanceRecordSchema, {});
  const created = requests.filter((r) => r.command === 'create' && r.final?.status === 201);
  const ids = new Set(created.map((r) => r.instanceId));
  const violations: Violation[] = [];
  for (const row of rows) {
    if (!ids.has(row.id)) {
      violations.push({
        invariant: 'no instance without a create answered 201',
        instanceId: row.id,
        detail: `row ${row.name} (${row.state}) of ${row.tenant_id}`,
      });
    }
  }
  const byName = new Map<string, number>();
  for (const row of rows)
    byName.set(`${row.tenant_id}/${row.name}`, (byName.get(`${row.tenant_id}/${row.name}`) ?? 0) + 1);
  for (const [name, n] of byName) {
    if (n > 1)
      violations.push({ invariant: 'each create applied once', detail: `${n} instances named ${name}` });
  }
  return {
    figures: [['instances created (201), rows in the read model', `${created.length}, ${rows.length}`]],
    violations,
  };
}

/** The workflow's snapshot (a closed workflow is answered by a worker replaying it), asked a few times. */
async function snapshotOf(client: Client, id: string): Promise<InstanceSnapshot | 'no workflow' | Error> {
  let last: Error = new Error('not asked');
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await client.workflow.getHandle(instanceWorkflowId(id)).query(snapshotQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return 'no workflow';
      last = err instanceof Error ? err : new Error(String(err));
      const cause = (last as { cause?: { message?: string } }).cause?.message;
      if (cause) last = new Error(`${last.message}: ${cause}`);
      await sleep(3_000);
    }
  }
  return last;
}

/** The read model equals each workflow's snapshot; no row is without a workflow. */
export async function checkReadModel(orm: Orm, client: Client): Promise<CheckResult> {
  const rows = await orm.em.fork().find(InstanceRecordSchema, {});
  const violations: Violation[] = [];
  let equal = 0;
  let withWorkflow = 0;
  for (const row of rows) {
    const snapshot = await snapshotOf(client, row.id);
    if (snapshot === 'no workflow') {
      violations.push({
        invariant: 'no row without a workflow',
        instanceId: row.id,
        detail: `state ${row.state}`,
      });
      continue;
    }
    if (snapshot instanceof Error) {
      violations.push({
        invariant: 'read model equals the workflow snapshot',
        instanceId: row.id,
        detail: `the workflow did not answer its snapshot query: ${snapshot.message}`,
      });
      continue;
    }
    withWorkflow += 1;
    const mismatch = differences(row, snapshot);
    if (mismatch.length === 0 && snapshot.pending.length === 0) equal += 1;
    else {
      violations.push({
        invariant: 'read model equals the workflow snapshot',
        instanceId: row.id,
        detail: [
          ...mismatch,
          ...(snapshot.pending.length ? [`${snapshot.pending.length} commands still queued`] : []),
        ].join('; '),
      });
    }
  }
  return {
    figures: [
      ['rows with a workflow', `${withWorkflow} of ${rows.length}`],
      ['rows equal to their workflow snapshot', `${equal} of ${rows.length}`],
    ],
    violations,
  };
}

function differences(row: InstanceRecord, snapshot: InstanceSnapshot): string[] {
  const stored = recordToInstance(row);
  const live = snapshot.instance;
  const out: string[] = [];
  if (row.seq !== snapshot.seq) out.push(`seq ${row.seq} ≠ ${snapshot.seq}`);
  for (const field of ['state', 'name', 'updated_at', 'suspend_reason'] as const) {
    if (String(stored[field]) !== String(live[field])) out.push(`${field} ${stored[field]} ≠ ${live[field]}`);
  }
  if (canonicalJson(stored.labels ?? {}) !== canonicalJson(live.labels ?? {}))
    out.push(`labels ${JSON.stringify(stored.labels)} ≠ ${JSON.stringify(live.labels)}`);
  const resources = (i: typeof live) => canonicalJson((i.services ?? []).map((s) => s.resources ?? {}));
  if (resources(stored) !== resources(live)) out.push(`resources ${resources(stored)} ≠ ${resources(live)}`);
  return out;
}

interface EngineView {
  containers: Dockerode.ContainerInfo[];
  networks: number;
  volumes: number;
}

async function engineView(docker: Dockerode, id: string): Promise<EngineView> {
  const filters = { label: [`${LABEL.instance}=${id}`] };
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
    docker.listVolumes({ filters }),
  ]);
  return { containers, networks: networks.length, volumes: volumes.Volumes?.length ?? 0 };
}

function engineDisagreement(state: InstanceState, view: EngineView): string | undefined {
  const running = view.containers.filter((c) => c.State === 'running').length;
  if (state === 'running' && (view.containers.length === 0 || running < view.containers.length))
    return `running, but ${running} of ${view.containers.length} containers run`;
  if (state === 'stopped' && running > 0) return `stopped, but ${running} containers run`;
  if (state === 'destroyed' && view.containers.length + view.networks + view.volumes > 0)
    return `destroyed, but ${view.containers.length} containers, ${view.networks} networks, ${view.volumes} volumes left`;
  return undefined;
}

/**
 * The engine agrees with each instance's state, and holds nothing labelled `ctrlplane.managed` without a live
 * instance. A disagreement is looked at again for `settleMs` (the drift check's reconciliation time) before it
 * counts.
 */
export async function checkEngine(orm: Orm, docker: Dockerode, settleMs: number): Promise<CheckResult> {
  const violations: Violation[] = [];
  const byState = new Map<string, number>();
  let agreeing = 0;
  const rows = await orm.em.fork().find(InstanceRecordSchema, {});
  for (const first of rows) {
    const deadline = Date.now() + settleMs;
    let disagreement: string | undefined;
    let state = first.state;
    for (;;) {
      const row = await orm.em.fork().findOne(InstanceRecordSchema, { id: first.id });
      state = row?.state ?? 'destroyed';
      disagreement = engineDisagreement(state, await engineView(docker, first.id));
      if (!disagreement || Date.now() > deadline) break;
      await sleep(2_000);
    }
    byState.set(state, (byState.get(state) ?? 0) + 1);
    if (disagreement) {
      violations.push({
        invariant: 'the engine agrees with the instance state',
        instanceId: first.id,
        detail: disagreement,
      });
    } else agreeing += 1;
  }
  const live = new Set(
    (await orm.em.fork().find(InstanceRecordSchema, { state: { $ne: 'destroyed' } })).map((r) => r.id),
  );
  const managed = { label: [`${LABEL.managed}=true`] };
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters: managed }),
    docker.listNetworks({ filters: managed }),
    docker.listVolumes({ filters: managed }),
  ]);
  const objects = [
    ...containers.map((c) => ({ kind: 'container', name: c.Names[0] ?? c.Id, labels: c.Labels })),
    ...networks.map((n) => ({ kind: 'network', name: n.Name, labels: n.Labels ?? {} })),
    ...(volumes.Volumes ?? []).map((v) => ({ kind: 'volume', name: v.Name, labels: v.Labels ?? {} })),
  ];
  let orphans = 0;
  for (const object of objects) {
    const instanceId = object.labels[LABEL.instance] ?? '';
    if (live.has(instanceId)) continue;
    orphans += 1;
    violations.push({
      invariant: 'no engine object labelled ctrlplane.managed without a live instance',
      instanceId,
      detail: `${object.kind} ${object.name}`,
    });
  }
  return {
    figures: [
      ['instances by final state', [...byState].map(([s, n]) => `${s} ${n}`).join(', ')],
      ['instances the engine agrees with', `${agreeing} of ${rows.length}`],
      [
        'engine objects labelled ctrlplane.managed (containers, networks, volumes)',
        `${containers.length}, ${networks.length}, ${(volumes.Volumes ?? []).length}; without a live instance: ${orphans}`,
      ],
    ],
    violations,
  };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** Other tenants' GET p99 during the flood within 3× the quiet one; every 5xx a 503 with Retry-After. */
export function checkFlood(
  probes: Probe[],
  flood: Probe[],
  windows: { quiet: [number, number]; flood: [number, number] },
  everyAnswer: Probe[],
): CheckResult {
  const inWindow = ([from, to]: [number, number]) =>
    probes.filter((p) => p.status !== undefined && p.at >= from && p.at < to).map((p) => p.ms);
  const quiet = percentile(inWindow(windows.quiet), 99);
  const during = percentile(inWindow(windows.flood), 99);
  const violations: Violation[] = [];
  if (!(during <= 3 * quiet)) {
    violations.push({
      invariant: "other tenants' GET p99 during the flood within 3× the quiet p99",
      detail: `${during.toFixed(0)} ms during the flood, ${quiet.toFixed(0)} ms quiet`,
    });
  }
  const bad = everyAnswer.filter(
    (a) => a.status !== undefined && a.status >= 500 && !(a.status === 503 && a.retryAfter !== undefined),
  );
  for (const a of bad.slice(0, 20)) {
    violations.push({
      invariant: 'no 5xx but a documented 503 with Retry-After',
      detail: `a ${a.status} at ${(a.at / 1000).toFixed(1)} s${a.retryAfter ? '' : ' without Retry-After'}`,
    });
  }
  const statuses = new Map<string, number>();
  for (const f of flood) {
    const k = String(f.status ?? f.error);
    statuses.set(k, (statuses.get(k) ?? 0) + 1);
  }
  return {
    figures: [
      [
        'flood requests sent, by answer',
        `${flood.length}: ${[...statuses].map(([s, n]) => `${s} ×${n}`).join(', ')}`,
      ],
      [
        "other tenants' GET p99 quiet → during the flood",
        `${quiet.toFixed(0)} ms (${inWindow(windows.quiet).length} GETs) → ${during.toFixed(0)} ms (${inWindow(windows.flood).length} GETs), ratio ${(during / quiet).toFixed(2)}`,
      ],
      ['answers 5xx other than 503 with Retry-After (whole run)', String(bad.length)],
      [
        '503 with Retry-After (whole run)',
        String(everyAnswer.filter((a) => a.status === 503 && a.retryAfter !== undefined).length),
      ],
    ],
    violations,
  };
}
