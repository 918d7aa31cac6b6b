import type { KubernetesObject, V1ConfigMap } from '@kubernetes/client-node';
import {
  type CallOptions,
  type InstanceStatus,
  type ManifestsEngine,
  type ManifestsRequest,
  PermanentProviderError,
  type ProvisionResult,
} from '../provider.ts';
import type { KubernetesCluster } from './cluster.ts';
import { errorMessage, ignoreNotFound, isNotFound } from './errors.ts';
import type { KubeObjects } from './kube-client.ts';
import {
  checkKind,
  forceTemplateLabels,
  refuseClusterScoped,
  refuseForeignReferences,
  scopeSelectors,
} from './manifest-policy.ts';
import { type ManifestRef, parseManifests, parseRefs, refKey, splitApiVersion } from './manifests.ts';
import { instanceLabels, LABEL, providerRef, trackingConfigMapName } from './names.ts';
import {
  applyObject,
  applyOwned,
  deleteIfPresent,
  deleteOwnedRef,
  header,
  headerOf,
  refuseForeignOwner,
} from './object-writes.ts';
import {
  checkPodSpec,
  checkServiceExposure,
  hardenPodSpec,
  podReferences,
  podSpecs,
  refusePod,
} from './pod-policy.ts';
import { instanceNetworkPolicy, instanceNetworkPolicyName } from './tenant-namespace.ts';

/**
 * The manifests source on Kubernetes: the rendered YAML objects, checked by the manifest and pod policies, applied
 * into the instance's namespace and recorded in the instance's tracking ConfigMap `<name>-manifests`, which is what
 * prune, delete and status read. The helm engine applies what a chart rendered through it.
 */
export class KubernetesManifests implements ManifestsEngine {
  constructor(private readonly cluster: KubernetesCluster) {}

  /**
   * Applies every object (server-side apply), labelled, into the instance namespace, records them in the ConfigMap
   * `<name>-manifests`, and prunes what an earlier apply created and this one no longer has. The record is written
   * before the objects (holding old and new) and after (holding the new set), so a crash at any point leaves nothing
   * untracked.
   *
   * Refused before anything is written (invalid_spec): a namespace other than the instance's (in `req.namespace` or
   * an object's metadata), a cluster-scoped kind, an object that exists and is not this instance's (another
   * instance's, or not managed by ctrlplane: foreign objects are never adopted), a reference to another instance's or
   * tenant's reserved labels, the kinds manifest-policy.ts refuses, and the pod templates and Services pod-policy.ts
   * refuses (naming the object, the path and the rule). The reserved labels win on the objects and on their pod
   * templates; Service, NetworkPolicy and PodDisruptionBudget selectors are narrowed to the instance's pods; pod
   * templates get the restricted Pod Security defaults where they set nothing. In a tenant namespace the objects are
   * written as the tenant (impersonated), beside a NetworkPolicy opening the default deny within the instance.
   */
  async apply(req: ManifestsRequest, opts: CallOptions = {}): Promise<ProvisionResult> {
    const api = this.cluster.reader(opts.signal);
    const instanceNamespace = this.cluster.namespaceFor(req.tenant_id);
    if (req.namespace && req.namespace !== instanceNamespace) {
      throw new PermanentProviderError(
        `a manifests source is applied in its instance's namespace ${instanceNamespace}, not in ${req.namespace}`,
        'invalid_spec',
      );
    }
    const objects = parseManifests(req.docs ?? []);
    if (objects.length === 0) throw new PermanentProviderError('the manifests source has no objects');

    const own = { instanceId: req.instance_id, tenantId: req.tenant_id };
    const reserved = instanceLabels(own);
    const trackingName = trackingConfigMapName(req.instance_id);
    const refs: ManifestRef[] = [];
    const seen = new Set<string>();
    for (const obj of objects) {
      const apiVersion = obj.apiVersion ?? '';
      const kind = obj.kind ?? '';
      const { group, version } = splitApiVersion(apiVersion);
      checkKind(obj, !this.cluster.settings.namespacePerTenant);
      checkServiceExposure(obj, this.cluster.settings.serviceExposure);
      for (const at of podSpecs(obj)) {
        checkPodSpec(obj, at);
        hardenPodSpec(at.spec, this.cluster.settings.runAsUser);
      }
      const info = await this.resourceInfo(api, apiVersion, kind);
      if (!info) {
        throw new PermanentProviderError(
          `the cluster does not serve ${kind} in ${apiVersion}`,
          'invalid_spec',
        );
      }
      if (!info.namespaced) refuseClusterScoped(obj);
      const metadata = obj.metadata ?? {};
      if (metadata.namespace && metadata.namespace !== instanceNamespace) {
        throw new PermanentProviderError(
          `${kind} ${metadata.name} names namespace ${metadata.namespace}: a manifests source may only write to its instance's namespace ${instanceNamespace}`,
          'invalid_spec',
        );
      }
      metadata.namespace = instanceNamespace;
      delete metadata.resourceVersion;
      if (group === '' && kind === 'ConfigMap' && metadata.name === trackingName) {
        throw new PermanentProviderError(
          `ConfigMap ${trackingName} is the instance's tracking record; a manifest may not write it`,
          'invalid_spec',
        );
      }
      // The object's own labels, then the configured ones, the caller's, and the reserved ones (which win), on the
      // object and on its pod templates.
      metadata.labels = { ...metadata.labels, ...this.cluster.settings.labels, ...req.labels, ...reserved };
      obj.metadata = metadata;
      forceTemplateLabels(obj, reserved);
      refuseForeignReferences(obj, own);
      scopeSelectors(obj, req.instance_id);
      const ref: ManifestRef = {
        apiVersion,
        kind,
        group,
        version,
        resource: info.plural,
        namespaced: true,
        namespace: instanceNamespace,
        name: metadata.name ?? '',
      };
      const key = refKey(ref);
      if (seen.has(key)) {
        throw new PermanentProviderError(
          `the manifests contain ${kind} ${metadata.name} twice`,
          'invalid_spec',
        );
      }
      seen.add(key);
      refs.push(ref);
    }

    await this.refuseForeignPodReferences(api, objects, instanceNamespace, req.instance_id);
    // Nothing is taken over: an existing object must already be this instance's (checked here for all of them,
    // before anything is written, and again right before each apply).
    for (const obj of objects) {
      refuseForeignOwner(await ignoreNotFound(api.read(headerOf(obj))), obj, req.instance_id, {
        adoptUnlabelled: false,
      });
    }

    await this.cluster.ensureNamespace(api, instanceNamespace, req.tenant_id);
    // Reads as the control plane, writes as the tenant.
    const writer = this.cluster.writerFor(instanceNamespace, opts.signal);
    const tracking = await ignoreNotFound(
      api.read<V1ConfigMap>(header('v1', 'ConfigMap', instanceNamespace, trackingName)),
    );
    const previous = parseRefs(tracking?.data);
    const keep = new Set(refs.map(refKey));
    const stale = previous.filter((r) => !keep.has(refKey(r)));
    const trackingLabels = {
      ...this.cluster.settings.labels,
      ...req.labels,
      ...reserved,
      [LABEL.component]: 'manifests',
    };
    await this.writeTracking(writer, instanceNamespace, trackingName, trackingLabels, [...stale, ...refs]);
    if (this.cluster.settings.namespacePerTenant) {
      await applyObject(writer, instanceNetworkPolicy(req.instance_id, instanceNamespace, trackingLabels));
    }

    for (const obj of objects) {
      try {
        await applyOwned(writer, obj, req.instance_id, this.cluster.log);
      } catch (err) {
        if (isNotFound(err)) {
          throw new PermanentProviderError(
            `cannot apply ${obj.kind} ${obj.metadata?.name}: ${errorMessage(err)}`,
            'invalid_spec',
          );
        }
        throw err;
      }
      opts.progress?.(`applied ${obj.kind} ${obj.metadata?.name}`);
    }
    for (const ref of [...stale].reverse()) {
      if (await deleteOwnedRef(writer, ref, req.instance_id, this.cluster.log))
        opts.progress?.(`pruned ${ref.kind} ${ref.name}`);
    }
    await this.writeTracking(writer, instanceNamespace, trackingName, trackingLabels, refs);

    this.cluster.rememberNamespace(req.instance_id, instanceNamespace);
    this.cluster.log.info(
      { instance_id: req.instance_id, objects: refs.length, pruned: stale.length },
      'kubernetes manifests applied',
    );
    return {
      provider_ref: providerRef(instanceNamespace, req.instance_id),
      endpoints: [],
      metadata: { objects: String(refs.length), namespace: instanceNamespace },
    };
  }

  /** Deletes every recorded object (404 is fine; the first other error stops), then the record. Absent: no-op. */
  async remove(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const api = this.cluster.reader(opts.signal);
    const namespace = await this.cluster.findNamespace(api, instanceId);
    if (!namespace) return;
    const trackingName = trackingConfigMapName(instanceId);
    const tracking = await ignoreNotFound(
      api.read<V1ConfigMap>(header('v1', 'ConfigMap', namespace, trackingName)),
    );
    if (!tracking) return;
    const refs = parseRefs(tracking.data);
    for (const ref of [...refs].reverse()) {
      if (await deleteOwnedRef(api, ref, instanceId, this.cluster.log))
        opts.progress?.(`deleted ${ref.kind} ${ref.name}`);
    }
    await deleteIfPresent(
      api,
      header('networking.k8s.io/v1', 'NetworkPolicy', namespace, instanceNetworkPolicyName(instanceId)),
    );
    await deleteIfPresent(api, header('v1', 'ConfigMap', namespace, trackingName));
    this.cluster.forgetNamespace(instanceId);
    this.cluster.log.info({ instance_id: instanceId, objects: refs.length }, 'kubernetes manifests deleted');
  }

  /** Existence of every recorded object: no readiness is judged. */
  async status(instanceId: string, opts: CallOptions = {}): Promise<InstanceStatus> {
    const api = this.cluster.reader(opts.signal);
    const pending = (message: string): InstanceStatus => ({
      state: 'provisioning',
      ready: false,
      restarts: 0,
      endpoints: [],
      message,
    });
    const namespace = await this.cluster.findNamespace(api, instanceId);
    if (!namespace) return pending('no manifests applied');
    const tracking = await ignoreNotFound(
      api.read<V1ConfigMap>(header('v1', 'ConfigMap', namespace, trackingConfigMapName(instanceId))),
    );
    const refs = parseRefs(tracking?.data);
    if (refs.length === 0) return pending('no manifests applied');
    for (const ref of refs) {
      api.remember(ref.apiVersion, ref.kind, { plural: ref.resource, namespaced: ref.namespaced });
      const obj = await ignoreNotFound(api.read(header(ref.apiVersion, ref.kind, ref.namespace, ref.name)));
      if (!obj) return pending(`${ref.resource} ${ref.name} not found`);
    }
    return { state: 'running', ready: true, restarts: 0, endpoints: [], message: 'all manifests applied' };
  }

  private async writeTracking(
    api: KubeObjects,
    namespace: string,
    name: string,
    labels: Record<string, string>,
    refs: ManifestRef[],
  ): Promise<void> {
    const cm: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace, labels },
      data: { refs: JSON.stringify(refs) },
    };
    await applyObject(api, cm);
  }

  private async resourceInfo(api: KubeObjects, apiVersion: string, kind: string) {
    try {
      return await api.resourceInfo(apiVersion, kind);
    } catch (err) {
      // Discovery answers 404 for a group/version the cluster does not serve.
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Refuses a pod that reads a Secret, ConfigMap or claim the instance does not own: one of the same source, or an
   * existing one labelled as this instance's. Another instance's (of this tenant, or of any tenant in a shared
   * namespace) is refused, and so is a name that does not exist yet (someone else could create it).
   */
  private async refuseForeignPodReferences(
    api: KubeObjects,
    objects: KubernetesObject[],
    namespace: string,
    instanceId: string,
  ): Promise<void> {
    const inSource = new Set(
      objects.filter((o) => o.apiVersion === 'v1').map((o) => `${o.kind}/${o.metadata?.name}`),
    );
    for (const obj of objects) {
      for (const at of podSpecs(obj)) {
        for (const ref of podReferences(at)) {
          if (inSource.has(`${ref.kind}/${ref.name}`)) continue;
          const live = await ignoreNotFound(api.read(header('v1', ref.kind, namespace, ref.name)));
          if (live?.metadata?.labels?.[LABEL.instanceId] === instanceId) continue;
          refusePod(
            obj,
            ref.path,
            'foreign-reference',
            `${ref.kind} ${ref.name} is not this instance's (${live ? 'it exists and belongs to another instance or to no one' : 'it is neither in this source nor an object of the instance'})`,
          );
        }
      }
    }
  }
}
