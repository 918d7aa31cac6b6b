import { CtrlplaneError } from '../domain/errors.ts';
import type { Provider } from './provider.ts';

/** What placement counts a provider of the fleet against (CTRLPLANE_PROVIDERS_FILE). */
export interface ProviderCapacityLimits {
  instances: number;
  memory_mb: number;
}

/** How a registered provider is reached and placed on, besides the provider itself. */
export interface ProviderSite {
  /** The task queue its calls go to: its agent's; undefined: the shared worker's queue. */
  taskQueue?: string;
  /** Placement's limits; undefined outside a fleet file (such a provider is never placed on automatically). */
  capacity?: ProviderCapacityLimits;
  labels: Readonly<Record<string, string>>;
}

interface Registered {
  provider: Provider;
  site: ProviderSite;
}

/** Providers by name, built from configuration at start-up. */
export class ProviderRegistry {
  private readonly providers = new Map<string, Registered>();

  /** `defaultName` undefined: creates naming no provider are placed by capacity (api/placement-rules.ts). */
  constructor(readonly defaultName: string | undefined) {}

  register(name: string, provider: Provider, site?: ProviderSite): this {
    this.providers.set(name, {
      provider,
      site: site ?? this.providers.get(name)?.site ?? { labels: {} },
    });
    return this;
  }

  has(name: string): boolean {
    return this.providers.has(name);
  }

  get(name: string): Provider {
    return this.entry(name).provider;
  }

  site(name: string): ProviderSite {
    return this.entry(name).site;
  }

  names(): string[] {
    return [...this.providers.keys()];
  }

  private entry(name: string): Registered {
    const entry = this.providers.get(name);
    if (!entry) throw new CtrlplaneError('provider_not_found', `provider not registered: ${name}`);
    return entry;
  }
}
