import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createLogger } from '../config/logger.ts';
import { installTelemetry, type Telemetry } from '../telemetry/tracing.ts';
import { instanceWorkflowId } from '../workflows/messages.ts';
import { httpdService, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// The real stack (API and worker in this process, the run's Temporal server, PostgreSQL, Docker) with the
// tracing SDK installed as OTEL_EXPORTER_OTLP_ENDPOINT would, but exporting into memory instead of a collector.
describe('one trace per API request, from the API through the workflow and its activities into the provider', () => {
  const exporter = new InMemorySpanExporter();
  const tenant = uniqueTenant('traces');
  const created: string[] = [];
  let telemetry: Telemetry | undefined;
  let stack: Stack;

  before(async () => {
    await removeTenantLeftovers('ten_traces_');
    telemetry = installTelemetry({
      serviceName: 'ctrlplane-test',
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    stack = await startStack({ env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0' } });
  });

  after(async () => {
    await stack?.close();
    await telemetry?.shutdown();
    await removeInstances(created);
  });

  const spansOf = (traceId: string) =>
    exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
  const names = (spans: ReadableSpan[]) => spans.map((s) => s.name);

  it('a create with ?wait= is one trace: the API span, the workflow, every activity and the provider calls', async () => {
    const call = apiClient(stack.api.url, await stack.token(tenant));
    // No published port: the host's port range is shared with other engines on this machine.
    const { ports: _published, ...web } = httpdService('traced');
    const res = await call('POST', '/v1/instances?wait=60s', { name: 'traced', services: [web] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const id: string = res.body.id;
    created.push(id);
    assert.equal(res.body.state, 'running');

    const server = exporter
      .getFinishedSpans()
      .find((s) => s.name === 'POST /v1/instances' && s.attributes['http.response.status_code'] === 201);
    assert.ok(server, `the API's span: ${names(exporter.getFinishedSpans()).join(', ')}`);
    assert.equal(server.parentSpanId, undefined, 'the request is the root of its trace');
    const traceId = server.spanContext().traceId;

    // Every activity the workflow ran for the create, read from its history.
    const history = await stack.client.workflow.getHandle(instanceWorkflowId(id)).fetchHistory();
    const activities = (history.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter((n): n is string => typeof n === 'string');
    assert.ok(activities.includes('provisionInstance'), `the create provisioned: ${activities.join(', ')}`);

    const spans = await eventually('the activity spans of the create', async () => {
      const inTrace = spansOf(traceId);
      const ran = inTrace.filter((s) => s.name.startsWith('RunActivity:')).length;
      return ran >= activities.length ? inTrace : undefined;
    });
    const inTrace = names(spans);
    // A create that waits starts the workflow and waits for it in one call: update-with-start of `settled`.
    const clientStart = 'UpdateWithStartWorkflow:settled';
    assert.ok(inTrace.includes(clientStart), `the Temporal client's start: ${inTrace.join(', ')}`);
    for (const activity of new Set(activities)) {
      assert.ok(
        inTrace.includes(`StartActivity:${activity}`),
        `the workflow scheduled ${activity} in this trace`,
      );
      assert.ok(inTrace.includes(`RunActivity:${activity}`), `the worker ran ${activity} in this trace`);
    }
    const provision = spans.find((s) => s.name === 'provider docker.provision');
    assert.ok(provision, `the provider call: ${inTrace.join(', ')}`);
    const runProvision = spans.find((s) => s.name === 'RunActivity:provisionInstance');
    assert.equal(
      provision.parentSpanId,
      runProvision?.spanContext().spanId,
      'the provider call is inside the activity',
    );
    assert.deepEqual(
      [...new Set(spans.map((s) => s.spanContext().traceId))],
      [traceId],
      'nothing of the create is in another trace',
    );

    // A command's request is a trace of its own, through the update into the workflow.
    const stopped = await call('POST', `/v1/instances/${id}/stop?wait=true`);
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    const stopServer = exporter.getFinishedSpans().find((s) => s.name === 'POST /v1/instances/:id/stop');
    assert.ok(stopServer, 'the stop request span');
    // The workflow runs the command later, in its loop: its activities and provider calls are still this
    // request's, not the create's.
    const stopTrace = await eventually('the update, activity and provider spans of the stop', async () => {
      const found = names(spansOf(stopServer.spanContext().traceId));
      return found.some((n) => n.startsWith('HandleUpdate:')) && found.includes('provider docker.stop')
        ? found
        : undefined;
    });
    for (const span of ['StartActivity:stopInstance', 'RunActivity:stopInstance']) {
      assert.ok(stopTrace.includes(span), `${span} in the stop's trace: ${stopTrace.join(', ')}`);
    }
    assert.ok(
      !names(spansOf(traceId)).includes('RunActivity:stopInstance'),
      "the stop's activities are not in the create's trace",
    );
    assert.ok(
      stopTrace.some((n) => n.startsWith('StartWorkflowUpdate:')),
      stopTrace.join(', '),
    );
    assert.notEqual(stopServer.spanContext().traceId, traceId, 'another request, another trace');

    // The workflow's own span ends with the workflow: deleting the instance ends it.
    const deleted = await call('DELETE', `/v1/instances/${id}?wait=true`);
    assert.equal(deleted.status, 204, JSON.stringify(deleted.body));
    const workflowSpan = await eventually('the workflow run span', async () =>
      spansOf(traceId).find((s) => s.name.startsWith('RunWorkflow:')),
    );
    assert.equal(
      workflowSpan.parentSpanId,
      spans.find((s) => s.name === clientStart)?.spanContext().spanId,
      'the workflow run continues the API request that started it',
    );
  });

  it('puts the trace and span ids into log lines written inside a traced request', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger('trace-ids', 'info', sink);
    const tracer = trace.getTracer('test');
    const ids = tracer.startActiveSpan('a request', (span) => {
      logger.info('inside');
      span.end();
      return span.spanContext();
    });
    logger.info('outside');
    const [inside, outside] = lines.map((l) => JSON.parse(l));
    assert.equal(inside.trace_id, ids.traceId);
    assert.equal(inside.span_id, ids.spanId);
    assert.equal(outside.trace_id, undefined, 'no trace, no ids');
  });
});
