import type { Orm } from '../../db/database.ts';
import {
  type ProjectedTransition,
  projectTransition,
  ReadModelProjection,
} from '../../db/read-model-projection.ts';
import { newInstanceId } from '../../domain/ids.ts';
import { type Instance, slugify } from '../../domain/instance.ts';

/**
 * Lifecycle events written as the instance workflows write them (ReadModelProjection: the row and its event in
 * one transaction), for tests whose subject is what reads the outbox (the event stream, webhooks), not a provider.
 */
export class OutboxWriter {
  private readonly seqs = new Map<string, number>();

  constructor(
    private readonly orm: Orm,
    readonly tenantId: string,
  ) {}

  newInstance(): string {
    const id = newInstanceId();
    this.seqs.set(id, 0);
    return id;
  }

  /** The instance's next transition with an event of this type. */
  transition(instanceId: string, type: string): ProjectedTransition {
    const seq = (this.seqs.get(instanceId) ?? 0) + 1;
    this.seqs.set(instanceId, seq);
    const now = new Date().toISOString();
    const instance: Instance = {
      id: instanceId,
      tenant_id: this.tenantId,
      name: `outbox-${instanceId.slice(-8)}`,
      slug: slugify(`outbox-${instanceId.slice(-8)}`),
      created_at: now,
      updated_at: now,
      provider_name: 'docker',
      provider_ref: '',
      region: '',
      state: 'running',
      kind: 'deployment',
      source: { type: 'services', services: [] },
      services: [],
    };
    return { instance, seq, event: { type, payload: { test_seq: seq } } };
  }

  /** Writes the event and commits. */
  async record(instanceId: string, type: string): Promise<void> {
    await new ReadModelProjection(this.orm).record(this.transition(instanceId, type));
  }

  /** Writes the event in a transaction that stays open until `commit` is called. */
  async recordHeld(instanceId: string, type: string): Promise<{ commit(): Promise<void> }> {
    const transition = this.transition(instanceId, type);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let written!: () => void;
    const wrote = new Promise<void>((resolve) => {
      written = resolve;
    });
    const done = this.orm.em.fork().transactional(async (em) => {
      await projectTransition(em, transition);
      written();
      await gate;
    });
    await Promise.race([wrote, done]);
    return {
      async commit() {
        release();
        await done;
      },
    };
  }
}
