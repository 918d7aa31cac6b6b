import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { NextFunction, Request, Response } from 'express';

const tracer = trace.getTracer('ctrlplane-api');

/**
 * One server span per request, the root of the request's trace (or a child of a `traceparent` the caller sent):
 * everything the request does (Temporal client calls, and through their headers the workflow and its
 * activities) runs in its context. Named after the route once it is known (`POST /v1/instances`).
 */
export function requestSpans() {
  return (req: Request, res: Response, next: NextFunction): void => {
    const parent = propagation.extract(context.active(), req.headers);
    const span = tracer.startSpan(
      req.method,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': req.method, 'url.path': req.path },
      },
      parent,
    );
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const route = routeOf(req, res);
      if (route) {
        span.updateName(`${req.method} ${route}`);
        span.setAttribute('http.route', route);
      }
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(trace.setSpan(parent, span), next);
  };
}

/** The route's pattern, as the metrics label it (`/v1/instances/:id`), else Express's own. */
function routeOf(req: Request, res: Response): string | undefined {
  const labelled = res.locals.route;
  if (typeof labelled === 'string') return labelled;
  const pattern = req.route?.path;
  return typeof pattern === 'string' ? `${req.baseUrl}${pattern}` : undefined;
}
