import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { CtrlplaneError } from '../../domain/errors.ts';
import { EXEC_LIMITS } from '../../domain/schemas/exec-command.ts';
import { isServicesSource } from '../../domain/sources/deployment-source.ts';
import { execProblem } from '../../providers/operation-support.ts';
import { type ExecResult, PermanentProviderError, type Provider } from '../../providers/provider.ts';
import { callerOf } from '../auth.ts';
import { RetryableError } from '../problem.ts';
import { execRequestSchema } from '../schemas/instance-exec.ts';
import { parseInput } from '../validate.ts';
import type { RouteRegistrar } from './instances.ts';
import { type InstanceRoutesDeps, loadOwned, requestSignal } from './route-context.ts';

/**
 * POST /v1/instances/:id/exec: a command in one of the caller's own running instances, API → provider as logs
 * are (the workflow is not in the way of an answer), then recorded through the workflow as an event: who, which
 * command, how it ended; never the output. The instance is found in the caller's tenant only, and the provider
 * is given the instance id, never a container or pod name from the request.
 */
export function execRoutes(deps: InstanceRoutesDeps, route: RouteRegistrar): void {
  route('post', '/:id/exec', async (req: Request, res: Response) => {
    const body = parseInput(execRequestSchema, req.body, 'body');
    const row = await loadOwned(deps.store, req);
    if (!isServicesSource(row.source?.type)) {
      throw new CtrlplaneError(
        'invalid_request',
        `exec applies to instances of a services source; this one is deployed from a ${row.source?.type} source`,
      );
    }
    if (row.state !== 'running' || row.suspend_reason) {
      throw new CtrlplaneError(
        'invalid_state',
        `exec is not allowed while the instance is ${row.suspend_reason ? 'suspended' : row.state}; it needs a running instance`,
      );
    }
    if (body.service !== undefined && row.services && !row.services.some((s) => s.name === body.service)) {
      throw new CtrlplaneError('invalid_request', `service: the instance has no service ${body.service}`, [
        { field: 'service', message: `the instance has no service ${body.service}` },
      ]);
    }
    const provider = providerFor(deps, row.provider_name);
    const problem = execProblem(provider);
    if (problem || !provider.exec)
      throw new CtrlplaneError('not_supported', problem ?? 'exec is not supported');

    let result: ExecResult;
    try {
      result = await provider.exec(
        row.id,
        {
          ...(body.service ? { service_name: body.service } : {}),
          argv: body.command,
          ...(body.stdin !== undefined ? { stdin: body.stdin } : {}),
          timeout_ms: (body.timeout ?? EXEC_LIMITS.defaultTimeoutSeconds) * 1000,
          max_output_bytes: EXEC_LIMITS.maxOutputBytes,
        },
        { signal: requestSignal(res, deps.shutdown) },
      );
    } catch (err) {
      throw execError(err);
    }
    await recordExec(deps, row.id, callerOf(req).sub, body.command, result);
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      exit_code: result.exit_code,
      stdout: result.stdout,
      stderr: result.stderr,
      stdout_truncated: result.stdout_truncated,
      stderr_truncated: result.stderr_truncated,
      timed_out: result.timed_out,
      service: result.service,
    });
  });
}

/**
 * The workflow records the exec as `instance.exec`, in order with the instance's other events. The command has
 * run by now: a record the workflow service does not take is logged (with who and what) rather than hiding the
 * command's answer from the caller who ran it.
 */
async function recordExec(
  deps: InstanceRoutesDeps,
  instanceId: string,
  actor: string,
  argv: string[],
  result: ExecResult,
): Promise<void> {
  const record = {
    service: result.service,
    argv,
    exit_code: result.exit_code,
    timed_out: result.timed_out,
  };
  try {
    await deps.commands.send('record_exec', instanceId, {
      request_id: `exec:${randomUUID()}`,
      actor,
      ...record,
    });
  } catch (err) {
    deps.logger.error({ err, instance_id: instanceId, actor, ...record }, 'exec ran but was not recorded');
  }
}

function providerFor(deps: InstanceRoutesDeps, name: string): Provider {
  if (!deps.providers.has(name)) {
    throw new CtrlplaneError(
      'provider_unavailable',
      `provider ${name} of this instance is not available in this API`,
    );
  }
  return deps.providers.get(name);
}

function execError(err: unknown): Error {
  if (err instanceof CtrlplaneError) return err;
  if (err instanceof PermanentProviderError) {
    if (err.code === 'invalid_request') {
      return new CtrlplaneError('invalid_request', err.message, [{ field: 'service', message: err.message }]);
    }
    return new CtrlplaneError(err.code, `exec: ${err.message}`);
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new RetryableError('provider_unavailable', `exec: the provider did not answer: ${detail}`, 5);
}
