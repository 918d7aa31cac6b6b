import { Migration } from '@mikro-orm/migrations';

/** Releases: each change of what an instance runs, numbered per instance; only status and error ever change. */
export class Migration20261202010000_releases extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "releases" (
        "id" text primary key,
        "instance_id" text not null,
        "tenant_id" text not null,
        "number" integer not null,
        "spec" jsonb not null,
        "status" text not null,
        "error" text null,
        "description" text not null,
        "request_id" text not null,
        "actor" text null,
        "rollback_of" integer null,
        "status_seq" integer not null,
        "created_at" timestamptz(6) not null,
        constraint "releases_instance_number_unique" unique ("instance_id", "number")
      );`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists "releases";');
  }
}
