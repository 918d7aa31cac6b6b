import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, verifySignature } from '../../webhooks/signature.ts';
import type { StreamedEvent } from './event-stream-client.ts';

export interface ReceivedDelivery {
  n: number;
  body: string;
  event: StreamedEvent;
  signature: string;
  eventIdHeader: string;
  /** The status the receiver answered (undefined: it never answered). */
  answered?: number;
}

/** What the receiver does with the n-th request (1-based): answer a status, or hold it open forever. */
export type Responder = (n: number, delivery: ReceivedDelivery) => number | 'hang';

/** A webhook receiver on loopback, as a tenant would run one: it records each request and answers it. */
export async function startReceiver(responder: Responder = () => 200) {
  const requests: ReceivedDelivery[] = [];
  const waiters: { test: () => boolean; resolve: () => void }[] = [];
  const open = new Set<ServerResponse>();
  let respond = responder;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const delivery: ReceivedDelivery = {
        n: requests.length + 1,
        body,
        event: JSON.parse(body) as StreamedEvent,
        signature: String(req.headers[SIGNATURE_HEADER.toLowerCase()] ?? ''),
        eventIdHeader: String(req.headers['x-ctrlplane-event-id'] ?? ''),
      };
      requests.push(delivery);
      const answer = respond(delivery.n, delivery);
      if (answer === 'hang') open.add(res);
      else {
        delivery.answered = answer;
        res.writeHead(answer).end();
      }
      for (const w of [...waiters]) {
        if (w.test()) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    requests,
    setResponder(next: Responder) {
      respond = next;
    },
    /** The deliveries the receiver took (answered 2xx), in arrival order. */
    accepted(): ReceivedDelivery[] {
      return requests.filter((r) => r.answered !== undefined && r.answered >= 200 && r.answered < 300);
    },
    /** Resolves once `test` holds after a request. */
    waitFor(test: () => boolean): Promise<void> {
      if (test()) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ test, resolve }));
    },
    /** True when the delivery's signature is valid for the secret (and fresh). */
    signedWith(delivery: ReceivedDelivery, secret: string): boolean {
      return verifySignature(secret, delivery.signature, delivery.body, {
        nowSeconds: Math.floor(Date.now() / 1000),
        toleranceSeconds: 300,
      });
    },
    async close() {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;
