import { createRequire } from 'node:module';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type { WorkerOptions } from '@temporalio/worker';
import { currentTelemetry, DISCARDING_TELEMETRY } from './tracing.ts';

/**
 * The workflow interceptors that trace workflow runs, updates and the activities they schedule, continuing the
 * trace the client put into the headers. They are part of the workflow bundle; their spans leave the sandbox
 * through the `exporter` sink.
 */
export const WORKFLOW_TRACING_INTERCEPTORS = createRequire(import.meta.url).resolve(
  '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors',
);

/** Client interceptors: starting a workflow or an update opens a span and passes its context in the headers. */
export function tracingClientInterceptors(): { workflow: WorkflowClientInterceptor[] } {
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor()] };
}

/**
 * A worker's tracing: activity spans continuing the workflow's trace, and the sink the workflow spans are
 * exported through (to the installed telemetry, or nowhere). `bundled`: the workflow code comes from a prebuilt
 * bundle, which holds the workflow interceptors already.
 */
export function workerTracing(bundled: boolean): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  const telemetry = currentTelemetry() ?? DISCARDING_TELEMETRY;
  return {
    interceptors: {
      ...(bundled ? {} : { workflowModules: [WORKFLOW_TRACING_INTERCEPTORS] }),
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    sinks: { exporter: makeWorkflowExporter(telemetry.spanProcessor, telemetry.resource) },
  };
}
