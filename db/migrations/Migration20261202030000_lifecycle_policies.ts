import { Migration } from '@mikro-orm/migrations';

/** Lifecycle policies on the instance row, the action they take next, and the times they count from. */
export class Migration20261202030000_lifecycle_policies extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      alter table "instances"
        add column "auto_stop" jsonb null,
        add column "auto_delete" jsonb null,
        add column "expires_at" timestamptz null,
        add column "schedule" jsonb null,
        add column "next_auto_action" jsonb null,
        add column "last_started_at" timestamptz null,
        add column "stopped_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`
      alter table "instances"
        drop column if exists "auto_stop",
        drop column if exists "auto_delete",
        drop column if exists "expires_at",
        drop column if exists "schedule",
        drop column if exists "next_auto_action",
        drop column if exists "last_started_at",
        drop column if exists "stopped_at";`);
  }
}
