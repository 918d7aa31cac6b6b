import { Migration } from '@mikro-orm/migrations';

/**
 * Billing accounts, one per tenant, and the index the billing sweep reads instances through.
 * The checks keep the invariants the sweep relies on: `past_due_since` is set exactly while past due.
 */
export class Migration20261126020000_billing extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "billing_accounts" (
        "tenant_id" text primary key,
        "status" text not null,
        "past_due_since" timestamptz(6) null,
        "grace_period_seconds" integer not null,
        "updated_at" timestamptz(6) not null default now(),
        constraint "billing_accounts_status_check" check ("status" in ('active', 'past_due')),
        constraint "billing_accounts_past_due_since_check"
          check (("status" = 'past_due') = ("past_due_since" is not null)),
        constraint "billing_accounts_grace_period_check" check ("grace_period_seconds" >= 0)
      );`);
    this.addSql(
      `create index "billing_accounts_past_due" on "billing_accounts" ("past_due_since") where "status" = 'past_due';`,
    );
    // The sweep lifts billing suspensions by reading suspended instances per tenant.
    this.addSql(
      `create index "instances_suspended" on "instances" ("tenant_id", "id") where "suspend_reason" is not null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists "instances_suspended";');
    this.addSql('drop table if exists "billing_accounts";');
  }
}
