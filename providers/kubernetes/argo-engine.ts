import {
  type ArgoEngine,
  type ArgoRequest,
  type CallOptions,
  type InstanceStatus,
  PermanentProviderError,
  type ProvisionResult,
} from '../provider.ts';
import {
  type ArgoApplication,
  argoApplication,
  argoDisabled,
  argoProject,
  argoStatusOf,
  checkArgoRepo,
} from './argo.ts';
import type { KubernetesCluster } from './cluster.ts';
import { errorMessage, ignoreNotFound, isNotFound } from './errors.ts';
import { instanceLabels, LABEL, MANAGED_BY, resourceName, tenantNamespace } from './names.ts';
import { applyObject, deleteIfPresent, header } from './object-writes.ts';

/**
 * The argocd source on Kubernetes: an Argo CD Application per instance (argo.ts builds it), in the Argo CD
 * namespace, bound to the tenant's AppProject, which limits it to the tenant's namespace and the allowed
 * repositories. Refused altogether while no repository is allowed: Argo CD deploys with its own rights.
 */
export class KubernetesArgo implements ArgoEngine {
  constructor(private readonly cluster: KubernetesCluster) {}

  /** Where the Applications and the tenants' AppProjects go. */
  private get namespace(): string {
    return this.cluster.settings.argoNamespace;
  }

  private get repos(): readonly string[] {
    return this.cluster.settings.argoRepos;
  }

  private get destinationServer(): string {
    return this.cluster.settings.argoDestServer;
  }

  async apply(req: ArgoRequest, opts: CallOptions = {}): Promise<ProvisionResult> {
    if (this.repos.length === 0) throw argoDisabled();
    const api = this.cluster.reader(opts.signal);
    const instanceNamespace = this.cluster.namespaceFor(req.tenant_id);
    // One AppProject per tenant, named like its namespace: Argo CD's own rights are bounded by it alone.
    const project = tenantNamespace(this.cluster.settings.namespacePrefix, req.tenant_id);
    const application = argoApplication({
      instanceId: req.instance_id,
      namespace: this.namespace,
      labels: instanceLabels({
        instanceId: req.instance_id,
        tenantId: req.tenant_id,
        config: this.cluster.settings.labels,
        caller: req.labels,
      }),
      app: req.app,
      project,
      destinationServer: this.destinationServer,
      destinationNamespace: instanceNamespace,
    });
    checkArgoRepo(req.app.repo_url, this.repos);
    await this.cluster.ensureNamespace(api, instanceNamespace, req.tenant_id);
    try {
      await applyObject(
        api,
        argoProject({
          name: project,
          namespace: this.namespace,
          labels: {
            ...this.cluster.settings.labels,
            [LABEL.managedBy]: MANAGED_BY,
            [LABEL.tenantId]: req.tenant_id,
          },
          repos: this.repos,
          destinationServer: this.destinationServer,
          destinationNamespace: instanceNamespace,
        }),
      );
      await applyObject(api, application);
    } catch (err) {
      if (isNotFound(err)) {
        throw new PermanentProviderError(
          `cannot create the Argo CD Application in namespace ${this.namespace} (is Argo CD installed?): ${errorMessage(err)}`,
          'unsupported_source',
        );
      }
      throw err;
    }
    const name = resourceName(req.instance_id);
    opts.progress?.(`applied Application ${this.namespace}/${name}`);
    return {
      provider_ref: `argocd:${this.namespace}/${name}`,
      endpoints: [],
      metadata: { application: name, namespace: this.namespace },
    };
  }

  async remove(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const api = this.cluster.reader(opts.signal);
    await deleteIfPresent(
      api,
      header('argoproj.io/v1alpha1', 'Application', this.namespace, resourceName(instanceId)),
    );
  }

  async status(instanceId: string, opts: CallOptions = {}): Promise<InstanceStatus> {
    const api = this.cluster.reader(opts.signal);
    const app = await ignoreNotFound(
      api.read<ArgoApplication>(
        header('argoproj.io/v1alpha1', 'Application', this.namespace, resourceName(instanceId)),
      ),
    );
    if (!app) {
      return {
        state: 'destroyed',
        ready: false,
        restarts: 0,
        endpoints: [],
        message: 'no Argo CD Application',
      };
    }
    return argoStatusOf(app);
  }
}
