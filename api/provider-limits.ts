import { CtrlplaneError, type FieldIssue } from '../domain/errors.ts';
import type { ResourceSpec, ServiceSpec } from '../domain/instance.ts';
import type { Provider, SpecProblem } from '../providers/provider.ts';

/**
 * The provider's operator limits (e.g. the Docker ceilings, host port range and volume sizes), checked before
 * anything is written: a spec that asks for more is a 400 naming each field, as `services[0].resources.memory_mb`.
 */
export function checkServiceLimits(
  provider: Provider,
  services: readonly ServiceSpec[] | null | undefined,
  field: string,
): void {
  if (!services || !provider.specProblems) return;
  refuse(provider.specProblems(services), field);
}

/** The same for a scale's resources (fields `memory_mb`, `cpu_millis` of the body). */
export function checkScaleLimits(provider: Provider, resources: Partial<ResourceSpec>): void {
  if (!provider.resourceProblems) return;
  refuse(provider.resourceProblems(resources), '');
}

function refuse(problems: SpecProblem[], field: string): void {
  if (problems.length === 0) return;
  const issues: FieldIssue[] = problems.map((p) => ({ field: fieldName(field, p.path), message: p.message }));
  const first = issues[0] as FieldIssue;
  throw new CtrlplaneError('invalid_request', `${first.field}: ${first.message}`, issues);
}

function fieldName(prefix: string, path: readonly (string | number)[]): string {
  let name = prefix;
  for (const part of path) name += typeof part === 'number' ? `[${part}]` : name === '' ? part : `.${part}`;
  return name;
}
