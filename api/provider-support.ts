import type { InstanceRecord } from '../db/entities/instance-record.ts';
import { CtrlplaneError } from '../domain/errors.ts';
import { restartServiceProblem, stopOptionsProblem } from '../providers/operation-support.ts';
import type { StopOptions } from '../providers/provider.ts';
import type { ProviderRegistry } from '../providers/registry.ts';

/**
 * 422 not_supported, naming the provider, before a command the instance's provider cannot carry out is sent
 * (the activity refuses it again). A provider this API does not hold is left to the worker to judge.
 */

export function requireStopOptions(
  providers: ProviderRegistry,
  row: InstanceRecord,
  options: StopOptions,
): void {
  if (!providers.has(row.provider_name)) return;
  const problem = stopOptionsProblem(providers.get(row.provider_name), options);
  if (problem) {
    throw new CtrlplaneError('not_supported', problem.message, [
      { field: problem.field, message: problem.message },
    ]);
  }
}

export function requireRestartService(providers: ProviderRegistry, row: InstanceRecord): void {
  if (!providers.has(row.provider_name)) return;
  const problem = restartServiceProblem(providers.get(row.provider_name));
  if (problem) throw new CtrlplaneError('not_supported', problem);
}
