import { z } from 'zod';

/**
 * The signals a stop may send: the POSIX termination signals a process may catch, by name. SIGKILL is among
 * them (a stop that must not wait); signals that do not end a process (SIGCHLD, SIGWINCH…) are not.
 */
export const STOP_SIGNALS = [
  'SIGTERM',
  'SIGINT',
  'SIGQUIT',
  'SIGHUP',
  'SIGKILL',
  'SIGUSR1',
  'SIGUSR2',
] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** The longest a stop may wait for the process before it is killed. */
export const MAX_STOP_TIMEOUT_SECONDS = 3600;

export const stopSignalSchema = z.enum(STOP_SIGNALS).meta({
  description:
    "Sent to each container's process; absent: the container's own STOPSIGNAL (the image's), else SIGTERM",
});

export const stopTimeoutSchema = z.number().int().min(0).max(MAX_STOP_TIMEOUT_SECONDS).meta({
  description:
    'Seconds to wait after the signal before the container is killed (absent: the configured stop timeout)',
});
