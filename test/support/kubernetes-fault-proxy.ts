/**
 * A loopback HTTP proxy in front of the run's real API server that fails the requests a test names — an
 * answer with a 5xx status, a dropped connection, or a write by someone else just before the request goes on —
 * and passes everything else through unchanged (streams included). It stands in for the network and for a busy
 * or restarting API server, which cannot be arranged on demand against a real one; every answer the provider
 * acts on otherwise comes from the real server.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export interface Fault {
  method?: string;
  /** A substring of the request path. */
  path?: string;
  /** Answer with this status (and a Kubernetes Status body) instead of forwarding. */
  status?: number;
  message?: string;
  /** Close the connection without an answer. */
  drop?: boolean;
  /** Run this (e.g. a conflicting write through the real server), then forward the request. */
  before?: () => Promise<void>;
}

export class KubernetesFaultProxy {
  private server: Server | undefined;
  private readonly faults: Fault[] = [];
  private readonly upstream: URL;
  private readonly ca: string | undefined;
  private readonly token: string | undefined;

  constructor(real: KubeConfig) {
    const cluster = real.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.upstream = new URL(cluster.server);
    this.ca = cluster.caData ? Buffer.from(cluster.caData, 'base64').toString('utf8') : undefined;
    this.token = real.getCurrentUser()?.token;
  }

  /** Fails the next request that matches. */
  failNext(fault: Fault): void {
    this.faults.push(fault);
  }

  /** Breaks every open connection (a followed log or watch ends as on a network failure). */
  dropConnections(): void {
    this.server?.closeAllConnections();
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** A kubeconfig that reaches the real API server through this proxy (same user). */
  kubeConfig(): KubeConfig {
    const address = this.server?.address() as AddressInfo | undefined;
    if (!address) throw new Error('the proxy is not started');
    const port = address.port;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      // client-node accepts plain http only with skipTLSVerify (there is no TLS to verify on loopback).
      clusters: [{ name: 'through-proxy', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'admin', ...(this.token ? { token: this.token } : {}) }],
      contexts: [{ name: 'through-proxy', cluster: 'through-proxy', user: 'admin' }],
      currentContext: 'through-proxy',
    });
    return kc;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const index = this.faults.findIndex(
      (f) => (!f.method || f.method === req.method) && (!f.path || (req.url ?? '').includes(f.path)),
    );
    const fault = index >= 0 ? this.faults.splice(index, 1)[0] : undefined;
    if (fault?.drop) {
      req.socket.destroy();
      return;
    }
    if (fault?.status) {
      res.writeHead(fault.status, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message: fault.message ?? 'injected by the test proxy',
          code: fault.status,
        }),
      );
      return;
    }
    if (fault?.before) await fault.before();
    const headers = { ...req.headers, host: this.upstream.host };
    const upstream = httpsRequest(
      {
        hostname: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers,
        ...(this.ca ? { ca: this.ca } : {}),
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }
}
