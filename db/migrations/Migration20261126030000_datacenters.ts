import { Migration } from '@mikro-orm/migrations';

/** Datacenters of a tenant: a provider and a region where instances are placed, with a status. */
export class Migration20261126030000_datacenters extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "datacenters" (
        "id" text primary key,
        "tenant_id" text not null,
        "name" text not null,
        "slug" text not null,
        "provider_name" text not null,
        "region" text not null default '',
        "status" text not null,
        "created_at" timestamptz(6) not null,
        "updated_at" timestamptz(6) not null,
        constraint "datacenters_status_check"
          check ("status" in ('active', 'maintenance', 'draining', 'offline'))
      );`);
    // The slug is unique per tenant; the API lists a tenant's datacenters by id (TypeIDs sort by creation).
    this.addSql('create unique index "datacenters_tenant_slug" on "datacenters" ("tenant_id", "slug");');
    this.addSql('create index "datacenters_tenant_id" on "datacenters" ("tenant_id", "id");');
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists "datacenters";');
  }
}
