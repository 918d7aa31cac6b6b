import { Migration } from '@mikro-orm/migrations';

/**
 * One-time tickets for the SSE log stream (EventSource cannot send an Authorization header). Only the
 * ticket's SHA-256 is stored; a ticket opens one stream of one instance, once, until `expires_at`.
 */
export class Migration20261201000000_stream_tickets extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "stream_tickets" (
        "ticket_hash" text primary key,
        "tenant_id" text not null,
        "instance_id" text not null,
        "sub" text not null,
        "expires_at" timestamptz(6) not null
      );`);
    this.addSql(`create index "stream_tickets_expires_at" on "stream_tickets" ("expires_at");`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists "stream_tickets";');
  }
}
