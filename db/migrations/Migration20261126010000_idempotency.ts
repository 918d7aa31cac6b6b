import { Migration } from '@mikro-orm/migrations';

/**
 * Idempotency keys of the API: one row per (tenant, key). `status` is null while the first request is being
 * processed (`locked_until` bounds how long another request waits for it); then the stored response is
 * replayed to every repeat until `expires_at`.
 */
export class Migration20261126010000_idempotency extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "idempotency_keys" (
        "tenant_id" text not null,
        "key" text not null,
        "fingerprint" text not null,
        "method" text not null,
        "path" text not null,
        "resource_id" text null,
        "status" integer null,
        "headers" jsonb null,
        "body" text null,
        "locked_until" timestamptz(6) not null,
        "created_at" timestamptz(6) not null default now(),
        "expires_at" timestamptz(6) not null,
        primary key ("tenant_id", "key")
      );`);
    this.addSql(`create index "idempotency_keys_expires_at" on "idempotency_keys" ("expires_at");`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists "idempotency_keys";');
  }
}
