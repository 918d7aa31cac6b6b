/**
 * A provider's own feed of changes to the objects it manages (Docker's `/events`, Kubernetes watches), which the
 * provider watcher follows (activities/provider-watch-activities.ts) instead of asking every instance in turn.
 */
export interface ChangeFeed {
  /**
   * Every managed instance the provider holds now, in one call, each with what its objects say at a glance,
   * and the cursor from which `follow` misses nothing that happened after the listing.
   */
  list(signal: AbortSignal): Promise<ManagedListing>;
  /**
   * Reports each change to a managed object after `cursor` until `signal` aborts. Rejects when the feed breaks
   * (the engine restarted, the connection dropped) and with CursorExpired when the feed no longer reaches back
   * to `cursor`: then only a new listing closes the gap.
   */
  follow(cursor: string, onChange: (change: FeedChange) => void, signal: AbortSignal): Promise<void>;
}

/** What an instance's objects say without a closer look: every workload part running, or not. */
export type Glance = 'running' | 'not_running';

export interface ManagedListing {
  instances: Map<string, Glance>;
  cursor: string;
}

export interface FeedChange {
  instance_id: string;
  /** Where following continues from after this change. */
  cursor: string;
  /** What the feed said, for the watcher's signal (`docker die`, `pod MODIFIED`). */
  reason: string;
}

/** The feed's cursor is older than the feed reaches back (Kubernetes' 410 Gone). */
export class CursorExpired extends Error {
  override readonly name = 'CursorExpired';
}
