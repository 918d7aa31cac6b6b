import type { RenderedSource } from './deployment-source.ts';
import { SourceError } from './errors.ts';
import type { SecretBinding } from './variables.ts';

/**
 * Where secret variables go (the Go library drops them): each binding becomes the env var
 * `env_key` of every service of a services source. Plain TS: the check runs at create time (400), the injection
 * in the provision activity only, after the secret store resolved the values.
 */

/** Refuses bindings a source cannot carry: a non-services source, or an env key a service already sets. */
export function checkSecretBindings(
  source: { type: string; services?: { name: string; env?: Record<string, string> }[] },
  bindings: readonly SecretBinding[],
): void {
  if (bindings.length === 0) return;
  if (source.type !== 'services') {
    throw new SourceError(
      'unsupported_source',
      `secret variables (${bindings.map((b) => b.var_name).join(', ')}) are only supported with a services source, not ${source.type}`,
      { field: 'variables', variable: bindings[0]!.var_name },
    );
  }
  const seen = new Map<string, string>();
  for (const binding of bindings) {
    const other = seen.get(binding.env_key);
    if (other !== undefined) {
      throw new SourceError(
        'invalid_definition',
        `secret variables ${JSON.stringify(other)} and ${JSON.stringify(binding.var_name)} both map to the env var ${binding.env_key}`,
        { field: 'variables', variable: binding.var_name },
      );
    }
    seen.set(binding.env_key, binding.var_name);
    for (const svc of source.services ?? []) {
      if (svc.env && Object.hasOwn(svc.env, binding.env_key)) {
        throw new SourceError(
          'invalid_source',
          `service ${svc.name} env ${binding.env_key} is also set by the secret variable ${JSON.stringify(binding.var_name)}`,
          { field: `service ${svc.name} env ${binding.env_key}`, variable: binding.var_name },
        );
      }
    }
  }
}

/**
 * Adds the resolved secrets (env_key → value) to the env of every service; returns a new RenderedSource and
 * leaves the input alone. Keep the result out of anything persisted: it holds secret values.
 */
export function injectSecretEnv(
  rendered: RenderedSource,
  bindings: readonly SecretBinding[],
  values: Readonly<Record<string, string>>,
): RenderedSource {
  if (bindings.length === 0) return rendered;
  checkSecretBindings(rendered, bindings);
  const secretEnv: Record<string, string> = {};
  for (const binding of bindings) {
    const value = values[binding.env_key];
    if (value === undefined) {
      throw new SourceError(
        'invalid_value',
        `secret variable ${JSON.stringify(binding.var_name)} has no resolved value`,
        {
          variable: binding.var_name,
        },
      );
    }
    secretEnv[binding.env_key] = value;
  }
  return {
    ...rendered,
    services: (rendered.services ?? []).map((svc) => ({ ...svc, env: { ...svc.env, ...secretEnv } })),
  };
}
