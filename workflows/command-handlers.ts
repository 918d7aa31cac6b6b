import { patched } from '@temporalio/workflow';
import { runStateOf } from '../domain/command-rules.ts';
import type { CommandArgs, CommandName, CommandOf } from '../domain/commands.ts';
import { mainService, type ResourceSpec, slugify } from '../domain/instance.ts';
import type { Release } from '../domain/release.ts';
import type { StopOptions } from '../providers/provider.ts';
import type { InstanceLifecycle } from './instance-lifecycle.ts';
import { EXEC_EVENT, ROLLED_BACK_EVENT, SERVICE_RESTARTED_EVENT } from './lifecycle-events.ts';
import { applyPolicyChanges } from './lifecycle-policy-changes.ts';
import { deployRelease } from './release-deploy.ts';
import type { Outcome, Requester } from './work-items.ts';

/** Patch: restart uses the provider's restart (rolling on Kubernetes) instead of a stop and a start. */
const RESTART_THROUGH_PROVIDER = 'restart-through-provider';
/** Patch: starting an instance whose provision failed provisions it first (it used to start nothing). */
const PROVISION_BEFORE_FIRST_START = 'provision-before-first-start';

/**
 * What each lifecycle command does, once the rules (domain/command-rules.ts) have accepted it: the provider
 * calls, and the states and events it records. Each handler ends with exactly one concluding event.
 */
type CommandHandler<N extends CommandName> = (
  lifecycle: InstanceLifecycle,
  args: CommandArgs[N],
  by: Requester,
) => Promise<Outcome>;

export const COMMAND_HANDLERS: { readonly [N in CommandName]: CommandHandler<N> } = {
  async start(lifecycle, _args, by) {
    await lifecycle.recorder.transition('starting', by);
    // Nothing provisioned yet (the provision failed) or new services while stopped: provision first.
    const neverProvisioned = !lifecycle.provisioned && patched(PROVISION_BEFORE_FIRST_START);
    const failed = await deployRelease(lifecycle, by, {
      provision: lifecycle.specChanged || neverProvisioned,
      // New services that fail to start go back to the release that ran last.
      previous: lifecycle.specChanged ? lifecycle.releases.deployed : undefined,
      rollbackOnFailure: true,
    });
    return failed ?? lifecycle.succeed(by, 'running');
  },

  /** With a signal or a timeout they travel to the provider; without, the call is as it always was. */
  async stop(lifecycle, args, by) {
    const stop = stopOptionsOf(args);
    await lifecycle.recorder.transition('stopping', by, stop ? { payload: { ...args } } : {});
    try {
      await lifecycle.activities.stopInstance({ ...lifecycle.providerCall(), ...(stop ? { stop } : {}) });
    } catch (err) {
      return lifecycle.fail(by, err);
    }
    return lifecycle.succeed(by, 'stopped');
  },

  /**
   * The provider's own restart (a rolling restart on Kubernetes), with the path it stands for recorded:
   * stopping, stopped, starting, running.
   */
  async restart(lifecycle, _args, by) {
    const { recorder, activities } = lifecycle;
    try {
      if (patched(RESTART_THROUGH_PROVIDER)) {
        await recorder.transition('stopping', by);
        await recorder.transition('stopped', by);
        await recorder.transition('starting', by);
        const restarted = await activities.restartInstance(lifecycle.providerCall());
        recorder.set({ endpoints: restarted.endpoints });
      } else {
        // Instances whose history began before the patch restart the way they started: stop, then start.
        await recorder.transition('stopping', by);
        await activities.stopInstance(lifecycle.providerCall());
        await recorder.transition('stopped', by);
        await recorder.transition('starting', by);
        await lifecycle.startServices();
      }
    } catch (err) {
      return lifecycle.fail(by, err);
    }
    return lifecycle.succeed(by, 'running');
  },

  /** Scale changes limits, not the state: a failed scale leaves the instance as it was. */
  async scale(lifecycle, args, by) {
    const services = lifecycle.instance.services ?? [];
    const main = mainService(services);
    if (!main) {
      return lifecycle.reject(by, {
        code: 'invalid_request',
        message: 'scale: the instance has no main service',
      });
    }
    const merged: ResourceSpec = {
      ...main.resources,
      ...(args.cpu_millis !== undefined ? { cpu_millis: args.cpu_millis } : {}),
      ...(args.memory_mb !== undefined ? { memory_mb: args.memory_mb } : {}),
      ...(args.replicas !== undefined ? { replicas: args.replicas } : {}),
    };
    try {
      await lifecycle.activities.scaleInstance({ ...lifecycle.providerCall(), resources: merged });
    } catch (err) {
      return lifecycle.commandFailed(by, err);
    }
    lifecycle.setServices(services.map((s) => (s === main ? { ...s, resources: merged } : s)));
    lifecycle.newRelease(by, 'scale');
    // The running (or stopped) containers have the new limits; a spec still waiting for a start keeps waiting.
    if (!lifecycle.specChanged) lifecycle.releases.markDeployed();
    return lifecycle.succeedWith(by, 'instance.scaled', {
      cpu_millis: merged.cpu_millis,
      memory_mb: merged.memory_mb,
      replicas: merged.replicas,
    });
  },

  async suspend(lifecycle, { reason }, by) {
    const instance = lifecycle.instance;
    // Suspending again (another reason) keeps the state the first suspension will return to.
    const resumeState =
      instance.suspend_reason !== undefined ? lifecycle.resumeState : runStateOf(instance.state);
    if (instance.state === 'running') {
      await lifecycle.recorder.transition('stopping', by);
      try {
        await lifecycle.activities.stopInstance(lifecycle.providerCall());
      } catch (err) {
        return lifecycle.fail(by, err);
      }
      lifecycle.markSuspended(reason, resumeState);
      return lifecycle.succeed(by, 'stopped', { payload: { reason } });
    }
    lifecycle.markSuspended(reason, resumeState);
    return lifecycle.succeedWith(by, 'instance.suspended', { reason });
  },

  async unsuspend(lifecycle, _args, by) {
    const reason = lifecycle.instance.suspend_reason;
    const resume = lifecycle.resumeState;
    lifecycle.liftSuspension();
    if (resume === 'running' && lifecycle.instance.state === 'stopped') {
      await lifecycle.recorder.transition('starting', by, { payload: { reason } });
      try {
        await lifecycle.startServices();
      } catch (err) {
        return lifecycle.fail(by, err);
      }
      return lifecycle.succeed(by, 'running', { payload: { reason } });
    }
    return lifecycle.succeedWith(by, 'instance.unsuspended', { reason });
  },

  /** Rename, relabel or respecify. New services are applied at once to a running instance, else at next start. */
  async update(lifecycle, args, by) {
    const { recorder } = lifecycle;
    const changed: string[] = [];
    if (args.name !== undefined && args.name !== lifecycle.instance.name) {
      const slug = slugify(args.name);
      if (slug !== lifecycle.instance.slug) {
        try {
          await lifecycle.activities.reserveSlug({
            tenant_id: lifecycle.instance.tenant_id,
            instance_id: lifecycle.instance.id,
            slug,
          });
        } catch (err) {
          return lifecycle.commandFailed(by, err);
        }
      }
      recorder.set({ name: args.name, slug });
      changed.push('name');
    }
    if (args.labels !== undefined) {
      recorder.set({ labels: args.labels });
      changed.push('labels');
    }
    changed.push(...applyPolicyChanges(lifecycle, args));
    if (args.services !== undefined) {
      const previous = lifecycle.releases.deployed;
      lifecycle.setServices(args.services);
      changed.push('services');
      const release = lifecycle.newRelease(by, 'update: services');
      const failed = await applyNewSpec(lifecycle, by, previous, args.rollback_on_failure);
      if (failed) return failed;
      if (release) return lifecycle.succeedWith(by, 'instance.updated', { changed, release: release.number });
    }
    return lifecycle.succeedWith(by, 'instance.updated', { changed });
  },

  /** Re-applies an earlier release's spec as a new release, the way an update of services is applied. */
  async rollback(lifecycle, args, by) {
    let target: Release;
    try {
      target = await lifecycle.activities.loadRelease({
        instance_id: lifecycle.instance.id,
        release: args.release,
      });
    } catch (err) {
      return lifecycle.commandFailed(by, err);
    }
    const previous = lifecycle.releases.deployed;
    lifecycle.applySpec(target.spec);
    const release = lifecycle.newRelease(by, `rollback to v${target.number}`, target.number);
    const failed = await applyNewSpec(lifecycle, by, previous, args.rollback_on_failure);
    return (
      failed ??
      lifecycle.succeedWith(by, ROLLED_BACK_EVENT, {
        ...(release ? { release: release.number } : {}),
        rollback_of: target.number,
      })
    );
  },

  /** One service's container restarted, the instance still running: a failure leaves it as it was. */
  async restart_service(lifecycle, { service }, by) {
    if (!(lifecycle.instance.services ?? []).some((s) => s.name === service)) {
      return lifecycle.reject(by, {
        code: 'invalid_request',
        message: `restart_service: the instance has no service ${service}`,
      });
    }
    try {
      await lifecycle.activities.restartService({ ...lifecycle.providerCall(), service });
    } catch (err) {
      return lifecycle.commandFailed(by, err);
    }
    return lifecycle.succeedWith(by, SERVICE_RESTARTED_EVENT, { service });
  },

  /** The API ran a command in the instance: recorded who, what and how it ended, never its output. */
  async record_exec(lifecycle, args, by) {
    return lifecycle.succeedWith(by, EXEC_EVENT, { ...args });
  },

  async delete(lifecycle, _args, by) {
    await lifecycle.recorder.transition('destroying', by);
    try {
      await lifecycle.activities.deprovisionInstance(lifecycle.providerCall());
    } catch (err) {
      return lifecycle.fail(by, err);
    }
    return lifecycle.succeed(by, 'destroyed');
  },
};

/** A new spec: deployed at once on a running instance (going back on failure), else at its next start. */
async function applyNewSpec(
  lifecycle: InstanceLifecycle,
  by: Requester,
  previous: Release | undefined,
  rollbackOnFailure: boolean | undefined,
): Promise<Outcome | undefined> {
  if (lifecycle.instance.state !== 'running') {
    lifecycle.specChanged = true;
    return undefined;
  }
  return deployRelease(lifecycle, by, {
    provision: true,
    previous,
    rollbackOnFailure: rollbackOnFailure !== false,
  });
}

export function runCommand<N extends CommandName>(
  lifecycle: InstanceLifecycle,
  command: CommandOf<N>,
  by: Requester,
): Promise<Outcome> {
  const handler: CommandHandler<N> = COMMAND_HANDLERS[command.name];
  return handler(lifecycle, command.args, by);
}

/** The stop's options as the provider takes them; undefined when none was given. */
function stopOptionsOf(args: CommandArgs['stop']): StopOptions | undefined {
  if (args.signal === undefined && args.timeout === undefined) return undefined;
  return {
    ...(args.signal !== undefined ? { signal: args.signal } : {}),
    ...(args.timeout !== undefined ? { timeout_seconds: args.timeout } : {}),
  };
}
