import type { Client } from '@temporalio/client';
import { BillingStore } from '../db/billing-store.ts';
import type { Orm } from '../db/database.ts';
import { EventStream } from '../db/event-stream.ts';
import { ReadModelProjection } from '../db/read-model-projection.ts';
import { ReleaseStore } from '../db/release-store.ts';
import { WebhookStore } from '../db/webhook-store.ts';
import type { KustomizeOptions } from '../providers/kustomize.ts';
import type { ProviderRegistry } from '../providers/registry.ts';
import type { SecretStore } from '../providers/secret-store.ts';
import type { HostLookup } from '../webhooks/address.ts';
import { defaultHostLookup } from '../webhooks/post.ts';
import { WebhookSecretCipher } from '../webhooks/secret-cipher.ts';
import { type BillingActivities, createBillingActivities } from './billing-activities.ts';
import type { InstanceActivities } from './instance-activity-types.ts';
import { createProviderActivities } from './provider-activities.ts';
import { createProviderWatchActivities, type ProviderWatchActivities } from './provider-watch-activities.ts';
import { createReadModelActivities } from './read-model-activities.ts';
import { createWebhookActivities, type WebhookActivities } from './webhook-activities.ts';

export interface ActivityDependencies {
  providers: ProviderRegistry;
  orm: Orm;
  /** The worker's Temporal client: the billing sweep sends commands to instance workflows with it. */
  client?: Client;
  /** Where secret variables are resolved at provision time (CTRLPLANE_SECRET_STORE). */
  secrets: SecretStore;
  /** How kustomize sources are built (CTRLPLANE_KUSTOMIZE_BIN; default: kustomize or kubectl on PATH). */
  kustomize?: KustomizeOptions;
  /**
   * Webhook deliveries: CTRLPLANE_WEBHOOK_ALLOW_PRIVATE, CTRLPLANE_WEBHOOK_TIMEOUT_MS, CTRLPLANE_WEBHOOK_SECRET_KEY
   * (default: private addresses refused, 10 s, no key).
   */
  webhooks?: { allowPrivate: boolean; timeoutMs: number; secretKey?: string; lookup?: HostLookup };
}

export function createActivities(
  deps: ActivityDependencies,
): InstanceActivities & BillingActivities & WebhookActivities & Partial<ProviderWatchActivities> {
  return {
    ...createProviderActivities(deps.providers, deps.secrets, deps.kustomize),
    // The watchers signal instance workflows: only a worker with a client runs them.
    ...(deps.client
      ? createProviderWatchActivities({ providers: deps.providers, orm: deps.orm, client: deps.client })
      : {}),
    ...createReadModelActivities(new ReadModelProjection(deps.orm), new ReleaseStore(deps.orm)),
    ...createBillingActivities({ store: new BillingStore(deps.orm), client: deps.client }),
    ...createWebhookActivities({
      webhooks: new WebhookStore(deps.orm, new WebhookSecretCipher(deps.webhooks?.secretKey)),
      stream: new EventStream(deps.orm),
      allowPrivate: deps.webhooks?.allowPrivate ?? false,
      timeoutMs: deps.webhooks?.timeoutMs ?? 10_000,
      lookup: deps.webhooks?.lookup ?? defaultHostLookup,
    }),
  };
}
