/**
 * The production worker (runWorker, real Docker provider), run as a child process by tests that kill it.
 * With CTRLPLANE_TEST_PAUSE_AFTER=<provider method>, that call does its real work on the engine, prints
 * `PAUSED <method> <instance id>` and then never returns, so the test can SIGKILL the worker at a known point.
 */
import { loadConfig } from '../../config/env.ts';
import { createLogger } from '../../config/logger.ts';
import { buildProviders } from '../../providers/build-providers.ts';
import type { Provider } from '../../providers/provider.ts';
import { secretStoreFor } from '../../providers/secret-store.ts';
import { runWorker } from '../../worker/run-worker.ts';

const config = loadConfig();
const logger = createLogger('crashable-worker', config.LOG_LEVEL);
const providers = buildProviders(config, logger);
const pauseAfter = process.env.CTRLPLANE_TEST_PAUSE_AFTER;

if (pauseAfter) {
  const docker = providers.get('docker');
  const paused = new Proxy(docker, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== pauseAfter || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        await value.apply(target, args);
        const request = args[0] as string | { instance_id: string };
        console.log(`PAUSED ${pauseAfter} ${typeof request === 'string' ? request : request.instance_id}`);
        await new Promise(() => {});
      };
    },
  }) as Provider;
  providers.register('docker', paused);
}

await runWorker({
  config,
  logger,
  providers,
  secrets: secretStoreFor(config.CTRLPLANE_SECRET_STORE, process.env),
  ...(config.CTRLPLANE_WORKFLOW_BUNDLE ? { workflowBundlePath: config.CTRLPLANE_WORKFLOW_BUNDLE } : {}),
});
