import type { ResourceSpec } from '../domain/instance.ts';
import type { InstanceState } from '../domain/instance-state.ts';
import type {
  Capability,
  HealthStatus,
  InstanceStatus,
  LogLine,
  Provider,
  ProviderInfo,
  ProvisionRequest,
  ProvisionResult,
  ResourceUsage,
} from '../providers/provider.ts';

export const NO_IO_PROVIDER = 'noio';

/**
 * The scale bench's provider (registered by the bench itself, never by the worker or API): it does no I/O and
 * answers at once, so what the bench measures is the orchestration alone (API, Temporal, the workflow, the
 * read model). It keeps each instance's state in memory so that a drift check finds what the workflow expects.
 */
export class NoIoProvider implements Provider {
  private readonly states = new Map<string, InstanceState>();
  /** Provider calls made, by method: the bench prints them so a reader sees the provider was really called. */
  readonly calls = { provision: 0, start: 0, stop: 0, deprovision: 0, status: 0 };

  info(): ProviderInfo {
    return { name: NO_IO_PROVIDER, version: '0.0.0', region: 'bench' };
  }
  capabilities(): Capability[] {
    return ['provision', 'scale'];
  }
  async provision(req: ProvisionRequest): Promise<ProvisionResult> {
    this.calls.provision++;
    this.states.set(req.instance_id, 'stopped');
    return { provider_ref: `noio:${req.instance_id}`, endpoints: [] };
  }
  async deprovision(instanceId: string): Promise<void> {
    this.calls.deprovision++;
    this.states.delete(instanceId);
  }
  async start(instanceId: string): Promise<void> {
    this.calls.start++;
    this.states.set(instanceId, 'running');
  }
  async stop(instanceId: string): Promise<void> {
    this.calls.stop++;
    this.states.set(instanceId, 'stopped');
  }
  async restart(instanceId: string): Promise<void> {
    this.states.set(instanceId, 'running');
  }
  async scale(_instanceId: string, _resources: ResourceSpec): Promise<void> {}
  async status(instanceId: string): Promise<InstanceStatus> {
    this.calls.status++;
    const state = this.states.get(instanceId) ?? 'destroyed';
    return { state, ready: state === 'running', restarts: 0, endpoints: [] };
  }
  async *logs(): AsyncGenerator<LogLine> {}
  async resources(): Promise<ResourceUsage> {
    return { cpu_percent: 0, memory_used_mb: 0, memory_limit_mb: 0, network_in_mb: 0, network_out_mb: 0 };
  }
  async healthCheck(): Promise<HealthStatus> {
    return { healthy: true, message: 'no I/O', latency_ms: 0, checked_at: new Date().toISOString() };
  }
}
