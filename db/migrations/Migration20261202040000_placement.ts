import { Migration } from '@mikro-orm/migrations';

/** Why placement put an instance on its provider (a create that named none). */
export class Migration20261202040000_placement extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table "instances" add column "placement" text null;');
  }

  override async down(): Promise<void> {
    this.addSql('alter table "instances" drop column if exists "placement";');
  }
}
