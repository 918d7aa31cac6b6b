import { patched } from '@temporalio/workflow';
import { runStateOf } from '../domain/command-rules.ts';
import type { CommandArgs, CommandName, CommandOf } from '../domain/commands.ts';
import { mainService, type ResourceSpec, slugify } from '../domain/instance.ts';
import type { InstanceLifecycle } from './instance-lifecycle.ts';
import { applyPolicyChanges } from './lifecycle-policy-changes.ts';
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
    try {
      // Nothing provisioned yet (the provision failed) or new services while stopped: provision first.
      const neverProvisioned = !lifecycle.provisioned && patched(PROVISION_BEFORE_FIRST_START);
      if (lifecycle.specChanged || neverProvisioned) await lifecycle.provisionServices();
      await lifecycle.startServices();
    } catch (err) {
      return lifecycle.fail(by, err);
    }
    return lifecycle.succeed(by, 'running');
  },

  async stop(lifecycle, _args, by) {
    await lifecycle.recorder.transition('stopping', by);
    try {
      await lifecycle.activities.stopInstance(lifecycle.providerCall());
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
      lifecycle.setServices(args.services);
      changed.push('services');
      if (lifecycle.instance.state === 'running') {
        try {
          await lifecycle.provisionServices();
          await lifecycle.startServices();
        } catch (err) {
          return lifecycle.fail(by, err);
        }
      } else {
        lifecycle.specChanged = true;
      }
    }
    return lifecycle.succeedWith(by, 'instance.updated', { changed });
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

export function runCommand<N extends CommandName>(
  lifecycle: InstanceLifecycle,
  command: CommandOf<N>,
  by: Requester,
): Promise<Outcome> {
  const handler: CommandHandler<N> = COMMAND_HANDLERS[command.name];
  return handler(lifecycle, command.args, by);
}
