import { join } from 'node:path';
import {
  type CallOptions,
  type HelmEngine,
  type HelmRequest,
  type InstanceStatus,
  PermanentProviderError,
  type ProvisionResult,
} from '../provider.ts';
import type { KubernetesCluster } from './cluster.ts';
import { errorMessage } from './errors.ts';
import {
  checkChartSource,
  findExecutable,
  helmUnavailable,
  offlineHelmEnv,
  runHelm,
  templateArgs,
  withTempDir,
  writePrivate,
} from './helm.ts';
import type { KubernetesManifests } from './manifests-engine.ts';
import { resourceName } from './names.ts';

/**
 * The helm source on Kubernetes: `helm template` only, offline (helm.ts), from an allowed chart; what it rendered
 * is applied, tracked, pruned and deleted by the manifests engine, as the tenant. No helm release is stored.
 */
export class KubernetesHelm implements HelmEngine {
  constructor(
    private readonly cluster: KubernetesCluster,
    private readonly manifests: KubernetesManifests,
  ) {}

  /** The helm executable, looked up now; undefined when helm is disabled or not found. */
  binary(): string | undefined {
    const command = this.cluster.settings.helmCommand;
    return command === false ? undefined : findExecutable(command);
  }

  async apply(req: HelmRequest, opts: CallOptions = {}): Promise<ProvisionResult> {
    const binary = this.binary();
    if (!binary) throw helmUnavailable();
    // The release goes to the instance namespace, whatever the source asks for (a different one is refused).
    const namespace = this.cluster.namespaceFor(req.tenant_id);
    for (const asked of [req.namespace, req.chart?.namespace]) {
      if (asked && asked !== namespace) {
        throw new PermanentProviderError(
          `a helm source is installed in its instance's namespace ${namespace}, not in ${asked}`,
          'invalid_spec',
        );
      }
    }
    checkChartSource(req.chart, this.cluster.settings.helmRepos);
    const release = resourceName(req.instance_id);
    const rendered = await withTempDir(async (dir) => {
      const values = req.chart.values ?? {};
      const valuesFile =
        Object.keys(values).length > 0
          ? await writePrivate(join(dir, 'values.json'), JSON.stringify(values))
          : undefined;
      opts.progress?.(`helm template ${release}`);
      try {
        return await runHelm(
          { binary, signal: opts.signal },
          templateArgs(release, namespace, req.chart, valuesFile),
          offlineHelmEnv(dir),
        );
      } catch (err) {
        const text = errorMessage(err);
        if (
          /not found|no chart|invalid|parse error|unable to parse|failed to parse|template: |execution error|yaml/i.test(
            text,
          )
        ) {
          throw new PermanentProviderError(text, 'invalid_spec');
        }
        throw err;
      }
    });
    // What the chart rendered goes through the manifests policy and apply path, as the tenant.
    const applied = await this.manifests.apply(
      { instance_id: req.instance_id, tenant_id: req.tenant_id, docs: [rendered] },
      opts,
    );
    this.cluster.log.info(
      { instance_id: req.instance_id, release, namespace },
      'helm chart rendered and applied',
    );
    return {
      provider_ref: `helm:${namespace}/${release}`,
      endpoints: [],
      metadata: { ...applied.metadata, release },
    };
  }

  async remove(instanceId: string, opts: CallOptions = {}): Promise<void> {
    await this.manifests.remove(instanceId, opts);
  }

  async status(instanceId: string, opts: CallOptions = {}): Promise<InstanceStatus> {
    const status = await this.manifests.status(instanceId, opts);
    if (status.message === 'no manifests applied') {
      return { state: 'destroyed', ready: false, restarts: 0, endpoints: [], message: 'no helm release' };
    }
    return status;
  }
}
