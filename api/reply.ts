import type { Response } from 'express';
import type { StoredResponse } from '../db/idempotency-store.ts';
import { PROBLEM_CONTENT_TYPE, type Problem } from './problem.ts';

/**
 * What a mutating route answers, built before it is sent, so an Idempotency-Key can store it and replay it
 * byte for byte.
 */
export interface Reply {
  status: number;
  /** JSON body; absent for 204. */
  body?: unknown;
  headers?: Record<string, string>;
}

export function jsonReply(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, body, headers };
}

export function problemReply(body: Problem): Reply {
  return { status: body.status, body, headers: { 'Content-Type': PROBLEM_CONTENT_TYPE } };
}

/** The wire form of a reply: status, headers (content type included) and body text. */
export type { StoredResponse };

export function storedFormOf(reply: Reply): StoredResponse {
  const headers = { ...reply.headers };
  if (reply.body === undefined) return { status: reply.status, headers, body: '' };
  headers['Content-Type'] ??= 'application/json; charset=utf-8';
  return { status: reply.status, headers, body: JSON.stringify(reply.body) };
}

export function sendStored(res: Response, stored: StoredResponse): void {
  for (const [name, value] of Object.entries(stored.headers)) res.setHeader(name, value);
  res.status(stored.status);
  if (stored.body === '') res.end();
  else res.send(stored.body);
}

export function sendReply(res: Response, reply: Reply): void {
  sendStored(res, storedFormOf(reply));
}
