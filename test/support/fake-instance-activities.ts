/**
 * In-memory stand-ins for the instance workflow's activities (activities/instance-activity-types.ts), for the
 * workflow tests that run without Docker, Kubernetes or PostgreSQL. The provider keeps what a real one would
 * (what is deployed, whether it runs, with which resources) and can be told to fail; the read model keeps every
 * transition the workflow records, as the real projection would, and the slugs taken per tenant.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type {
  InstanceActivities,
  ObservedStatus,
  ProviderCall,
  ProvisionInput,
  TransitionRecord,
} from '../../activities/instance-activity-types.ts';
import type { Endpoint, Instance, ResourceSpec } from '../../domain/instance.ts';
import type { Release } from '../../domain/release.ts';
import type { StopOptions } from '../../providers/provider.ts';

export type ProviderActivityName =
  | 'provisionInstance'
  | 'startInstance'
  | 'stopInstance'
  | 'restartInstance'
  | 'restartService'
  | 'scaleInstance'
  | 'deprovisionInstance'
  | 'observeInstance';

/**
 * How the next calls of one activity for one instance fail: `transient` as a daemon that is restarting does (a
 * plain error, which Temporal retries), `permanent` as a provider's PermanentProviderError reaches the workflow
 * (non-retryable, its code as the failure type).
 */
export type Fault =
  | { kind: 'transient'; times: number; message?: string }
  | { kind: 'permanent'; code: string; message: string };

/** What the fake provider holds for one instance. */
export interface FakeDeployment {
  /** What observeInstance reports; a test changes it to play a change made outside ctrlplane. */
  observed: ObservedStatus;
  resources?: ResourceSpec;
  /** How many times it was started (each start publishes a new port, as Docker's host ports do). */
  starts: number;
  /** The options of the last stop that had any. */
  lastStop?: StopOptions;
  /** The services restarted one by one, in order. */
  restartedServices?: string[];
}

/** One call as the activity saw it: which activity, for which instance, which attempt. */
export interface ProviderCallRecord {
  activity: ProviderActivityName;
  instance_id: string;
  attempt: number;
}

export class FakeProvider {
  readonly deployments = new Map<string, FakeDeployment>();
  readonly calls: ProviderCallRecord[] = [];
  private readonly faults = new Map<string, Fault>();

  /** The next call(s) of `activity` for `instanceId` fail as `fault` says. */
  failNext(instanceId: string, activity: ProviderActivityName, fault: Fault): void {
    this.faults.set(`${activity} ${instanceId}`, fault);
  }

  /** The activities called for `instanceId`, in order, one entry per attempt; observeInstance left out. */
  callsOf(instanceId: string): ProviderActivityName[] {
    return this.calls
      .filter((c) => c.instance_id === instanceId && c.activity !== 'observeInstance')
      .map((c) => c.activity);
  }

  activities(): Pick<InstanceActivities, ProviderActivityName> {
    return {
      provisionInstance: async (input: ProvisionInput) => {
        const id = input.request.instance_id;
        this.enter('provisionInstance', id);
        const main = input.request.services[0];
        this.deployments.set(id, {
          observed: { state: 'stopped' },
          ...(main ? { resources: main.resources } : {}),
          starts: this.deployments.get(id)?.starts ?? 0,
        });
        return { provider_ref: `fake/${id}`, endpoints: [] };
      },
      startInstance: async (input: ProviderCall) => {
        const deployment = this.enter('startInstance', input.instance_id, true);
        deployment.starts += 1;
        deployment.observed = { state: 'running' };
        return { endpoints: [endpointOf(input.instance_id, deployment)] };
      },
      stopInstance: async (input: ProviderCall & { stop?: StopOptions }) => {
        const deployment = this.enter('stopInstance', input.instance_id, true);
        deployment.observed = { state: 'stopped' };
        if (input.stop) deployment.lastStop = input.stop;
      },
      restartService: async (input: ProviderCall & { service: string }) => {
        const deployment = this.enter('restartService', input.instance_id, true);
        deployment.restartedServices = [...(deployment.restartedServices ?? []), input.service];
      },
      restartInstance: async (input: ProviderCall) => {
        const deployment = this.enter('restartInstance', input.instance_id, true);
        deployment.starts += 1;
        deployment.observed = { state: 'running' };
        return { endpoints: [endpointOf(input.instance_id, deployment)] };
      },
      scaleInstance: async (input: ProviderCall & { resources: ResourceSpec }) => {
        this.enter('scaleInstance', input.instance_id, true).resources = input.resources;
      },
      deprovisionInstance: async (input: ProviderCall) => {
        this.enter('deprovisionInstance', input.instance_id);
        this.deployments.delete(input.instance_id);
      },
      observeInstance: async (input: ProviderCall): Promise<ObservedStatus> => {
        this.enter('observeInstance', input.instance_id);
        return this.deployments.get(input.instance_id)?.observed ?? { state: 'destroyed' };
      },
    };
  }

  /** Logs the call, applies a pending fault, and returns the deployment when the call needs one. */
  private enter(activity: ProviderActivityName, instanceId: string): undefined;
  private enter(activity: ProviderActivityName, instanceId: string, deployed: true): FakeDeployment;
  private enter(
    activity: ProviderActivityName,
    instanceId: string,
    deployed?: true,
  ): FakeDeployment | undefined {
    this.calls.push({ activity, instance_id: instanceId, attempt: Context.current().info.attempt });
    const key = `${activity} ${instanceId}`;
    const fault = this.faults.get(key);
    if (fault?.kind === 'permanent') {
      this.faults.delete(key);
      throw ApplicationFailure.nonRetryable(fault.message, fault.code);
    }
    if (fault?.kind === 'transient') {
      if (fault.times <= 1) this.faults.delete(key);
      else this.faults.set(key, { ...fault, times: fault.times - 1 });
      throw new Error(fault.message ?? `fake: ${activity} failed for a moment`);
    }
    if (!deployed) return undefined;
    const deployment = this.deployments.get(instanceId);
    if (!deployment)
      throw ApplicationFailure.nonRetryable(`fake: ${instanceId} was never provisioned`, 'not_found');
    return deployment;
  }
}

function endpointOf(instanceId: string, deployment: FakeDeployment): Endpoint {
  const port = 30_000 + deployment.starts;
  return { url: `http://${instanceId}.fake:${port}`, port, protocol: 'http', public: true };
}

/** A transition as the read model stored it, with the run of the workflow that wrote it. */
export interface StoredTransition extends TransitionRecord {
  run_id: string;
}

export class FakeReadModel {
  private readonly transitions = new Map<string, StoredTransition[]>();
  /** Slugs taken, as `tenant/slug` → instance id. */
  readonly slugs = new Map<string, string>();

  /** Every transition recorded for the instance, by seq (a repeated seq is kept once, as the outbox does). */
  eventsOf(instanceId: string): StoredTransition[] {
    return [...(this.transitions.get(instanceId) ?? [])];
  }

  /** The instance as the read model has it: the snapshot of its newest transition. */
  instanceOf(instanceId: string): Instance | undefined {
    return this.transitions.get(instanceId)?.at(-1)?.instance;
  }

  /** The events that end a command, by request id. */
  conclusionsOf(instanceId: string): Map<string, StoredTransition[]> {
    const byRequest = new Map<string, StoredTransition[]>();
    for (const record of this.eventsOf(instanceId)) {
      if (!record.event.payload.conclusion) continue;
      const id = String(record.event.payload.request_id);
      byRequest.set(id, [...(byRequest.get(id) ?? []), record]);
    }
    return byRequest;
  }

  /** Releases as the projection keeps them: the last write of each id. */
  readonly releases = new Map<string, Release>();

  activities(): Pick<InstanceActivities, 'recordTransition' | 'reserveSlug' | 'loadRelease'> {
    return {
      recordTransition: async (record: TransitionRecord) => {
        const stored = this.transitions.get(record.instance.id) ?? [];
        if (stored.some((t) => t.seq === record.seq)) return;
        for (const release of record.releases ?? []) this.releases.set(release.id, release);
        stored.push({ ...record, run_id: Context.current().info.workflowExecution?.runId ?? '' });
        stored.sort((a, b) => a.seq - b.seq);
        this.transitions.set(record.instance.id, stored);
      },
      reserveSlug: async ({ tenant_id, instance_id, slug }) => {
        const holder = this.slugs.get(`${tenant_id}/${slug}`);
        if (holder !== undefined && holder !== instance_id) {
          throw ApplicationFailure.nonRetryable(
            `an instance with slug ${slug} already exists in this tenant`,
            'already_exists',
          );
        }
        for (const [key, id] of this.slugs) if (id === instance_id) this.slugs.delete(key);
        this.slugs.set(`${tenant_id}/${slug}`, instance_id);
      },
      loadRelease: async ({ instance_id, release }) => {
        const found = [...this.releases.values()].find(
          (r) => r.instance_id === instance_id && (r.number === release || r.id === release),
        );
        if (!found)
          throw ApplicationFailure.nonRetryable(`the instance has no release ${release}`, 'not_found');
        return found;
      },
    };
  }
}
