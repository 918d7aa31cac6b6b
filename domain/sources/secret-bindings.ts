import type { Definition, SecretBinding } from './variables.ts';

/**
 * The bindings of an instance's secret variables: which env var each lands in and which key of the tenant's
 * secrets fills it. Derived from the definitions alone (no value), so the workflow can hand them to every
 * provider activity, which resolves them to redact the values from what the provider reports. Plain TS, no
 * other dependency: the workflow bundle imports it.
 */

/** The env var a secret variable lands in: upper case, `-` → `_`. */
export function envKeyOf(name: string): string {
  return name.replaceAll('-', '_').toUpperCase();
}

export function secretBindingOf(def: Definition): SecretBinding | undefined {
  if (def.type !== 'secret' || typeof def.secret?.key !== 'string') return undefined;
  return { var_name: def.name, env_key: envKeyOf(def.name), ref: def.secret.key };
}

export function secretBindingsOf(defs: readonly Definition[] | undefined): SecretBinding[] {
  return (defs ?? []).flatMap((def) => secretBindingOf(def) ?? []);
}
