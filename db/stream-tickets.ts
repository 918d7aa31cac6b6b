import { createHash, randomBytes } from 'node:crypto';
import type { Orm } from './database.ts';

/** Who a redeemed ticket was issued to: the stream runs as that caller, in that tenant. */
export interface TicketHolder {
  sub: string;
  tenant_id: string;
}

export interface IssuedTicket {
  ticket: string;
  expires_at: Date;
}

function hashOf(ticket: string): string {
  return createHash('sha256').update(ticket).digest('hex');
}

/**
 * One-time tickets for the SSE log stream, in PostgreSQL so that any API process redeems what another issued.
 * A ticket is 32 random bytes; only its hash is stored, and redeeming deletes it in the same statement, so two
 * requests with one ticket cannot both get through.
 */
export class StreamTicketStore {
  constructor(
    private readonly orm: Orm,
    private readonly ttlSeconds: number,
  ) {}

  private execute<T>(sql: string, params: unknown[]): Promise<T[]> {
    return this.orm.em.fork().getConnection().execute<T[]>(sql, params);
  }

  async issue(holder: TicketHolder, instanceId: string): Promise<IssuedTicket> {
    const ticket = randomBytes(32).toString('base64url');
    const [row] = await this.execute<{ expires_at: Date }>(
      `insert into stream_tickets (ticket_hash, tenant_id, instance_id, sub, expires_at)
       values (?, ?, ?, ?, now() + make_interval(secs => ?))
       returning expires_at`,
      [hashOf(ticket), holder.tenant_id, instanceId, holder.sub, this.ttlSeconds],
    );
    if (!row) throw new Error('stream ticket insert returned no row');
    return { ticket, expires_at: new Date(row.expires_at) };
  }

  /** The ticket's holder if it is unexpired and for this instance; it cannot be redeemed again either way. */
  async redeem(ticket: string, instanceId: string): Promise<TicketHolder | undefined> {
    const [row] = await this.execute<TicketHolder & { instance_id: string; live: boolean }>(
      `delete from stream_tickets where ticket_hash = ?
       returning sub, tenant_id, instance_id, expires_at > now() as live`,
      [hashOf(ticket)],
    );
    if (!row?.live || row.instance_id !== instanceId) return undefined;
    return { sub: row.sub, tenant_id: row.tenant_id };
  }

  async purgeExpired(): Promise<number> {
    const rows = await this.execute<{ ticket_hash: string }>(
      'delete from stream_tickets where expires_at <= now() returning ticket_hash',
      [],
    );
    return rows.length;
  }
}
