import type { Request, Response } from 'express';
import type { Logger } from '../../config/logger.ts';
import type { DatacenterStore } from '../../db/datacenter-store.ts';
import type { InstanceRecord } from '../../db/entities/instance-record.ts';
import type { IdempotencyStore } from '../../db/idempotency-store.ts';
import type { InstanceEventStore } from '../../db/instance-event-store.ts';
import type { InstanceStore } from '../../db/instance-store.ts';
import type { ReleaseStore } from '../../db/release-store.ts';
import type { StreamTicketStore } from '../../db/stream-tickets.ts';
import { CtrlplaneError } from '../../domain/errors.ts';
import { isInstanceId } from '../../domain/ids.ts';
import type { KustomizeOptions } from '../../providers/kustomize.ts';
import type { ProviderRegistry } from '../../providers/registry.ts';
import { callerOf } from '../auth.ts';
import type { InstanceCommands } from '../instance-commands.ts';
import type { ApiMetrics } from '../metrics.ts';

/** What the instance routes are built from. */
export interface InstanceRoutesDeps {
  store: InstanceStore;
  /** The instances' lifecycle events (GET /v1/instances/:id/events). */
  events: InstanceEventStore;
  /** The instances' releases (GET /v1/instances/:id/releases, the rollback's check). */
  releases: ReleaseStore;
  commands: InstanceCommands;
  providers: ProviderRegistry;
  /** Where a create with datacenter_id finds its provider and region. */
  datacenters: DatacenterStore;
  idempotency: IdempotencyStore;
  metrics: ApiMetrics;
  logger: Logger;
  /** Longest `?wait=` / `timeout=` a caller may ask for. */
  maxWaitMs: number;
  /** How long a create waits for the provider's health check (else 503 provider_unavailable). */
  providerHealthTimeoutMs: number;
  /** Memory placement and fleet capacity count for a service that gives none (CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB). */
  placementDefaultMemoryMb: number;
  /** Interval of SSE `: ping` comments. */
  ssePingMs: number;
  /** Aborted when the API shuts down: waits and log streams end, so in-flight requests finish quickly. */
  shutdown: AbortSignal;
  /** How a create's kustomize source is built to be checked (CTRLPLANE_KUSTOMIZE_BIN). */
  kustomize: KustomizeOptions;
  /** Issues the one-time tickets that open a log stream. */
  streamTickets: StreamTicketStore;
}

export function instanceIdOf(req: Request): string {
  const id = String(req.params.id);
  if (!isInstanceId(id)) {
    throw new CtrlplaneError(
      'invalid_request',
      `id: ${JSON.stringify(id.slice(0, 80))} is not an instance id`,
      [{ field: 'id', message: 'must be an inst_ TypeID' }],
    );
  }
  return id;
}

/** The caller's instance; another tenant's instance is indistinguishable from one that does not exist. */
export async function loadOwned(store: InstanceStore, req: Request): Promise<InstanceRecord> {
  const id = instanceIdOf(req);
  const row = await store.get(callerOf(req).tenant_id, id);
  if (!row) throw new CtrlplaneError('not_found', `instance ${id} not found`);
  return row;
}

/**
 * An instance the operator addresses by id, in any tenant (suspend, unsuspend). A missing one is a 404 as for
 * tenants.
 */
export async function loadForOperator(store: InstanceStore, req: Request): Promise<InstanceRecord> {
  const id = instanceIdOf(req);
  const row = await store.getInAnyTenant(id);
  if (!row) throw new CtrlplaneError('not_found', `instance ${id} not found`);
  return row;
}

/** Aborted when the client goes away or the API shuts down. */
export function requestSignal(res: Response, shutdown: AbortSignal): AbortSignal {
  const closed = new AbortController();
  res.once('close', () => closed.abort());
  return AbortSignal.any([closed.signal, shutdown]);
}

/** Resolves after `ms`, or early when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
