import type { ServiceSpec } from './instance.ts';

/**
 * Orders a group so that a service comes after the services of the same group it depends on. Stable: among the
 * services whose dependencies are met, the one given first goes first. Dependencies outside the group are ignored
 * (the groups already run init → main → sidecar); services caught in a cycle keep their given order at the end.
 */
export function orderByDependencies(services: readonly ServiceSpec[]): ServiceSpec[] {
  const names = new Set(services.map((s) => s.name));
  const placed = new Set<string>();
  const pending = [...services];
  const out: ServiceSpec[] = [];
  while (pending.length > 0) {
    const index = pending.findIndex((s) =>
      (s.depends_on ?? []).every((dep) => dep === s.name || !names.has(dep) || placed.has(dep)),
    );
    if (index < 0) {
      out.push(...pending);
      break;
    }
    const [next] = pending.splice(index, 1);
    if (next) {
      out.push(next);
      placed.add(next.name);
    }
  }
  return out;
}
