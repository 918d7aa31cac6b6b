import { Readable } from 'node:stream';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';
import { CappedSink } from '../capped-output.ts';
import { type ExecRequest, type ExecResult, PermanentProviderError } from '../provider.ts';

/**
 * Runs one command in a pod's container through the API server (pods/exec over a WebSocket, client-node's Exec),
 * without a TTY: the container's own user, as its securityContext (and Pod Security) set it. At the timeout the
 * socket is closed and the answer says `timed_out` (the kubelet then ends the stream; the process may run on).
 */
export async function execInPod(
  kc: KubeConfig,
  target: { namespace: string; pod: string; container: string },
  request: ExecRequest,
  signal: AbortSignal | undefined,
): Promise<Omit<ExecResult, 'service'>> {
  signal?.throwIfAborted();
  const stdout = new CappedSink(request.max_output_bytes);
  const stderr = new CappedSink(request.max_output_bytes);
  const stdin = request.stdin !== undefined ? Readable.from([Buffer.from(request.stdin)]) : null;
  let status: V1Status | undefined;
  const socket = await new Exec(kc).exec(
    target.namespace,
    target.pod,
    target.container,
    request.argv,
    stdout,
    stderr,
    stdin,
    false,
    (s) => {
      status = s;
    },
  );
  const timeout = AbortSignal.timeout(request.timeout_ms);
  const stop = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const how = await new Promise<'closed' | 'stopped'>((resolve, reject) => {
    socket.once('close', () => resolve('closed'));
    socket.once('error', reject);
    if (stop.aborted) resolve('stopped');
    stop.addEventListener('abort', () => resolve('stopped'), { once: true });
  });
  if (how === 'stopped') {
    socket.close();
    if (signal?.aborted) throw signal.reason ?? new Error('exec aborted');
    return { ...stdout.result('stdout'), ...stderr.result('stderr'), exit_code: null, timed_out: true };
  }
  const exitCode = exitCodeOf(status);
  // A failure that is not the command's exit: the kubelet or the runtime could not run it at all.
  if (exitCode === null && status?.status === 'Failure') {
    throw new PermanentProviderError(
      `the command could not be run in container ${target.container}: ${status.message ?? status.reason ?? 'no reason given'}`,
      'provider_failed',
    );
  }
  return { ...stdout.result('stdout'), ...stderr.result('stderr'), exit_code: exitCode, timed_out: false };
}

/** `Success` is 0; a non-zero exit is a `Failure` with an `ExitCode` cause; anything else is unknown. */
function exitCodeOf(status: V1Status | undefined): number | null {
  if (!status) return null;
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const code = Number(cause?.message);
  return cause && Number.isInteger(code) ? code : null;
}
