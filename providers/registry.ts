import { CtrlplaneError } from '../domain/errors.ts';
import type { Provider } from './provider.ts';

/** Providers by name, built from configuration at start-up. */
export class ProviderRegistry {
  private readonly providers = new Map<string, Provider>();

  constructor(readonly defaultName: string) {}

  register(name: string, provider: Provider): this {
    this.providers.set(name, provider);
    return this;
  }

  has(name: string): boolean {
    return this.providers.has(name);
  }

  get(name: string): Provider {
    const provider = this.providers.get(name);
    if (!provider) throw new CtrlplaneError('provider_not_found', `provider not registered: ${name}`);
    return provider;
  }

  names(): string[] {
    return [...this.providers.keys()];
  }
}
