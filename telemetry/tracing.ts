import type { Context } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  NoopSpanProcessor,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

export interface TelemetryOptions {
  serviceName: string;
  /** OTEL_EXPORTER_OTLP_ENDPOINT: spans are sent to `<endpoint>/v1/traces` (OTLP over HTTP). */
  otlpEndpoint?: string | undefined;
  /** Further processors (tests give an in-memory exporter's). */
  spanProcessors?: SpanProcessor[];
}

/** The tracing SDK of this process: what the worker hands the workflow span sink too. */
export interface Telemetry {
  readonly resource: Resource;
  /** Every span of this process ends here (the workflow sink included). */
  readonly spanProcessor: SpanProcessor;
  /** Exports what is still buffered and stops the SDK. */
  shutdown(): Promise<void>;
}

let installed: Telemetry | undefined;

/**
 * Starts the OpenTelemetry Node SDK (context propagation, the global tracer provider) when there is somewhere to
 * send spans; with no endpoint and no processor nothing is started, the API's tracers stay no-ops and nothing is
 * exported.
 */
export function installTelemetry(options: TelemetryOptions): Telemetry | undefined {
  const processors = [...(options.spanProcessors ?? [])];
  if (options.otlpEndpoint) {
    const url = new URL(
      'v1/traces',
      options.otlpEndpoint.endsWith('/') ? options.otlpEndpoint : `${options.otlpEndpoint}/`,
    );
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: url.toString() })));
  }
  if (processors.length === 0) return undefined;
  if (installed) throw new Error('telemetry is installed already in this process');
  const resource = new Resource({ [ATTR_SERVICE_NAME]: options.serviceName });
  // Spans are made by the Temporal interceptors and by ctrlplane's own code: no auto-instrumentation.
  const sdk = new NodeSDK({
    resource,
    spanProcessors: processors,
    instrumentations: [],
    autoDetectResources: false,
  });
  sdk.start();
  const telemetry: Telemetry = {
    resource,
    spanProcessor: new FanOutSpanProcessor(processors),
    async shutdown() {
      if (installed === telemetry) installed = undefined;
      await sdk.shutdown();
    },
  };
  installed = telemetry;
  return telemetry;
}

/** The telemetry installed in this process, if any. */
export function currentTelemetry(): Telemetry | undefined {
  return installed;
}

/** Where workflow spans go when no telemetry is installed: the workflow interceptors still run, quietly. */
export const DISCARDING_TELEMETRY: Pick<Telemetry, 'resource' | 'spanProcessor'> = {
  resource: Resource.empty(),
  spanProcessor: new NoopSpanProcessor(),
};

/** Hands each span to every processor (the SDK's own fan-out is not exported). */
class FanOutSpanProcessor implements SpanProcessor {
  constructor(private readonly processors: readonly SpanProcessor[]) {}

  onStart(span: Span, parentContext: Context): void {
    for (const p of this.processors) p.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    for (const p of this.processors) p.onEnd(span);
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.processors.map((p) => p.forceFlush()));
  }

  // The SDK shuts its processors down itself.
  async shutdown(): Promise<void> {}
}
