import {
  type Configuration,
  type ConfigurationOptions,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  Observable,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
  type V1APIResource,
} from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { getSerializationType } from '@kubernetes/client-node/dist/util.js';

/**
 * Plural resource names of the kinds the provider writes itself and of the common built-in kinds a manifest uses,
 * so the usual case needs no discovery round trip. Anything else falls back to discovery (GET /api/v1, /apis/g/v).
 */
const BUILTIN: Record<string, Record<string, [plural: string, namespaced: boolean]>> = {
  v1: {
    Namespace: ['namespaces', false],
    Pod: ['pods', true],
    Service: ['services', true],
    ConfigMap: ['configmaps', true],
    Secret: ['secrets', true],
    ServiceAccount: ['serviceaccounts', true],
    PersistentVolumeClaim: ['persistentvolumeclaims', true],
    PersistentVolume: ['persistentvolumes', false],
    Endpoints: ['endpoints', true],
    Event: ['events', true],
    LimitRange: ['limitranges', true],
    ResourceQuota: ['resourcequotas', true],
  },
  'apps/v1': {
    Deployment: ['deployments', true],
    StatefulSet: ['statefulsets', true],
    DaemonSet: ['daemonsets', true],
    ReplicaSet: ['replicasets', true],
  },
  'batch/v1': { Job: ['jobs', true], CronJob: ['cronjobs', true] },
  'networking.k8s.io/v1': { Ingress: ['ingresses', true], NetworkPolicy: ['networkpolicies', true] },
  'policy/v1': { PodDisruptionBudget: ['poddisruptionbudgets', true] },
  'autoscaling/v2': { HorizontalPodAutoscaler: ['horizontalpodautoscalers', true] },
  'rbac.authorization.k8s.io/v1': {
    Role: ['roles', true],
    RoleBinding: ['rolebindings', true],
    ClusterRole: ['clusterroles', false],
    ClusterRoleBinding: ['clusterrolebindings', false],
  },
  'apiextensions.k8s.io/v1': { CustomResourceDefinition: ['customresourcedefinitions', false] },
  'argoproj.io/v1alpha1': { Application: ['applications', true] },
  'metrics.k8s.io/v1beta1': { PodMetrics: ['pods', true] },
};

/**
 * An object in the API's own JSON field names (as YAML and the API server spell them) → client-node's model of its
 * kind, which client-node serializes a built-in kind through. Without this a field whose model name differs is
 * silently dropped on the way out: a NetworkPolicy's `ingress[].from` (model `_from`, and a rule without `from`
 * allows every source), a LimitRange's `default` (model `_default`).
 */
export function fromWire<T extends KubernetesObject>(obj: T): T {
  return ObjectSerializer.deserialize(obj, getSerializationType(obj.apiVersion, obj.kind)) as T;
}

export interface ResourceInfo {
  plural: string;
  namespaced: boolean;
}

function toResource(kind: string, [plural, namespaced]: [string, boolean]): V1APIResource {
  return { kind, name: plural, namespaced, singularName: '', verbs: [] };
}

function signalMiddleware(signal: AbortSignal): ObservableMiddleware {
  return {
    pre: (ctx: RequestContext) => {
      ctx.setSignal(signal);
      return new Observable(Promise.resolve(ctx));
    },
    post: (rsp: ResponseContext) => new Observable(Promise.resolve(rsp)),
  };
}

/** Per-call options for the generated (object-param) APIs that make the call abortable. */
export function callOptions(
  signal: AbortSignal | undefined,
  base?: ConfigurationOptions<ObservableMiddleware>,
): ConfigurationOptions<ObservableMiddleware> {
  if (!signal) return base ?? {};
  return {
    ...base,
    middleware: [...(base?.middleware ?? []), signalMiddleware(signal)],
    middlewareMergeStrategy: 'append',
  };
}

/**
 * client-node's generic object API with two additions: a built-in kind → resource table in front of discovery, and
 * per-call abort signals (`withSignal`) that share the discovery cache.
 */
export class KubeObjects extends KubernetesObjectApi {
  private signal: AbortSignal | undefined;
  private learned: Record<string, Record<string, V1APIResource>> = {};

  static create(kc: KubeConfig): KubeObjects {
    const api = kc.makeApiClient(KubeObjects);
    api.setDefaultNamespace(kc);
    return api;
  }

  /** The same client, with every request of the returned view aborted by `signal`. */
  withSignal(signal: AbortSignal | undefined): KubeObjects {
    if (!signal) return this;
    const view = new KubeObjects(this.configuration);
    view.apiVersionResourceCache = this.apiVersionResourceCache;
    view.learned = this.learned;
    view.defaultNamespace = this.defaultNamespace;
    view.signal = signal;
    return view;
  }

  /** Teaches the client a resource it may no longer be able to discover (e.g. from a tracking record). */
  remember(apiVersion: string, kind: string, info: ResourceInfo): void {
    const forVersion = this.learned[apiVersion] ?? {};
    forVersion[kind] = toResource(kind, [info.plural, info.namespaced]);
    this.learned[apiVersion] = forVersion;
  }

  /** The plural name and scope of a kind; undefined when the server does not serve it. */
  async resourceInfo(apiVersion: string, kind: string): Promise<ResourceInfo | undefined> {
    const resource = await this.resource(apiVersion, kind);
    return resource ? { plural: resource.name, namespaced: resource.namespaced } : undefined;
  }

  protected override async resource(
    apiVersion: string,
    kind: string,
    options?: Configuration,
  ): Promise<V1APIResource | undefined> {
    const builtin = BUILTIN[apiVersion]?.[kind];
    if (builtin) return toResource(kind, builtin);
    const learned = this.learned[apiVersion]?.[kind];
    if (learned) return learned;
    return super.resource(apiVersion, kind, options);
  }

  protected override requestPromise<T>(
    requestContext: RequestContext,
    type?: string,
    options?: Configuration,
  ): Promise<T> {
    if (this.signal) requestContext.setSignal(this.signal);
    // biome-ignore lint/suspicious/noExplicitAny: the base signature constrains T to KubernetesObject.
    return super.requestPromise<any>(requestContext, type, options) as Promise<T>;
  }
}
