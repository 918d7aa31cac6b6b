import type { WatchedInstances } from '../db/watched-instances.ts';
import { isDrift, isSettling } from '../domain/drift-rule.ts';
import type { InstanceState } from '../domain/instance-state.ts';
import { type ChangeFeed, CursorExpired, type ManagedListing } from '../providers/change-feed.ts';
import { sourceStatus } from '../providers/dispatch.ts';
import type { Provider } from '../providers/provider.ts';
import type { DriftNotice } from '../workflows/drift-notice.ts';

/** While a command moves an instance, its check waits this long between looks at the read model. */
const SETTLE_POLL_MS = 500;
/** And gives up after this many: the next resync looks again. */
const SETTLE_POLLS = 240;

export interface ProviderWatcherDeps {
  providerName: string;
  provider: Provider;
  feed: ChangeFeed;
  readModel: WatchedInstances;
  /** Tells the instance's workflow; an instance whose workflow is gone is not an error. */
  notify(instanceId: string, notice: DriftNotice): Promise<void>;
  /** Called with the cursor as the watch goes on (the activity heartbeats it). */
  progress(cursor: string | undefined): void;
  warn(err: unknown, message: string): void;
}

/**
 * Follows one provider's change feed and tells each instance whose objects no longer match the read model
 * (domain/drift-rule.ts). It starts with a resync: after any gap (a new attempt, the engine restarted, a cursor
 * the feed no longer reaches) one listing of everything the provider manages finds what changed meanwhile.
 * A changed instance is looked at closely (its status) before it is told; one a command is moving is looked at
 * once the command has concluded.
 */
export class ProviderWatcher {
  private cursor: string | undefined;
  private readonly pending = new Map<string, { reason: string; polls: number }>();
  private wake: (() => void) | undefined;

  constructor(private readonly deps: ProviderWatcherDeps) {}

  /** Watches until `signal` aborts, from `resumeFrom` (the last attempt's cursor) if given; returns the cursor. */
  async run(resumeFrom: string | undefined, signal: AbortSignal): Promise<string | undefined> {
    // The checks end with the watch, also when it fails.
    const ended = new AbortController();
    const checking = this.checkLoop(AbortSignal.any([signal, ended.signal]));
    try {
      let from = resumeFrom;
      while (!signal.aborted) {
        const listing = await this.deps.feed.list(signal);
        await this.resync(listing);
        from ??= listing.cursor;
        this.moveTo(from);
        try {
          await this.deps.feed.follow(
            from,
            (change) => {
              this.moveTo(change.cursor);
              this.enqueue(change.instance_id, change.reason);
            },
            signal,
          );
        } catch (err) {
          if (!(err instanceof CursorExpired)) throw err;
          from = undefined;
        }
      }
    } finally {
      ended.abort();
      this.wake?.();
      await checking;
    }
    return this.cursor;
  }

  /** The instances whose listing contradicts the read model, or that a command is moving: each is checked. */
  private async resync(listing: ManagedListing): Promise<void> {
    for (const row of await this.deps.readModel.live(this.deps.providerName)) {
      const glance = listing.instances.get(row.id);
      const observed: InstanceState =
        glance === undefined ? 'destroyed' : glance === 'running' ? 'running' : 'stopped';
      if (isSettling(row.state) || isDrift(row.state, observed)) this.enqueue(row.id, 'resync');
    }
  }

  private moveTo(cursor: string): void {
    this.cursor = cursor;
    this.deps.progress(cursor);
  }

  private enqueue(instanceId: string, reason: string, polls = 0): void {
    if (!this.pending.has(instanceId)) this.pending.set(instanceId, { reason, polls });
    this.wake?.();
  }

  private async checkLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const next = this.pending.entries().next();
      if (next.done) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      const [instanceId, item] = next.value;
      this.pending.delete(instanceId);
      try {
        await this.check(instanceId, item.reason, item.polls, signal);
      } catch (err) {
        if (!signal.aborted) this.deps.warn(err, `drift check of ${instanceId} failed`);
      }
    }
  }

  private async check(instanceId: string, reason: string, polls: number, signal: AbortSignal): Promise<void> {
    const row = await this.deps.readModel.get(instanceId);
    if (!row || row.provider_name !== this.deps.providerName || row.state === 'destroyed') return;
    if (isSettling(row.state)) {
      if (polls < SETTLE_POLLS) {
        setTimeout(() => this.enqueue(instanceId, reason, polls + 1), SETTLE_POLL_MS).unref();
      }
      return;
    }
    const status = await sourceStatus(this.deps.provider, row.source_type, instanceId, { signal });
    if (isDrift(row.state, status.state)) {
      await this.deps.notify(instanceId, { observed: status.state, reason });
    }
  }
}
