import type Dockerode from 'dockerode';
import type { ChangeFeed, FeedChange, Glance, ManagedListing } from '../change-feed.ts';
import { LABEL } from './labels.ts';

/** The container events that can change what an instance's status reports. */
const WATCHED_ACTIONS = new Set(['die', 'start', 'oom', 'health_status', 'destroy']);

interface DockerEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

/**
 * Docker's `/events` of the containers labelled `ctrlplane.managed`. The cursor is an event time in whole
 * seconds: following from it again repeats the events of that second, which a watcher checks twice at worst.
 */
export class DockerChangeFeed implements ChangeFeed {
  constructor(private readonly docker: Dockerode) {}

  async list(signal: AbortSignal): Promise<ManagedListing> {
    // Taken before the listing, so that following from it covers whatever happens while the list is read.
    const cursor = String(Math.floor(Date.now() / 1000) - 1);
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [LABEL.managed] },
      abortSignal: signal,
    } as Dockerode.ContainerListOptions);
    const instances = new Map<string, Glance>();
    for (const c of containers) {
      const id = c.Labels?.[LABEL.instance];
      if (!id) continue;
      // An init container that has done its work is not a part that should run.
      const counts = c.Labels?.[LABEL.role] !== 'init';
      const glance: Glance = !counts || c.State === 'running' ? 'running' : 'not_running';
      if (instances.get(id) !== 'not_running') instances.set(id, glance);
    }
    return { instances, cursor };
  }

  async follow(cursor: string, onChange: (change: FeedChange) => void, signal: AbortSignal): Promise<void> {
    const stream = (await this.docker.getEvents({
      since: Number(cursor),
      // The engine matches `health_status` against `health_status: healthy` and the like.
      filters: { type: ['container'], label: [LABEL.managed], event: [...WATCHED_ACTIONS] },
      abortSignal: signal,
    } as Dockerode.GetEventsOptions)) as NodeJS.ReadableStream & { destroy(): void };
    const stop = () => stream.destroy();
    signal.addEventListener('abort', stop, { once: true });
    let rest = '';
    try {
      // Iterating the stream itself: it rejects when the connection breaks and ends when the engine closes it.
      for await (const chunk of stream as AsyncIterable<Buffer | string>) {
        const lines = (rest + chunk.toString()).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          const change = changeOf(line);
          if (change) onChange(change);
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      signal.removeEventListener('abort', stop);
    }
    if (!signal.aborted) throw new Error('the Docker event stream ended');
  }
}

function changeOf(line: string): FeedChange | undefined {
  if (!line.trim()) return undefined;
  let event: DockerEvent;
  try {
    event = JSON.parse(line) as DockerEvent;
  } catch {
    return undefined;
  }
  // `health_status: healthy` and the like: the action is the part before the colon.
  const action = (event.Action ?? '').split(':')[0] ?? '';
  const instanceId = event.Actor?.Attributes?.[LABEL.instance];
  if (event.Type !== 'container' || !WATCHED_ACTIONS.has(action) || !instanceId) return undefined;
  const seconds = event.timeNano ? Math.floor(event.timeNano / 1e9) : (event.time ?? Date.now() / 1000);
  return { instance_id: instanceId, cursor: String(Math.floor(seconds)), reason: `docker ${action}` };
}
