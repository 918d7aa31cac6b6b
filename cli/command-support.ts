import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import type { CtrlplaneClient } from '../clients/typescript/client.ts';
import { CliError, EXIT, exitCodeForStatus } from './exit-codes.ts';
import type { OutputFormat } from './output.ts';

export interface CliContext {
  api: CtrlplaneClient;
  output: OutputFormat;
  /** Ends follows (logs -f, events -f) on Ctrl-C. */
  signal: AbortSignal;
}

/** One answer of the typed client: the data, or a CliError with the exit code of its status. */
export async function must<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
  what: string,
): Promise<{ data: T; response: Response }> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(EXIT.unavailable, `${what}: the API did not answer (${causeOf(err)})`);
  }
  const { data, error, response } = result;
  if (!response.ok || error !== undefined) {
    throw new CliError(
      exitCodeForStatus(response.status),
      `${what}: ${response.status} ${problemText(error)}`,
    );
  }
  return { data: data as T, response };
}

export function causeOf(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}

function problemText(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error ?? '');
  const p = error as { code?: string; detail?: string; errors?: { field: string; message: string }[] };
  const fields = (p.errors ?? []).map((e) => `\n  ${e.field}: ${e.message}`).join('');
  return `${p.code ?? 'error'}: ${p.detail ?? ''}${fields}`;
}

export function parse<const O extends ParseArgsOptionsConfig>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError(EXIT.usage, err instanceof Error ? err.message : String(err));
  }
}
