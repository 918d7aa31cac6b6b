import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  type V1Deployment,
  type V1StatefulSet,
  Watch,
} from '@kubernetes/client-node';
import {
  type ChangeFeed,
  CursorExpired,
  type FeedChange,
  type Glance,
  type ManagedListing,
} from '../change-feed.ts';
import { LABEL, MANAGED_BY } from './names.ts';

const MANAGED = `${LABEL.managedBy}=${MANAGED_BY}`;

/** What is watched: the instances' workloads and their pods, across namespaces. */
const WATCHED = {
  deployments: '/apis/apps/v1/deployments',
  statefulsets: '/apis/apps/v1/statefulsets',
  pods: '/api/v1/pods',
} as const;
type Watched = keyof typeof WATCHED;

/** The resourceVersion each watch continues from. */
type Cursor = Record<Watched, string>;

/**
 * Kubernetes watches of the objects labelled `ctrlplane.io/managed-by=ctrlplane` (the services workloads and
 * their pods), each resuming from its resourceVersion. A watch the server closes is opened again from the last
 * version seen (bookmarks keep it recent); one whose version is gone (410) ends the follow with CursorExpired,
 * after which the watcher lists again.
 */
export class KubernetesChangeFeed implements ChangeFeed {
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly watch: Watch;

  constructor(kubeConfig: KubeConfig) {
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.watch = new Watch(kubeConfig);
  }

  async list(signal: AbortSignal): Promise<ManagedListing> {
    signal.throwIfAborted();
    const [deployments, statefulsets, pods] = await Promise.all([
      this.apps.listDeploymentForAllNamespaces({ labelSelector: MANAGED }),
      this.apps.listStatefulSetForAllNamespaces({ labelSelector: MANAGED }),
      this.core.listPodForAllNamespaces({ labelSelector: MANAGED, limit: 1 }),
    ]);
    const instances = new Map<string, Glance>();
    for (const workload of [...deployments.items, ...statefulsets.items]) {
      const id = workload.metadata?.labels?.[LABEL.instanceId];
      if (!id) continue;
      const glance = glanceOf(workload);
      if (instances.get(id) !== 'not_running') instances.set(id, glance);
    }
    const cursor: Cursor = {
      deployments: deployments.metadata?.resourceVersion ?? '',
      statefulsets: statefulsets.metadata?.resourceVersion ?? '',
      pods: pods.metadata?.resourceVersion ?? '',
    };
    return { instances, cursor: JSON.stringify(cursor) };
  }

  async follow(cursor: string, onChange: (change: FeedChange) => void, signal: AbortSignal): Promise<void> {
    const at = parseCursor(cursor);
    const stop = new AbortController();
    const both = AbortSignal.any([signal, stop.signal]);
    const follow = async (kind: Watched) => {
      while (!both.aborted) {
        await this.watchOnce(kind, at, onChange, both);
      }
    };
    try {
      await Promise.all((Object.keys(WATCHED) as Watched[]).map(follow));
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      stop.abort();
    }
  }

  /** One watch request, until the server closes it (resolves) or it fails (rejects). */
  private watchOnce(
    kind: Watched,
    at: Cursor,
    onChange: (change: FeedChange) => void,
    signal: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      let controller: AbortController | undefined;
      const abort = () => {
        controller?.abort();
        resolve();
      };
      signal.addEventListener('abort', abort, { once: true });
      const done = (err?: unknown) => {
        signal.removeEventListener('abort', abort);
        if (signal.aborted) resolve();
        else if (err && statusOf(err) === 410) reject(new CursorExpired(`${kind}: ${String(err)}`));
        else if (err) reject(err);
        else resolve();
      };
      this.watch
        .watch(
          WATCHED[kind],
          {
            labelSelector: MANAGED,
            allowWatchBookmarks: true,
            ...(at[kind] ? { resourceVersion: at[kind] } : {}),
          },
          (phase: string, object: KubernetesObject & { code?: number }) => {
            if (phase === 'ERROR') {
              controller?.abort();
              done(
                object.code === 410
                  ? Object.assign(new Error('resource version gone'), { code: 410 })
                  : new Error(JSON.stringify(object)),
              );
              return;
            }
            const version = object.metadata?.resourceVersion;
            if (version) at[kind] = version;
            const id = object.metadata?.labels?.[LABEL.instanceId];
            if (phase === 'BOOKMARK' || !id) return;
            onChange({ instance_id: id, cursor: JSON.stringify(at), reason: `${kind} ${phase}` });
          },
          done,
        )
        .then((c) => {
          controller = c;
          if (signal.aborted) c.abort();
        }, done);
    });
  }
}

/** Running at a glance: asked for replicas and at least one of them available. */
function glanceOf(workload: V1Deployment | V1StatefulSet): Glance {
  const wanted = workload.spec?.replicas ?? 1;
  const available = workload.status?.availableReplicas ?? workload.status?.readyReplicas ?? 0;
  return wanted > 0 && available > 0 ? 'running' : 'not_running';
}

function parseCursor(cursor: string): Cursor {
  try {
    const parsed = JSON.parse(cursor) as Partial<Cursor>;
    return {
      deployments: parsed.deployments ?? '',
      statefulsets: parsed.statefulsets ?? '',
      pods: parsed.pods ?? '',
    };
  } catch {
    return { deployments: '', statefulsets: '', pods: '' };
  }
}

function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  const code = e.code ?? e.statusCode;
  return typeof code === 'number' ? code : undefined;
}
