/** dockerode rejects with an Error carrying the daemon's HTTP status as `statusCode`. */
export function statusCodeOf(err: unknown): number | undefined {
  if (err !== null && typeof err === 'object' && 'statusCode' in err) {
    const code = (err as { statusCode: unknown }).statusCode;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

export function hasStatus(err: unknown, ...codes: number[]): boolean {
  const code = statusCodeOf(err);
  return code !== undefined && codes.includes(code);
}

/** Awaits `call`; a rejection with one of `codes` counts as success (e.g. 404 on remove, 304 on start). */
export async function ignoreStatus<T>(call: Promise<T>, ...codes: number[]): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (hasStatus(err, ...codes)) return undefined;
    throw err;
  }
}

/** The daemon's message for an error, e.g. `(HTTP code 404) no such container - No such container: x`. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
