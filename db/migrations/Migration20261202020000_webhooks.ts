import { Migration } from '@mikro-orm/migrations';

/**
 * The tenant event stream and webhooks.
 *
 * instance_events gets a stream position: the writing transaction's id (txid) and a sequence number (position).
 * A position alone is assigned at insert but becomes visible at commit, so a later position can be read before
 * an earlier one. Readers serve only rows whose txid is below the oldest transaction still in flight
 * (pg_snapshot_xmin): those rows are final, and ordered by (txid, position) every row that becomes visible later
 * sorts after them.
 */
export class Migration20261202020000_webhooks extends Migration {
  override async up(): Promise<void> {
    // Rows written before this migration share its txid; their positions follow the order they occurred in.
    this.addSql(
      `alter table "instance_events" add column "txid" xid8 not null default pg_current_xact_id(), add column "position" bigint null;`,
    );
    this.addSql(`create sequence "instance_events_position_seq" owned by "instance_events"."position";`);
    this.addSql(`
      update "instance_events" e set "position" = o.n
        from (select "id", row_number() over (order by "occurred_at", "instance_id", "seq") as n
                from "instance_events") o
       where o."id" = e."id";`);
    this.addSql(
      `select setval('instance_events_position_seq', coalesce((select max("position") from "instance_events"), 0) + 1, false);`,
    );
    this.addSql(
      `alter table "instance_events" alter column "position" set default nextval('instance_events_position_seq'), alter column "position" set not null;`,
    );
    this.addSql(`create index "instance_events_stream" on "instance_events" ("txid", "position");`);
    this.addSql(
      `create index "instance_events_tenant_stream" on "instance_events" ("tenant_id", "txid", "position");`,
    );

    this.addSql(`
      create table "webhooks" (
        "id" text primary key,
        "tenant_id" text not null,
        "url" text not null,
        "event_types" text[] not null,
        "enabled" boolean not null,
        "secret" text not null,
        "cursor_txid" xid8 not null,
        "cursor_position" bigint not null,
        "created_at" timestamptz(6) not null,
        "updated_at" timestamptz(6) not null
      );`);
    this.addSql(`create index "webhooks_tenant" on "webhooks" ("tenant_id", "created_at", "id");`);

    this.addSql(`
      create table "webhook_deliveries" (
        "webhook_id" text not null references "webhooks" ("id") on delete cascade,
        "event_id" text not null,
        "instance_id" text not null,
        "event_type" text not null,
        "status" text not null,
        "attempts" integer not null default 0,
        "last_response_code" integer null,
        "last_error" text null,
        "created_at" timestamptz(6) not null,
        "last_attempt_at" timestamptz(6) null,
        "delivered_at" timestamptz(6) null,
        "txid" xid8 not null,
        "position" bigint not null,
        primary key ("webhook_id", "event_id")
      );`);
    this.addSql(
      `create index "webhook_deliveries_stream" on "webhook_deliveries" ("webhook_id", "txid" desc, "position" desc);`,
    );
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists "webhook_deliveries";');
    this.addSql('drop table if exists "webhooks";');
    this.addSql('drop index if exists "instance_events_tenant_stream";');
    this.addSql('drop index if exists "instance_events_stream";');
    this.addSql('alter table "instance_events" drop column "position", drop column "txid";');
  }
}
