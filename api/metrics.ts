import type { NextFunction, Request, Response } from 'express';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ProviderCapacity } from './host-capacity.ts';

/** Prometheus metrics of one API process, on a registry of its own (several apps can share a process). */
export class ApiMetrics {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'ctrlplane_http_request_duration_seconds',
    help: 'HTTP request latency by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });

  readonly commands = new Counter({
    name: 'ctrlplane_commands_total',
    help: 'Lifecycle commands sent by the API, by type and outcome (accepted, completed, or the error code)',
    labelNames: ['command', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'ctrlplane_api_' });
  }

  /**
   * `ctrlplane_host_capacity_free` and `_total` {provider, host, resource: networks|instances}, counted at each
   * scrape from `report` (a host that cannot be counted is left out of that scrape).
   */
  observeCapacity(report: () => Promise<ProviderCapacity[]>): void {
    let latest: Promise<ProviderCapacity[]> | undefined;
    // Both gauges are collected in one scrape: count once for the pair.
    const once = () => {
      latest ??= report().finally(() => {
        setImmediate(() => {
          latest = undefined;
        });
      });
      return latest;
    };
    const gauge = (name: string, help: string, pick: (c: { total: number; free: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['provider', 'host', 'resource'] as const,
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const { provider, capacity } of await once()) {
            if (!capacity) continue;
            this.set({ provider, host: capacity.host, resource: 'networks' }, pick(capacity.networks));
            this.set({ provider, host: capacity.host, resource: 'instances' }, pick(capacity.instances));
          }
        },
      });
    gauge(
      'ctrlplane_host_capacity_free',
      'How many more instance networks and instances each provider host can take now',
      (c) => c.free,
    );
    gauge(
      'ctrlplane_host_capacity_total',
      'Instance networks and instances each provider host holds at most',
      (c) => c.total,
    );
  }

  /** Times every request; the label is the route template (set by the router), never the raw path. */
  middleware() {
    return (req: Request, res: Response, next: NextFunction): void => {
      const started = process.hrtime.bigint();
      let recorded = false;
      const record = () => {
        if (recorded) return;
        recorded = true;
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const route = typeof res.locals.route === 'string' ? res.locals.route : 'unmatched';
        this.httpDuration.observe({ method: req.method, route, status: String(res.statusCode) }, seconds);
      };
      res.once('finish', record);
      res.once('close', record);
      next();
    };
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** Marks the request with its route template for the latency histogram. */
export function routeLabel(route: string) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    res.locals.route = route;
    next();
  };
}
