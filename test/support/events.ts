import type { Orm } from '../../db/database.ts';

export interface StoredEvent {
  seq: number;
  type: string;
  payload: Record<string, unknown>;
}

/** The instance's lifecycle events from the outbox table, oldest first. */
export async function eventsOf(orm: Orm, instanceId: string): Promise<StoredEvent[]> {
  return orm.em
    .fork()
    .getConnection()
    .execute<StoredEvent[]>(
      'select seq, type, payload from instance_events where instance_id = ? order by seq',
      [instanceId],
    );
}

/** The events that end a command (`conclusion` set), by request id. */
export function conclusionsByRequest(events: StoredEvent[]): Map<string, StoredEvent[]> {
  const byRequest = new Map<string, StoredEvent[]>();
  for (const event of events) {
    if (!event.payload.conclusion) continue;
    const id = String(event.payload.request_id);
    byRequest.set(id, [...(byRequest.get(id) ?? []), event]);
  }
  return byRequest;
}
