import type { ServiceSpec } from '../../domain/instance.ts';
import { orderByDependencies } from '../../domain/service-order.ts';
import { roleOf } from './labels.ts';

export interface OrderedServices {
  inits: ServiceSpec[];
  mains: ServiceSpec[];
  sidecars: ServiceSpec[];
}

/** Splits services into inits, mains (role main or empty) and sidecars, each group ordered by depends_on. */
export function orderServices(services: readonly ServiceSpec[]): OrderedServices {
  return {
    inits: orderByDependencies(services.filter((s) => roleOf(s) === 'init')),
    mains: orderByDependencies(services.filter((s) => roleOf(s) === 'main')),
    sidecars: orderByDependencies(services.filter((s) => roleOf(s) === 'sidecar')),
  };
}

export { orderByDependencies };
