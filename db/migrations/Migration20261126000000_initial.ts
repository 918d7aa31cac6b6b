import { Migration } from '@mikro-orm/migrations';

export class Migration20261126000000_initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "instances" (
        "id" text primary key,
        "tenant_id" text not null,
        "name" text not null,
        "slug" text not null,
        "datacenter_id" text null,
        "provider_name" text not null,
        "provider_ref" text not null default '',
        "service_refs" jsonb null,
        "region" text not null default '',
        "state" text not null,
        "kind" text not null,
        "services" jsonb null,
        "source" jsonb null,
        "endpoints" jsonb null,
        "labels" jsonb null,
        "current_release" text null,
        "suspended_at" timestamptz null,
        "suspend_reason" text null,
        "error" text null,
        "seq" integer not null,
        "created_at" timestamptz(6) not null,
        "updated_at" timestamptz(6) not null
      );`);
    // A destroyed instance keeps its row as a tombstone but gives its slug back.
    this.addSql(
      `create unique index "instances_tenant_slug_unique" on "instances" ("tenant_id", "slug") where "state" <> 'destroyed';`,
    );
    this.addSql(
      `create index "instances_tenant_newest" on "instances" ("tenant_id", "created_at" desc, "id" desc);`,
    );
    this.addSql(`create index "instances_tenant_state" on "instances" ("tenant_id", "state");`);
    this.addSql(`create index "instances_labels" on "instances" using gin ("labels" jsonb_path_ops);`);

    this.addSql(`
      create table "instance_events" (
        "id" text primary key,
        "instance_id" text not null,
        "tenant_id" text not null,
        "seq" integer not null,
        "type" text not null,
        "payload" jsonb null,
        "occurred_at" timestamptz(6) not null
      );`);
    this.addSql(
      `create unique index "instance_events_instance_seq_unique" on "instance_events" ("instance_id", "seq");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists "instance_events";');
    this.addSql('drop table if exists "instances";');
  }
}
