import type { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import { CappedSink } from '../capped-output.ts';
import { type ExecRequest, type ExecResult, PermanentProviderError } from '../provider.ts';
import { hasStatus } from './docker-errors.ts';

/** After the output ended, how long the daemon may take to report the exit code. */
const EXIT_CODE_WAIT_MS = 2_000;
const EXIT_CODE_POLL_MS = 50;

/**
 * Runs one command in a running container (`docker exec`), as the container's own user, without a TTY and
 * never privileged: what the request may not choose is not in it. stdout and stderr come demultiplexed,
 * each cut at `max_output_bytes` (the rest is read and dropped, so the command is never blocked on a full
 * pipe). At the timeout the connection is dropped and the answer says `timed_out`; Docker has no call to
 * kill an exec'd process, so it runs on inside the container's own limits.
 */
export async function execInContainer(
  docker: Dockerode,
  containerId: string,
  request: ExecRequest,
  signal: AbortSignal | undefined,
): Promise<Omit<ExecResult, 'service'>> {
  const container = docker.getContainer(containerId);
  const withStdin = request.stdin !== undefined;
  let exec: Dockerode.Exec;
  try {
    exec = await container.exec({
      Cmd: request.argv,
      AttachStdin: withStdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      Privileged: false,
      ...(signal ? { abortSignal: signal } : {}),
    } as Dockerode.ExecCreateOptions);
  } catch (err) {
    // 409: the container is not running (stopped, restarting or paused).
    if (hasStatus(err, 409)) {
      throw new PermanentProviderError(
        'the service is not running; exec needs a running container',
        'invalid_state',
      );
    }
    throw err;
  }

  const timeout = AbortSignal.timeout(request.timeout_ms);
  const stop = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const stream = (await exec.start({ hijack: true, stdin: withStdin, Tty: false })) as Duplex;
  const stdout = new CappedSink(request.max_output_bytes);
  const stderr = new CappedSink(request.max_output_bytes);
  docker.modem.demuxStream(stream, stdout, stderr);

  const ended = new Promise<'ended'>((resolve, reject) => {
    stream.once('end', () => resolve('ended'));
    stream.once('close', () => resolve('ended'));
    stream.once('error', reject);
  });
  const stopped = new Promise<'stopped'>((resolve) => {
    if (stop.aborted) resolve('stopped');
    stop.addEventListener('abort', () => resolve('stopped'), { once: true });
  });
  if (withStdin) stream.end(request.stdin);
  const how = await Promise.race([ended, stopped]);
  stream.destroy();
  if (how === 'stopped') {
    if (signal?.aborted) throw signal.reason ?? new Error('exec aborted');
    return { ...stdout.result('stdout'), ...stderr.result('stderr'), exit_code: null, timed_out: true };
  }
  return {
    ...stdout.result('stdout'),
    ...stderr.result('stderr'),
    exit_code: await exitCode(exec, signal),
    timed_out: false,
  };
}

/** The exec's exit code once the daemon reports it ended; null if it does not say so soon. */
async function exitCode(exec: Dockerode.Exec, signal: AbortSignal | undefined): Promise<number | null> {
  const deadline = Date.now() + EXIT_CODE_WAIT_MS;
  for (;;) {
    const info = await exec.inspect(signal ? { abortSignal: signal } : {});
    if (!info.Running && typeof info.ExitCode === 'number') return info.ExitCode;
    if (Date.now() >= deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, EXIT_CODE_POLL_MS));
  }
}
