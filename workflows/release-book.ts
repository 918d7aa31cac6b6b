import { uuid4 } from '@temporalio/workflow';
import type { Release, ReleaseSpec } from '../domain/release.ts';
import { releaseIdFromUuid } from '../domain/release.ts';
import type { Requester } from './work-items.ts';

/** The release book's memory, carried across continue-as-new. */
export interface ReleaseBookState {
  /** The highest number given so far. */
  last_number: number;
  /** The release the instance names as current_release. */
  current?: Release;
  /** The last release that started successfully: where a failed deploy goes back to. */
  deployed?: Release;
}

/**
 * The instance's releases as the workflow keeps them: numbers them, moves the current one's status, and stages
 * every release made or moved for the next recorded transition, which writes them in its transaction (the
 * projection's upsert by id makes a retried write a no-op). Ids come from the workflow's deterministic uuid4,
 * so a replay or a retried activity names the same release.
 */
export class ReleaseBook {
  private lastNumber: number;
  private currentRelease: Release | undefined;
  private deployedRelease: Release | undefined;
  private readonly staged = new Map<string, Release>();

  constructor(state: ReleaseBookState | undefined) {
    this.lastNumber = state?.last_number ?? 0;
    this.currentRelease = state?.current;
    this.deployedRelease = state?.deployed;
  }

  get current(): Release | undefined {
    return this.currentRelease;
  }

  get deployed(): Release | undefined {
    return this.deployedRelease;
  }

  /** A new release of `spec`, pending until its services have started. */
  create(
    owner: { instance_id: string; tenant_id: string },
    spec: ReleaseSpec,
    by: Pick<Requester, 'request_id' | 'actor'>,
    description: string,
    rollbackOf?: number,
  ): Release {
    this.lastNumber += 1;
    const release: Release = {
      id: releaseIdFromUuid(uuid4()),
      ...owner,
      number: this.lastNumber,
      spec,
      status: 'pending',
      description,
      request_id: by.request_id,
      ...(by.actor ? { actor: by.actor } : {}),
      ...(rollbackOf !== undefined ? { rollback_of: rollbackOf } : {}),
      created_at: new Date().toISOString(),
    };
    this.currentRelease = release;
    this.stage(release);
    return release;
  }

  /** The current release was provisioned: one that had failed is being tried again (a start after a failed create). */
  markProvisioned(): void {
    const current = this.currentRelease;
    if (current?.status !== 'failed') return;
    const { error: _error, ...rest } = current;
    this.currentRelease = { ...rest, status: 'pending' };
    this.stage(this.currentRelease);
  }

  /** The current release's services started: a pending one is deployed (a failed one stays failed). */
  markDeployed(): void {
    const current = this.currentRelease;
    if (!current || current.status === 'failed') return;
    if (current.status === 'pending') {
      this.currentRelease = { ...current, status: 'deployed' };
      this.stage(this.currentRelease);
    }
    this.deployedRelease = this.currentRelease;
  }

  /** The current release could not be deployed, for `error`. */
  markFailed(error: string): void {
    const current = this.currentRelease;
    if (!current || current.status === 'failed') return;
    this.currentRelease = { ...current, status: 'failed', error };
    this.stage(this.currentRelease);
  }

  /** Back to an earlier release (it keeps its row: nothing to write). */
  revertTo(release: Release): void {
    this.currentRelease = release;
  }

  /** The releases to write with the next transition; taken once. */
  takeStaged(): Release[] {
    const staged = [...this.staged.values()];
    this.staged.clear();
    return staged;
  }

  state(): ReleaseBookState | undefined {
    if (this.lastNumber === 0) return undefined;
    return {
      last_number: this.lastNumber,
      ...(this.currentRelease ? { current: this.currentRelease } : {}),
      ...(this.deployedRelease ? { deployed: this.deployedRelease } : {}),
    };
  }

  private stage(release: Release): void {
    this.staged.set(release.id, release);
  }

  /** For the Temporal UI's "current details": which release is current, and how it stands. */
  currentDetails(): string | undefined {
    const r = this.currentRelease;
    if (!r) return undefined;
    const error = r.error ? `: ${r.error}` : '';
    return `**Release v${r.number}** (${r.id}): ${r.description}, ${r.status}${error}`;
  }
}
