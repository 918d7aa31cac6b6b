import { Migration } from '@mikro-orm/migrations';

/** A tenant's own credentials per image registry: the Docker provider pulls the tenant's images with them. */
export class Migration20261201010000_registry_credentials extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "registry_credentials" (
        "tenant_id" text not null,
        "registry" text not null,
        "username" text not null,
        "password" text not null,
        "created_at" timestamptz(6) not null,
        "updated_at" timestamptz(6) not null,
        primary key ("tenant_id", "registry")
      );`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists "registry_credentials";');
  }
}
