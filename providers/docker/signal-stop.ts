import type Dockerode from 'dockerode';
import type { StopSignal } from '../../domain/schemas/stop-options.ts';
import { hasStatus, ignoreStatus } from './docker-errors.ts';

/**
 * Stops a container with a chosen signal. The stop call takes a signal only from API 1.42 (Docker 23); before,
 * it always sends the container's own StopSignal. So, on any engine: the signal by `kill`, a wait of `timeoutSeconds`
 * for the process to end, then `stop` with no grace (it kills what is left, and marks the container stopped by
 * hand when it still ran). The restart policy becomes `no` first, so that neither the engine (at once, or when
 * dockerd restarts) nor anything else revives a process the signal ended; `start` puts `unless-stopped` back
 * (RUNNING_RESTART_POLICY).
 */
export async function stopWithSignal(
  container: Dockerode.Container,
  signal: StopSignal,
  timeoutSeconds: number,
  abort: AbortSignal | undefined,
): Promise<void> {
  const info = await ignoreStatus(container.inspect(abort ? { abortSignal: abort } : {}), 404);
  if (!info) return;
  if (!info.State.Running) return;
  await container.update({ RestartPolicy: { Name: 'no' } });
  try {
    await container.kill({ signal, ...(abort ? { abortSignal: abort } : {}) });
  } catch (err) {
    // 409: it ended meanwhile; the stop below marks it.
    if (!hasStatus(err, 409)) throw err;
  }
  const waited = AbortSignal.timeout(Math.max(timeoutSeconds, 0) * 1000);
  await container
    .wait({
      condition: 'not-running',
      abortSignal: abort ? AbortSignal.any([abort, waited]) : waited,
    })
    .catch((err: unknown) => {
      if (abort?.aborted) throw err;
      // The timeout: the stop below kills it.
    });
  await ignoreStatus(container.stop({ t: 0 }), 304, 404);
}

/** The restart policy of a service container while the instance runs (container-config.ts creates it so). */
export const RUNNING_RESTART_POLICY = { Name: 'unless-stopped' } as const;
