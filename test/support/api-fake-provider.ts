import type {
  CallOptions,
  Capability,
  HealthStatus,
  InstanceStatus,
  LogLine,
  LogOptions,
  Provider,
  ProviderInfo,
  ProvisionResult,
  ResourceUsage,
} from '../../providers/provider.ts';
import { PermanentProviderError } from '../../providers/provider.ts';

/**
 * A test-only provider registered inside the test process, for API tests whose subject is not a provider
 * (log streaming, shutdown): it keeps no workloads, and its log never ends until the caller aborts.
 */
export class FakeLogProvider implements Provider {
  /** The options of every logs() call, so a test can see what the API forwarded. */
  readonly logCalls: LogOptions[] = [];
  /** Calls whose iteration has ended (the API let go of the stream). */
  closedStreams = 0;

  constructor(private readonly intervalMs = 50) {}

  info(): ProviderInfo {
    return { name: 'fake', version: '0.0.0', region: 'test' };
  }
  capabilities(): Capability[] {
    return ['logs'];
  }
  async provision(): Promise<ProvisionResult> {
    return { provider_ref: 'fake:x', endpoints: [] };
  }
  async deprovision(): Promise<void> {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async restart(): Promise<void> {}
  async scale(): Promise<void> {}
  async status(): Promise<InstanceStatus> {
    return { state: 'running', ready: true, restarts: 0, endpoints: [] };
  }
  async *logs(_instanceId: string, options: LogOptions, opts: CallOptions = {}): AsyncGenerator<LogLine> {
    this.logCalls.push(options);
    if (options.service_name === 'broken')
      throw new PermanentProviderError('no such service', 'invalid_request');
    try {
      const count = options.follow ? Number.POSITIVE_INFINITY : (options.tail ?? 3);
      for (let i = 0; i < count && !opts.signal?.aborted; i++) {
        yield { ts: new Date().toISOString(), stream: i % 2 ? 'stderr' : 'stdout', line: `line ${i}` };
        if (options.follow) await new Promise((r) => setTimeout(r, this.intervalMs));
      }
    } finally {
      this.closedStreams++;
    }
  }
  async resources(): Promise<ResourceUsage> {
    return { cpu_percent: 1.5, memory_used_mb: 12, memory_limit_mb: 64, network_in_mb: 0, network_out_mb: 0 };
  }
  async healthCheck(): Promise<HealthStatus> {
    return { healthy: true, message: 'ok', latency_ms: 0, checked_at: new Date().toISOString() };
  }
}
