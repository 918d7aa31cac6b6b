import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { allowedAddresses, type HostLookup, type ResolvedAddress } from './address.ts';

export const defaultHostLookup: HostLookup = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true }, (err, addresses: LookupAddress[]) => {
      if (err) reject(err);
      else resolve(addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })));
    });
  });

export interface WebhookPost {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
}

const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * POSTs the body and resolves with the response's status code. The host is resolved and checked here, at
 * delivery time (a name may point elsewhere than when the webhook was made), and the connection goes to the
 * addresses that were checked: no second resolution happens between the check and the connect. Redirects are
 * not followed.
 */
export async function postWebhook(
  request: WebhookPost,
  options: { allowPrivate: boolean; lookup: HostLookup },
): Promise<number> {
  const url = new URL(request.url);
  const addresses = await allowedAddresses(url, options);
  const pinned: LookupFunction = (_host, lookupOptions, callback) => {
    if (lookupOptions.all) callback(null, addresses.map(toLookupAddress));
    else {
      const first = addresses[0] as ResolvedAddress;
      callback(null, first.address, first.family);
    }
  };
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<number>((resolve, reject) => {
    const req = transport.request(
      url,
      {
        method: 'POST',
        headers: { ...request.headers, 'Content-Length': Buffer.byteLength(request.body).toString() },
        lookup: pinned,
        timeout: request.timeoutMs,
        ...(request.signal ? { signal: request.signal } : {}),
      },
      (res) => {
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) res.destroy();
        });
        res.on('close', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${request.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(request.body);
  });
}

function toLookupAddress(a: ResolvedAddress): LookupAddress {
  return { address: a.address, family: a.family };
}
