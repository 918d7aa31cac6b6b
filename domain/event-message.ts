/** A lifecycle event as the event stream and webhook deliveries show it. */
export interface EventMessage {
  /** The event's id: the same in the stream, in webhook deliveries and in GET /v1/instances/:id/events. */
  id: string;
  type: string;
  tenant_id: string;
  instance_id: string;
  /** The event's place among its instance's events. */
  seq: number;
  occurred_at: string;
  payload: Record<string, unknown> | null;
}

export function eventMessage(event: {
  id: string;
  type: string;
  tenant_id: string;
  instance_id: string;
  seq: number;
  occurred_at: Date;
  payload: Record<string, unknown> | null;
}): EventMessage {
  return {
    id: event.id,
    type: event.type,
    tenant_id: event.tenant_id,
    instance_id: event.instance_id,
    seq: event.seq,
    occurred_at: new Date(event.occurred_at).toISOString(),
    payload: event.payload ?? null,
  };
}
