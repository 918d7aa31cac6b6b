import createClient, { type Client } from 'openapi-fetch';
import type { components, operations, paths } from './openapi-types.ts';

/**
 * A typed client of the ctrlplane API: every route of /openapi.json, with its parameters, bodies and answers
 * typed from clients/typescript/openapi-types.ts (generated: `npm run client:generate`).
 *
 *   const api = createCtrlplaneClient({ baseUrl: 'http://localhost:8080', token });
 *   const { data, error, response } = await api.GET('/v1/instances/{id}', { params: { path: { id } } });
 */
export type CtrlplaneClient = Client<paths>;

export type Schemas = components['schemas'];
export type Instance = Schemas['Instance'];
export type InstanceEvent = Schemas['InstanceEvent'];
export type LogLine = Schemas['LogLine'];
export type Problem = Schemas['Problem'];
export type CreateInstanceBody = NonNullable<
  operations['createInstance']['requestBody']
>['content']['application/json'];
export type { components, operations, paths };

export interface CtrlplaneClientOptions {
  /** The API's origin, e.g. http://localhost:8080. */
  baseUrl: string;
  /** A Bearer token (CTRLPLANE_TOKEN); absent: only the public routes answer. */
  token?: string;
  /** Another fetch (tests, proxies). */
  fetch?: typeof fetch;
}

export function createCtrlplaneClient(options: CtrlplaneClientOptions): CtrlplaneClient {
  return createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}
