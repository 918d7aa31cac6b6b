/**
 * A FAKE Kubernetes API server, for tests only.
 *
 * No Kubernetes cluster can run on this machine (no container runtime for kind/k3s), so the Kubernetes provider is
 * tested against this stand-in: a loopback HTTP server (node:http on 127.0.0.1, a random port) that keeps objects in
 * memory and answers the paths and verbs the provider uses the way the real API server does — the same URLs, status
 * codes, `Status` bodies (NotFound, AlreadyExists, Conflict, Invalid, BadRequest…), resourceVersion behaviour (a
 * global counter bumped on every write, a stale resourceVersion on update → 409 Conflict, a no-op write keeps it),
 * server-side apply (create if absent, merge otherwise, fields a manager stops applying are removed), merge patches,
 * deletion with propagation (owner references) and finalizers, the scale subresource, pod logs, discovery and
 * /version. It is NOT a Kubernetes: no controller runs, so nothing creates pods — a test calls `simulatePods` to
 * play the Deployment/StatefulSet controllers and the kubelet. Validation covers only a subset (see validation.ts),
 * strategic merge patch is treated as a JSON merge patch, lists are atomic under apply, and apply conflicts between
 * field managers are not modelled. The same tests run against a real cluster when KUBECONFIG is set.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import {
  clone,
  deepEqual,
  isObject,
  type Json,
  type JsonObject,
  mergePatch,
  serverSideApply,
} from './merge.ts';
import {
  ARGO_APPLICATION,
  apiVersionOf,
  BUILTIN_RESOURCES,
  qualifiedName,
  type ResourceDef,
  ResourceTable,
} from './resources.ts';
import { matches, matchesFields, parseSelector, SelectorError } from './selectors.ts';
import { validate } from './validation.ts';

export interface FakeKubernetesOptions {
  /** Namespaces that exist from the start (default: default, kube-system, kube-public, and argocd with Argo CD). */
  namespaces?: string[];
  /** Whether Argo CD's Application CRD is installed (default true). */
  argoCd?: boolean;
}

export interface SimulatedPods {
  /** How many pods (default: the workload's spec.replicas). */
  count?: number;
  /** How many of them are ready (default: all of them, none when a container is waiting). */
  ready?: number;
  /** A container waiting in every pod: CrashLoopBackOff, ErrImagePull, ImagePullBackOff, ContainerCreating, … */
  waiting?: { container?: string; reason: string; message?: string };
  /** Restart count of the containers (default 0; 4 for the one in CrashLoopBackOff). */
  restartCount?: number;
}

export interface Fault {
  method?: string;
  /** A substring or pattern of the request path. */
  path?: string | RegExp;
  /** Answer with this status (default 500 InternalError)… */
  status?: number;
  reason?: string;
  message?: string;
  /** …or drop the connection without answering. */
  drop?: boolean;
  /** How many matching requests fail (default 1). */
  times?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  contentType: string;
}

interface LogEntry {
  ts: string;
  line: string;
}

type Handler = (res: ServerResponse) => void;

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: JsonObject,
  ) {
    super(message);
  }
}

const STATUS_REASON: Record<number, string> = {
  400: 'BadRequest',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

/** Waiting reasons under which the kubelet has no log to serve yet. */
const NOT_STARTED = new Set(['ContainerCreating', 'PodInitializing', 'ErrImagePull', 'ImagePullBackOff']);

function statusBody(code: number, reason: string, message: string, details?: JsonObject): JsonObject {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

function nowSeconds(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

let nanoCounter = 0;

/** RFC 3339 with nanoseconds, strictly increasing within the process (as a kubelet's log timestamps are). */
function nanoTimestamp(date = new Date()): string {
  nanoCounter = (nanoCounter + 1) % 1_000_000;
  const nanos = String(nanoCounter).padStart(6, '0');
  return date.toISOString().replace(/\.(\d{3})Z$/, (_, ms: string) => `.${ms}${nanos}Z`);
}

function obj(value: Json | undefined): JsonObject {
  return isObject(value) ? value : {};
}

function meta(o: JsonObject): JsonObject {
  if (!isObject(o.metadata)) o.metadata = {};
  return o.metadata as JsonObject;
}

function str(value: Json | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function shortHash(): string {
  return randomBytes(5).toString('hex').slice(0, 10);
}

export class FakeKubernetes {
  readonly requests: RecordedRequest[] = [];
  private readonly table: ResourceTable;
  private readonly store = new Map<string, { def: ResourceDef; obj: JsonObject }>();
  /** key → field manager → the configuration it last applied. */
  private readonly applied = new Map<string, Map<string, JsonObject>>();
  private readonly logs = new Map<string, LogEntry[]>();
  private readonly followers = new Map<string, Set<ServerResponse>>();
  private readonly metrics = new Map<string, JsonObject>();
  private readonly faults: Array<Fault & { remaining: number }> = [];
  private metricsEnabled = false;
  private revision = 100;
  private server: Server | undefined;
  private port = 0;

  constructor(private readonly options: FakeKubernetesOptions = {}) {
    const argo = options.argoCd ?? true;
    this.table = new ResourceTable([...BUILTIN_RESOURCES, ...(argo ? [ARGO_APPLICATION] : [])]);
    const namespaces = options.namespaces ?? [
      'default',
      'kube-system',
      'kube-public',
      ...(argo ? ['argocd'] : []),
    ];
    for (const ns of namespaces) this.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }

  // --- lifecycle -------------------------------------------------------------------------------------------

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.sendStatus(res, 500, 'InternalError', `fake: ${String(err)}`);
        else res.end();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const set of this.followers.values()) for (const res of set) res.end();
    this.followers.clear();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A KubeConfig pointing at this server (plain HTTP on loopback, no credentials). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
      currentContext: 'c',
    });
    return kc;
  }

  // --- test hooks ------------------------------------------------------------------------------------------

  /** The next matching request(s) fail with `status` (or a dropped connection). */
  failNext(fault: Fault): void {
    this.faults.push({ ...fault, remaining: fault.times ?? 1 });
  }

  /** A stored object (a copy), or undefined. */
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): JsonObject | undefined {
    const def = this.table.byKind(apiVersion, kind);
    if (!def) return undefined;
    const found = this.store.get(this.key(def, def.namespaced ? namespace : undefined, name));
    return found ? this.present(found.def, found.obj) : undefined;
  }

  /** Stored objects of a kind (copies), optionally in one namespace and matching a label selector. */
  list(
    apiVersion: string,
    kind: string,
    opts: { namespace?: string; labelSelector?: string } = {},
  ): JsonObject[] {
    const def = this.table.byKind(apiVersion, kind);
    if (!def) return [];
    const requirements = parseSelector(opts.labelSelector);
    return this.objectsOf(def, opts.namespace)
      .filter((o) => matches(requirements, obj(meta(o).labels) as Record<string, string>))
      .map((o) => this.present(def, o));
  }

  /** Every stored object carrying the label (any kind, any namespace). */
  labelled(labelSelector: string): JsonObject[] {
    const requirements = parseSelector(labelSelector);
    return [...this.store.values()]
      .filter(({ obj: o }) => matches(requirements, obj(meta(o).labels) as Record<string, string>))
      .map(({ def, obj: o }) => this.present(def, o));
  }

  /** Stores an object directly, bypassing HTTP (as if some earlier client had created it). */
  seed(object: JsonObject): JsonObject {
    const def = this.table.byKind(str(object.apiVersion) ?? '', str(object.kind) ?? '');
    if (!def) throw new Error(`fake: unknown kind ${String(object.kind)}`);
    const ns = def.namespaced ? (str(meta(object).namespace) ?? 'default') : undefined;
    const created = this.prepareNew(def, clone(object), ns);
    this.store.set(this.key(def, ns, str(meta(created).name) ?? ''), { def, obj: created });
    return this.present(def, created);
  }

  /** Registers a resource the way installing a CRD would. */
  addResource(def: ResourceDef): void {
    this.table.add(def);
  }

  /**
   * Plays the workload controller and the kubelet for a Deployment or StatefulSet: replaces the pods it owns with
   * `count` pods built from its template (labels, containers), sets their readiness and container states, and
   * updates the workload's status counts. For a StatefulSet, also creates the claims of its volumeClaimTemplates.
   */
  simulatePods(namespace: string, workloadName: string, sim: SimulatedPods = {}): string[] {
    const found =
      this.store.get(this.key(this.def('apps/v1', 'Deployment'), namespace, workloadName)) ??
      this.store.get(this.key(this.def('apps/v1', 'StatefulSet'), namespace, workloadName));
    if (!found) throw new Error(`fake: no Deployment or StatefulSet ${namespace}/${workloadName}`);
    const workload = found.obj;
    const kind = str(workload.kind) ?? '';
    const uid = str(meta(workload).uid) ?? '';
    const podDef = this.def('v1', 'Pod');
    for (const pod of this.objectsOf(podDef, namespace)) {
      if (this.ownedBy(pod, uid)) this.remove(podDef, pod);
    }

    const spec = obj(workload.spec);
    const template = obj(spec.template);
    const templateMeta = obj(template.metadata);
    const podSpec = obj(template.spec);
    const count = sim.count ?? (typeof spec.replicas === 'number' ? spec.replicas : 1);
    const waiting = sim.waiting;
    const ready = Math.min(count, sim.ready ?? (waiting ? 0 : count));
    const restartCount = sim.restartCount ?? 0;
    const started = nowSeconds();
    const hash = shortHash();
    const names: string[] = [];

    for (let i = 0; i < count; i++) {
      const name =
        kind === 'StatefulSet'
          ? `${workloadName}-${i}`
          : `${workloadName}-${hash}-${shortHash().slice(0, 5)}`;
      const isReady = i < ready;
      const containers = Array.isArray(podSpec.containers) ? podSpec.containers.map(obj) : [];
      const inits = Array.isArray(podSpec.initContainers) ? podSpec.initContainers.map(obj) : [];
      const stuck = (c: JsonObject) =>
        !!waiting && (waiting.container ? c.name === waiting.container : c === containers[0]);
      const pending = !!waiting && NOT_STARTED.has(waiting.reason);
      const containerStatuses: Json[] = containers.map((c) => {
        const status: JsonObject = {
          name: c.name ?? '',
          image: c.image ?? '',
          ready: isReady && !stuck(c),
          restartCount:
            stuck(c) && waiting?.reason === 'CrashLoopBackOff' ? (sim.restartCount ?? 4) : restartCount,
          started: !stuck(c),
          state:
            stuck(c) && waiting
              ? { waiting: { reason: waiting.reason, message: waiting.message ?? `fake: ${waiting.reason}` } }
              : { running: { startedAt: started } },
        };
        if (stuck(c) && waiting?.reason === 'CrashLoopBackOff') {
          status.lastState = { terminated: { exitCode: 1, reason: 'Error', finishedAt: started } };
        }
        return status;
      });
      const initContainerStatuses: Json[] = inits.map((c) => ({
        name: c.name ?? '',
        image: c.image ?? '',
        ready: true,
        restartCount: 0,
        state: { terminated: { exitCode: 0, reason: 'Completed', finishedAt: started } },
      }));
      const pod: JsonObject = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name,
          namespace,
          labels: clone(obj(templateMeta.labels)),
          annotations: clone(obj(templateMeta.annotations)),
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind,
              name: workloadName,
              uid,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: { ...clone(podSpec), nodeName: 'fake-node' },
        status: {
          phase: pending ? 'Pending' : 'Running',
          podIP: `10.244.0.${10 + i}`,
          startTime: started,
          conditions: [
            { type: 'PodScheduled', status: 'True' },
            { type: 'Ready', status: isReady ? 'True' : 'False' },
          ],
          containerStatuses,
          ...(inits.length > 0 ? { initContainerStatuses } : {}),
        },
      };
      const created = this.prepareNew(podDef, pod, namespace);
      this.store.set(this.key(podDef, namespace, name), { def: podDef, obj: created });
      names.push(name);

      if (kind === 'StatefulSet') this.simulateClaims(workload, namespace, i);
    }

    const status: JsonObject = {
      observedGeneration: meta(workload).generation ?? 1,
      replicas: count,
      readyReplicas: ready,
      updatedReplicas: count,
      availableReplicas: ready,
    };
    if (kind === 'StatefulSet') status.currentReplicas = count;
    workload.status = status;
    this.bump(workload);
    return names;
  }

  /** Adds a line to a container's log (what the kubelet would serve); followers see it at once. */
  appendLog(namespace: string, pod: string, container: string, line: string, ts = nanoTimestamp()): void {
    const key = `${namespace}/${pod}/${container}`;
    const entries = this.logs.get(key) ?? [];
    entries.push({ ts, line });
    this.logs.set(key, entries);
    for (const res of this.followers.get(key) ?? []) res.write(`${ts} ${line}\n`);
  }

  /** Ends the followed log streams of a pod (as when its containers stop). */
  endLogs(namespace: string, pod: string): void {
    for (const [key, set] of this.followers) {
      if (!key.startsWith(`${namespace}/${pod}/`)) continue;
      for (const res of set) res.end();
      this.followers.delete(key);
    }
  }

  /** Breaks the followed log streams of a pod without ending them (as when the connection to the API server drops). */
  dropLogs(namespace: string, pod: string): void {
    for (const [key, set] of this.followers) {
      if (!key.startsWith(`${namespace}/${pod}/`)) continue;
      for (const res of set) res.destroy();
      this.followers.delete(key);
    }
  }

  /** Makes metrics.k8s.io available (it answers 404 until then) with this usage for a pod. */
  seedMetrics(
    namespace: string,
    pod: string,
    containers: Record<string, { cpu: string; memory: string }>,
  ): void {
    this.metricsEnabled = true;
    this.metrics.set(`${namespace}/${pod}`, {
      kind: 'PodMetrics',
      apiVersion: 'metrics.k8s.io/v1beta1',
      metadata: { name: pod, namespace, creationTimestamp: nowSeconds() },
      timestamp: nowSeconds(),
      window: '30s',
      containers: Object.entries(containers).map(([name, usage]) => ({ name, usage })),
    });
  }

  /** Removes finalizers from an object being deleted, as its controller would; it is then gone. */
  finalize(apiVersion: string, kind: string, namespace: string | undefined, name: string): void {
    const def = this.def(apiVersion, kind);
    const key = this.key(def, def.namespaced ? namespace : undefined, name);
    const found = this.store.get(key);
    if (!found) return;
    delete meta(found.obj).finalizers;
    if (meta(found.obj).deletionTimestamp) this.remove(def, found.obj, 'Background');
  }

  // --- HTTP ------------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = (req.method ?? 'GET').toUpperCase();
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    this.requests.push({ method, path: url.pathname, query: url.search, contentType });
    const raw = await readBody(req);

    const fault = this.takeFault(method, url.pathname);
    if (fault) {
      if (fault.drop) {
        req.socket.destroy();
        return;
      }
      const code = fault.status ?? 500;
      this.sendStatus(
        res,
        code,
        fault.reason ?? STATUS_REASON[code] ?? 'InternalError',
        fault.message ?? 'fake: injected failure',
      );
      return;
    }

    try {
      const handler = this.route(method, url, contentType, raw);
      handler(res);
    } catch (err) {
      if (err instanceof HttpError) {
        if (err.code === 404 && err.reason === 'PageNotFound') {
          res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('404 page not found\n');
          return;
        }
        this.sendStatus(res, err.code, err.reason, err.message, err.details);
        return;
      }
      if (err instanceof SelectorError) {
        this.sendStatus(res, 400, 'BadRequest', err.message);
        return;
      }
      throw err;
    }
  }

  private route(method: string, url: URL, contentType: string, raw: string): Handler {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (path === '/version' && method === 'GET') {
      return this.json(200, {
        major: '1',
        minor: '31',
        gitVersion: 'v1.31.0-fake',
        gitCommit: 'fake',
        gitTreeState: 'clean',
        buildDate: '2024-08-13T00:00:00Z',
        goVersion: 'go1.22.5',
        compiler: 'gc',
        platform: 'linux/amd64',
      });
    }
    if (path === '/api' && method === 'GET') {
      return this.json(200, {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }],
      });
    }
    if (path === '/apis' && method === 'GET') {
      const groups = [...this.table.groupVersions()].map(([name, versions]) => this.apiGroup(name, versions));
      if (this.metricsEnabled) groups.push(this.apiGroup('metrics.k8s.io', ['v1beta1']));
      return this.json(200, { kind: 'APIGroupList', apiVersion: 'v1', groups });
    }
    if (parts[0] === 'api' && parts[1] === 'v1' && parts.length === 2 && method === 'GET') {
      return this.json(200, this.table.resourceList('', 'v1'));
    }
    if (parts[0] === 'apis' && parts[1] === 'metrics.k8s.io') return this.metricsRoute(method, parts);
    if (parts[0] === 'apis' && parts.length === 2 && method === 'GET') {
      const versions = this.table.groupVersions().get(parts[1] ?? '');
      if (!versions) throw new HttpError(404, 'PageNotFound', '');
      return this.json(200, {
        kind: 'APIGroup',
        apiVersion: 'v1',
        ...this.apiGroup(parts[1] ?? '', versions),
      });
    }
    if (parts[0] === 'apis' && parts.length === 3 && method === 'GET') {
      if (!this.table.hasGroupVersion(parts[1] ?? '', parts[2] ?? ''))
        throw new HttpError(404, 'PageNotFound', '');
      return this.json(200, this.table.resourceList(parts[1] ?? '', parts[2] ?? ''));
    }

    let group: string;
    let version: string;
    let rest: string[];
    if (parts[0] === 'api' && parts[1] === 'v1') {
      group = '';
      version = 'v1';
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 4) {
      group = parts[1] ?? '';
      version = parts[2] ?? '';
      rest = parts.slice(3);
    } else {
      throw new HttpError(404, 'PageNotFound', '');
    }

    let namespace: string | undefined;
    let def: ResourceDef | undefined;
    let name: string | undefined;
    let sub: string | undefined;
    const nsDef =
      rest[0] === 'namespaces' && rest.length >= 3
        ? this.table.byPlural(group, version, rest[2] ?? '')
        : undefined;
    if (nsDef?.namespaced) {
      namespace = rest[1];
      def = nsDef;
      name = rest[3];
      sub = rest[4];
      if (rest.length > 5) throw new HttpError(404, 'PageNotFound', '');
    } else {
      def = this.table.byPlural(group, version, rest[0] ?? '');
      name = rest[1];
      sub = rest[2];
      if (rest.length > 3) throw new HttpError(404, 'PageNotFound', '');
    }
    if (!def) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    if (!def.namespaced && namespace)
      throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    if (def.namespaced && name && !namespace)
      throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    if (sub && !(def.subresources as string[]).includes(sub)) {
      throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    }
    const query = url.searchParams;
    const d = def;

    if (!name) {
      if (method === 'GET') {
        if (query.get('watch') === 'true' || query.get('watch') === '1') {
          throw new HttpError(405, 'MethodNotAllowed', 'fake: watch is not supported');
        }
        return this.json(200, this.listResponse(d, namespace, query));
      }
      if (method === 'POST') {
        if (d.namespaced && !namespace)
          throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
        return this.json(201, this.create(d, namespace, this.parseBody(raw, contentType), query));
      }
      if (method === 'DELETE') return this.json(200, this.deleteCollection(d, namespace, query));
      throw new HttpError(
        405,
        'MethodNotAllowed',
        `the server does not allow this method on the requested resource`,
      );
    }

    if (sub === 'log') {
      if (method !== 'GET')
        throw new HttpError(
          405,
          'MethodNotAllowed',
          'the server does not allow this method on the requested resource',
        );
      return this.podLog(namespace ?? '', name, query);
    }
    if (sub === 'scale') return this.scaleRoute(d, namespace, name, method, contentType, raw);
    if (sub === 'status') return this.statusRoute(d, namespace, name, method, contentType, raw);

    switch (method) {
      case 'GET':
        return this.json(200, this.present(d, this.mustGet(d, namespace, name)));
      case 'PUT':
        return this.json(200, this.replace(d, namespace, name, this.parseBody(raw, contentType)));
      case 'PATCH': {
        const { code, object } = this.patch(d, namespace, name, contentType, raw, query);
        return this.json(code, object);
      }
      case 'DELETE': {
        const body = raw.trim() ? obj(this.parseBody(raw, 'application/json')) : {};
        const policy = query.get('propagationPolicy') ?? str(body.propagationPolicy) ?? 'Background';
        return this.json(200, this.delete(d, namespace, name, policy, body));
      }
      default:
        throw new HttpError(
          405,
          'MethodNotAllowed',
          'the server does not allow this method on the requested resource',
        );
    }
  }

  // --- verbs -----------------------------------------------------------------------------------------------

  private listResponse(def: ResourceDef, namespace: string | undefined, query: URLSearchParams): JsonObject {
    const requirements = parseSelector(query.get('labelSelector'));
    const fieldSelector = query.get('fieldSelector');
    let items = this.objectsOf(def, namespace)
      .filter((o) => matches(requirements, obj(meta(o).labels) as Record<string, string>))
      .filter((o) => matchesFields(fieldSelector, o as { metadata?: Record<string, unknown> }))
      .sort((a, b) =>
        `${meta(a).namespace}/${meta(a).name}`.localeCompare(`${meta(b).namespace}/${meta(b).name}`),
      );
    const offset =
      Number(query.get('continue') ? Buffer.from(query.get('continue') ?? '', 'base64url').toString() : 0) ||
      0;
    const limit = Number(query.get('limit') ?? 0);
    const listMeta: JsonObject = { resourceVersion: String(this.revision) };
    items = items.slice(offset);
    if (limit > 0 && items.length > limit) {
      listMeta.continue = Buffer.from(String(offset + limit)).toString('base64url');
      listMeta.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
    }
    return {
      kind: `${def.kind}List`,
      apiVersion: apiVersionOf(def),
      metadata: listMeta,
      // Like the real server, list items carry no apiVersion/kind.
      items: items.map((o) => {
        const copy = this.present(def, o);
        delete copy.apiVersion;
        delete copy.kind;
        return copy;
      }),
    };
  }

  private create(
    def: ResourceDef,
    namespace: string | undefined,
    body: Json,
    query: URLSearchParams,
  ): JsonObject {
    const object = this.checkBody(def, body, namespace, undefined);
    const m = meta(object);
    if (!str(m.name) && str(m.generateName))
      m.name = `${m.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
    const name = str(m.name) ?? '';
    if (this.store.has(this.key(def, namespace, name))) {
      throw new HttpError(
        409,
        'AlreadyExists',
        `${qualifiedName(def)} "${name}" already exists`,
        this.details(def, name),
      );
    }
    this.requireNamespace(def, namespace);
    const created = this.prepareNew(def, object, namespace);
    this.validateOrThrow(def, created);
    if (query.get('dryRun') !== 'All') this.commitNew(def, namespace, created);
    return this.present(def, created);
  }

  private replace(def: ResourceDef, namespace: string | undefined, name: string, body: Json): JsonObject {
    const current = this.mustGet(def, namespace, name);
    const object = this.checkBody(def, body, namespace, name);
    const rv = str(meta(object).resourceVersion);
    if (!rv) {
      throw new HttpError(
        422,
        'Invalid',
        `${def.kind}.${def.group || 'core'} "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`,
        this.details(def, name),
      );
    }
    this.checkVersion(def, current, rv, name);
    const next = this.carryServerFields(def, current, object);
    return this.commitUpdate(def, current, next);
  }

  private patch(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    contentType: string,
    raw: string,
    query: URLSearchParams,
  ): { code: number; object: JsonObject } {
    if (contentType === 'application/apply-patch+yaml') {
      const manager = query.get('fieldManager');
      if (!manager) {
        throw new HttpError(
          422,
          'Invalid',
          'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
        );
      }
      const applied = this.checkBody(def, this.parseBody(raw, contentType), namespace, name);
      for (const field of [
        'resourceVersion',
        'uid',
        'creationTimestamp',
        'generation',
        'managedFields',
        'deletionTimestamp',
      ]) {
        if (field === 'resourceVersion') continue;
        delete meta(applied)[field];
      }
      if (def.subresources.includes('status')) delete applied.status;
      const key = this.key(def, namespace, name);
      const existing = this.store.get(key);
      const byManager = this.applied.get(key) ?? new Map<string, JsonObject>();
      const rv = str(meta(applied).resourceVersion);
      delete meta(applied).resourceVersion;
      if (!existing) {
        if (rv)
          throw new HttpError(
            409,
            'Conflict',
            `Operation cannot be fulfilled on ${qualifiedName(def)} "${name}": the object does not exist`,
            this.details(def, name),
          );
        this.requireNamespace(def, namespace);
        const created = this.prepareNew(def, clone(applied), namespace);
        this.validateOrThrow(def, created);
        this.commitNew(def, namespace, created);
        byManager.set(manager, applied);
        this.applied.set(key, byManager);
        return { code: 201, object: this.present(def, created) };
      }
      if (rv) this.checkVersion(def, existing.obj, rv, name);
      const merged = serverSideApply(existing.obj, byManager.get(manager), applied);
      const next = this.carryServerFields(def, existing.obj, merged);
      const result = this.commitUpdate(def, existing.obj, next);
      byManager.set(manager, applied);
      this.applied.set(key, byManager);
      return { code: 200, object: result };
    }

    const current = this.mustGet(def, namespace, name);
    let next: JsonObject;
    if (
      contentType === 'application/merge-patch+json' ||
      contentType === 'application/strategic-merge-patch+json'
    ) {
      const patch = this.parseBody(raw, contentType);
      if (!isObject(patch))
        throw new HttpError(400, 'BadRequest', 'the body of the request must be a JSON object');
      const rv = str(obj(patch.metadata).resourceVersion);
      if (rv) this.checkVersion(def, current, rv, name);
      next = mergePatch(current, patch) as JsonObject;
    } else if (contentType === 'application/json-patch+json') {
      next = applyJsonPatch(current, this.parseBody(raw, contentType));
    } else {
      throw new HttpError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`,
      );
    }
    return { code: 200, object: this.commitUpdate(def, current, this.carryServerFields(def, current, next)) };
  }

  private delete(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    policy: string,
    options: JsonObject,
  ): JsonObject {
    const current = this.mustGet(def, namespace, name);
    const preconditions = obj(options.preconditions);
    if (
      str(preconditions.resourceVersion) &&
      preconditions.resourceVersion !== meta(current).resourceVersion
    ) {
      throw new HttpError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${qualifiedName(def)} "${name}": the ResourceVersion in the precondition (${preconditions.resourceVersion}) does not match the ResourceVersion in record (${meta(current).resourceVersion}). The object might have been modified`,
        this.details(def, name),
      );
    }
    const finalizers = Array.isArray(meta(current).finalizers) ? (meta(current).finalizers as Json[]) : [];
    if (finalizers.length > 0) {
      if (!meta(current).deletionTimestamp) {
        meta(current).deletionTimestamp = nowSeconds();
        meta(current).deletionGracePeriodSeconds = 0;
        this.bump(current);
      }
      return this.present(def, current);
    }
    const last = this.present(def, current);
    this.remove(def, current, policy);
    return last;
  }

  private deleteCollection(
    def: ResourceDef,
    namespace: string | undefined,
    query: URLSearchParams,
  ): JsonObject {
    const listed = this.listResponse(def, namespace, query);
    for (const item of (listed.items as Json[]).map(obj)) {
      const found = this.store.get(this.key(def, str(meta(item).namespace), str(meta(item).name) ?? ''));
      if (found) this.remove(def, found.obj, query.get('propagationPolicy') ?? 'Background');
    }
    return { ...listed, items: listed.items ?? [] };
  }

  // --- subresources ----------------------------------------------------------------------------------------

  private scaleView(o: JsonObject): JsonObject {
    const m = meta(o);
    const spec = obj(o.spec);
    const selector = Object.entries(obj(obj(spec.selector).matchLabels))
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(',');
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: m.name ?? '',
        namespace: m.namespace ?? '',
        uid: m.uid ?? '',
        resourceVersion: m.resourceVersion ?? '',
        creationTimestamp: m.creationTimestamp ?? '',
      },
      spec: { replicas: typeof spec.replicas === 'number' ? spec.replicas : 1 },
      status: {
        replicas: typeof obj(o.status).replicas === 'number' ? (obj(o.status).replicas as number) : 0,
        selector,
      },
    };
  }

  private scaleRoute(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    method: string,
    contentType: string,
    raw: string,
  ): Handler {
    const current = this.mustGet(def, namespace, name);
    if (method === 'GET') return this.json(200, this.scaleView(current));
    let desired: JsonObject;
    if (method === 'PUT') {
      desired = obj(this.parseBody(raw, contentType));
      const rv = str(meta(desired).resourceVersion);
      if (rv) this.checkVersion(def, current, rv, name);
    } else if (method === 'PATCH') {
      if (contentType === 'application/json-patch+json') {
        desired = applyJsonPatch(this.scaleView(current), this.parseBody(raw, contentType));
      } else if (
        contentType === 'application/merge-patch+json' ||
        contentType === 'application/strategic-merge-patch+json' ||
        contentType === 'application/apply-patch+yaml'
      ) {
        const patch = this.parseBody(raw, contentType);
        const rv = str(obj(obj(patch).metadata).resourceVersion);
        if (rv) this.checkVersion(def, current, rv, name);
        desired = mergePatch(this.scaleView(current), patch) as JsonObject;
      } else {
        throw new HttpError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format');
      }
    } else {
      throw new HttpError(
        405,
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
      );
    }
    const replicas = obj(desired.spec).replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw new HttpError(
        422,
        'Invalid',
        `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
        this.details(def, name),
      );
    }
    const next = clone(current);
    next.spec = { ...obj(next.spec), replicas };
    const updated = this.commitUpdate(def, current, next);
    return this.json(200, this.scaleView(updated));
  }

  private statusRoute(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    method: string,
    contentType: string,
    raw: string,
  ): Handler {
    const current = this.mustGet(def, namespace, name);
    if (method === 'GET') return this.json(200, this.present(def, current));
    const body = this.parseBody(raw, contentType);
    let status: Json;
    if (method === 'PUT') status = obj(body).status ?? {};
    else if (method === 'PATCH') status = obj(mergePatch(current, body)).status ?? {};
    else
      throw new HttpError(
        405,
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
      );
    const next = clone(current);
    next.status = status;
    this.store.set(this.key(def, namespace, name), { def, obj: next });
    if (!deepEqual(current.status, status)) this.bump(next);
    return this.json(200, this.present(def, next));
  }

  private podLog(namespace: string, name: string, query: URLSearchParams): Handler {
    const podDef = this.def('v1', 'Pod');
    const pod = this.mustGet(podDef, namespace, name);
    const spec = obj(pod.spec);
    const containers = (Array.isArray(spec.containers) ? spec.containers : []).map(
      (c) => str(obj(c).name) ?? '',
    );
    const inits = (Array.isArray(spec.initContainers) ? spec.initContainers : []).map(
      (c) => str(obj(c).name) ?? '',
    );
    let container = query.get('container') ?? '';
    if (!container) {
      if (containers.length !== 1) {
        throw new HttpError(
          400,
          'BadRequest',
          `a container name must be specified for pod ${name}, choose one of: [${containers.join(' ')}]${inits.length ? ` or one of the init containers: [${inits.join(' ')}]` : ''}`,
        );
      }
      container = containers[0] ?? '';
    }
    if (![...containers, ...inits].includes(container)) {
      throw new HttpError(400, 'BadRequest', `container ${container} is not valid for pod ${name}`);
    }
    const statuses = [
      ...(Array.isArray(obj(pod.status).containerStatuses)
        ? (obj(pod.status).containerStatuses as Json[])
        : []),
      ...(Array.isArray(obj(pod.status).initContainerStatuses)
        ? (obj(pod.status).initContainerStatuses as Json[])
        : []),
    ].map(obj);
    const waiting = str(obj(obj(statuses.find((s) => s.name === container)?.state).waiting).reason);
    if (waiting && NOT_STARTED.has(waiting)) {
      throw new HttpError(
        400,
        'BadRequest',
        `container "${container}" in pod "${name}" is waiting to start: ${waiting}`,
      );
    }

    const key = `${namespace}/${name}/${container}`;
    let entries = [...(this.logs.get(key) ?? [])];
    const sinceTime = query.get('sinceTime');
    const sinceSeconds = Number(query.get('sinceSeconds') ?? 0);
    if (sinceTime) entries = entries.filter((e) => Date.parse(e.ts) >= Date.parse(sinceTime));
    if (sinceSeconds > 0)
      entries = entries.filter((e) => Date.parse(e.ts) >= Date.now() - sinceSeconds * 1000);
    const tail = Number(query.get('tailLines') ?? -1);
    if (tail >= 0) entries = entries.slice(Math.max(0, entries.length - tail));
    const timestamps = query.get('timestamps') === 'true';
    const follow = query.get('follow') === 'true';
    return (res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
      for (const e of entries) res.write(timestamps ? `${e.ts} ${e.line}\n` : `${e.line}\n`);
      if (!follow) {
        res.end();
        return;
      }
      // Followers get raw `ts line` writes from appendLog; the provider always asks for timestamps.
      const set = this.followers.get(key) ?? new Set<ServerResponse>();
      set.add(res);
      this.followers.set(key, set);
      res.on('close', () => set.delete(res));
    };
  }

  private metricsRoute(method: string, parts: string[]): Handler {
    if (!this.metricsEnabled) throw new HttpError(404, 'PageNotFound', '');
    if (method !== 'GET')
      throw new HttpError(
        405,
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
      );
    if (parts.length === 2) {
      return this.json(200, {
        kind: 'APIGroup',
        apiVersion: 'v1',
        ...this.apiGroup('metrics.k8s.io', ['v1beta1']),
      });
    }
    if (parts.length === 3 && parts[2] === 'v1beta1') {
      return this.json(200, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: 'metrics.k8s.io/v1beta1',
        resources: [
          { name: 'pods', singularName: '', namespaced: true, kind: 'PodMetrics', verbs: ['get', 'list'] },
          { name: 'nodes', singularName: '', namespaced: false, kind: 'NodeMetrics', verbs: ['get', 'list'] },
        ],
      });
    }
    // /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods[/{name}]
    const [, , , nsWord, namespace, resource, name] = parts;
    if (nsWord !== 'namespaces' || resource !== 'pods' || !namespace)
      throw new HttpError(404, 'PageNotFound', '');
    if (name) {
      const found = this.metrics.get(`${namespace}/${name}`);
      if (!found)
        throw new HttpError(404, 'NotFound', `podmetrics.metrics.k8s.io "${name}" not found`, {
          name,
          group: 'metrics.k8s.io',
          kind: 'pods',
        });
      return this.json(200, clone(found));
    }
    const items = [...this.metrics.entries()]
      .filter(([k]) => k.startsWith(`${namespace}/`))
      .map(([, v]) => clone(v));
    return this.json(200, {
      kind: 'PodMetricsList',
      apiVersion: 'metrics.k8s.io/v1beta1',
      metadata: {},
      items,
    });
  }

  // --- storage ---------------------------------------------------------------------------------------------

  private def(apiVersion: string, kind: string): ResourceDef {
    const def = this.table.byKind(apiVersion, kind);
    if (!def) throw new Error(`fake: unknown kind ${apiVersion} ${kind}`);
    return def;
  }

  private key(def: ResourceDef, namespace: string | undefined, name: string): string {
    return `${def.group}|${def.plural}|${def.namespaced ? (namespace ?? '') : ''}|${name}`;
  }

  private objectsOf(def: ResourceDef, namespace: string | undefined): JsonObject[] {
    const prefix = `${def.group}|${def.plural}|`;
    const out: JsonObject[] = [];
    for (const [key, value] of this.store) {
      if (!key.startsWith(prefix)) continue;
      if (namespace !== undefined && def.namespaced && meta(value.obj).namespace !== namespace) continue;
      out.push(value.obj);
    }
    return out;
  }

  private mustGet(def: ResourceDef, namespace: string | undefined, name: string): JsonObject {
    const found = this.store.get(this.key(def, namespace, name));
    if (!found)
      throw new HttpError(
        404,
        'NotFound',
        `${qualifiedName(def)} "${name}" not found`,
        this.details(def, name),
      );
    return found.obj;
  }

  private details(def: ResourceDef, name: string): JsonObject {
    return { name, ...(def.group ? { group: def.group } : {}), kind: def.plural };
  }

  private requireNamespace(def: ResourceDef, namespace: string | undefined): void {
    if (!def.namespaced || !namespace) return;
    const nsDef = this.def('v1', 'Namespace');
    const ns = this.store.get(this.key(nsDef, undefined, namespace));
    if (!ns)
      throw new HttpError(404, 'NotFound', `namespaces "${namespace}" not found`, {
        name: namespace,
        kind: 'namespaces',
      });
    if (meta(ns.obj).deletionTimestamp) {
      throw new HttpError(
        403,
        'Forbidden',
        `unable to create new content in namespace ${namespace} because it is being terminated`,
      );
    }
  }

  /** The body of a write: a JSON object of the URL's kind, name and namespace (400 otherwise). */
  private checkBody(
    def: ResourceDef,
    body: Json,
    namespace: string | undefined,
    name: string | undefined,
  ): JsonObject {
    if (!isObject(body)) throw new HttpError(400, 'BadRequest', 'the body of the request must be an object');
    const object = clone(body);
    if (object.kind !== undefined && object.kind !== def.kind) {
      throw new HttpError(
        400,
        'BadRequest',
        `the API version in the data (${String(object.apiVersion)}) does not match the expected API version (${apiVersionOf(def)}) or kind ${String(object.kind)} is not ${def.kind}`,
      );
    }
    if (object.apiVersion !== undefined && object.apiVersion !== apiVersionOf(def)) {
      throw new HttpError(
        400,
        'BadRequest',
        `the API version in the data (${String(object.apiVersion)}) does not match the expected API version (${apiVersionOf(def)})`,
      );
    }
    object.apiVersion = apiVersionOf(def);
    object.kind = def.kind;
    const m = meta(object);
    if (name !== undefined) {
      if (m.name === undefined) m.name = name;
      else if (m.name !== name) {
        throw new HttpError(
          400,
          'BadRequest',
          `the name of the object (${String(m.name)}) does not match the name on the URL (${name})`,
        );
      }
    }
    if (def.namespaced) {
      if (m.namespace === undefined || m.namespace === '') m.namespace = namespace ?? '';
      else if (m.namespace !== namespace) {
        throw new HttpError(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
    } else {
      delete m.namespace;
    }
    return object;
  }

  private checkVersion(def: ResourceDef, current: JsonObject, rv: string, name: string): void {
    if (rv !== meta(current).resourceVersion) {
      throw new HttpError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${qualifiedName(def)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        this.details(def, name),
      );
    }
  }

  private validateOrThrow(def: ResourceDef, next: JsonObject, previous?: JsonObject): void {
    const errors = validate(def.kind, next, previous);
    if (errors.length === 0) return;
    const name = str(meta(next).name) ?? '';
    const message = `${def.kind}${def.group ? `.${def.group}` : ''} "${name}" is invalid: ${errors.map((e) => `${e.field}: ${e.message}`).join(', ')}`;
    throw new HttpError(422, 'Invalid', message, {
      ...this.details(def, name),
      kind: def.kind,
      causes: errors.map((e) => ({ reason: e.type, message: e.message, field: e.field })),
    });
  }

  /** Server-set defaults and metadata of a new object. */
  private prepareNew(def: ResourceDef, object: JsonObject, namespace: string | undefined): JsonObject {
    object.apiVersion = apiVersionOf(def);
    object.kind = def.kind;
    const m = meta(object);
    if (def.namespaced) m.namespace = namespace ?? 'default';
    m.uid = randomUUID();
    m.creationTimestamp = nowSeconds();
    m.resourceVersion = String(++this.revision);
    if (object.spec !== undefined) m.generation = 1;
    const spec = obj(object.spec);
    switch (def.kind) {
      case 'Namespace':
        m.labels = { ...obj(m.labels), 'kubernetes.io/metadata.name': str(m.name) ?? '' };
        object.status = { phase: 'Active' };
        break;
      case 'Deployment':
      case 'StatefulSet':
        if (spec.replicas === undefined) spec.replicas = 1;
        object.status = {};
        break;
      case 'Service': {
        if (spec.type === undefined) spec.type = 'ClusterIP';
        if (spec.clusterIP === undefined)
          spec.clusterIP = `10.96.${(this.revision >> 8) & 255}.${this.revision & 255}`;
        spec.clusterIPs = [spec.clusterIP as string];
        if (spec.sessionAffinity === undefined) spec.sessionAffinity = 'None';
        for (const p of Array.isArray(spec.ports) ? spec.ports.map(obj) : []) {
          if (p.protocol === undefined) p.protocol = 'TCP';
          if (p.targetPort === undefined) p.targetPort = p.port ?? 0;
        }
        break;
      }
      case 'PersistentVolumeClaim':
        if (object.status === undefined) object.status = { phase: 'Pending' };
        break;
    }
    return object;
  }

  private commitNew(def: ResourceDef, namespace: string | undefined, object: JsonObject): void {
    this.store.set(this.key(def, namespace, str(meta(object).name) ?? ''), { def, obj: object });
    if (def.kind === 'CustomResourceDefinition') this.registerCrd(object);
  }

  /** Keeps what a client cannot change through the main resource: identity, creation time, status. */
  private carryServerFields(def: ResourceDef, current: JsonObject, next: JsonObject): JsonObject {
    const out = clone(next);
    const m = meta(out);
    const cm = meta(current);
    for (const field of [
      'name',
      'namespace',
      'uid',
      'creationTimestamp',
      'generation',
      'deletionTimestamp',
      'deletionGracePeriodSeconds',
    ]) {
      if (cm[field] === undefined) delete m[field];
      else m[field] = clone(cm[field] as Json);
    }
    m.resourceVersion = cm.resourceVersion ?? '';
    if (def.subresources.includes('status')) {
      if (current.status === undefined) delete out.status;
      else out.status = clone(current.status as Json);
    }
    if (def.kind === 'Service') {
      const spec = obj(out.spec);
      const before = obj(current.spec);
      if (spec.clusterIP === undefined && before.clusterIP !== undefined) spec.clusterIP = before.clusterIP;
      if (spec.clusterIPs === undefined && before.clusterIPs !== undefined)
        spec.clusterIPs = clone(before.clusterIPs);
    }
    return out;
  }

  /** Validates and stores an update; a write that changes nothing keeps the resourceVersion (as the real server). */
  private commitUpdate(def: ResourceDef, current: JsonObject, next: JsonObject): JsonObject {
    this.validateOrThrow(def, next, current);
    const name = str(meta(current).name) ?? '';
    const namespace = str(meta(current).namespace);
    if (deepEqual(next, current)) return this.present(def, current);
    if (!deepEqual(next.spec, current.spec) && meta(next).generation !== undefined) {
      meta(next).generation = Number(meta(current).generation ?? 1) + 1;
    } else if (next.spec !== undefined && meta(next).generation === undefined) {
      meta(next).generation = 1;
    }
    meta(next).resourceVersion = String(++this.revision);
    this.store.set(this.key(def, namespace, name), { def, obj: next });
    if (def.kind === 'CustomResourceDefinition') this.registerCrd(next);
    const finalizers = meta(next).finalizers;
    if (meta(next).deletionTimestamp && (!Array.isArray(finalizers) || finalizers.length === 0)) {
      this.remove(def, next, 'Background');
    }
    return this.present(def, next);
  }

  private bump(object: JsonObject): void {
    meta(object).resourceVersion = String(++this.revision);
  }

  /** Deletes an object; unless orphaning, the garbage collector deletes what it owns (at once, here). */
  private remove(def: ResourceDef, object: JsonObject, policy = 'Background'): void {
    const m = meta(object);
    const key = this.key(def, str(m.namespace), str(m.name) ?? '');
    this.store.delete(key);
    this.applied.delete(key);
    const uid = str(m.uid) ?? '';
    if (def.kind === 'Pod') {
      const prefix = `${m.namespace}/${m.name}/`;
      for (const [k, set] of this.followers) {
        if (!k.startsWith(prefix)) continue;
        for (const res of set) res.end();
        this.followers.delete(k);
      }
      for (const k of [...this.logs.keys()]) if (k.startsWith(prefix)) this.logs.delete(k);
    }
    if (def.kind === 'Namespace') {
      for (const value of [...this.store.values()]) {
        if (value.def.namespaced && meta(value.obj).namespace === m.name)
          this.remove(value.def, value.obj, 'Background');
      }
    }
    if (def.kind === 'CustomResourceDefinition') this.unregisterCrd(object);
    if (policy === 'Orphan') return;
    for (const value of [...this.store.values()]) {
      if (this.ownedBy(value.obj, uid)) this.remove(value.def, value.obj, policy);
    }
  }

  private ownedBy(object: JsonObject, uid: string): boolean {
    const refs = meta(object).ownerReferences;
    return Array.isArray(refs) && refs.some((r) => obj(r).uid === uid);
  }

  private simulateClaims(workload: JsonObject, namespace: string, ordinal: number): void {
    const spec = obj(workload.spec);
    const templates = Array.isArray(spec.volumeClaimTemplates) ? spec.volumeClaimTemplates.map(obj) : [];
    const retention = obj(spec.persistentVolumeClaimRetentionPolicy);
    const pvcDef = this.def('v1', 'PersistentVolumeClaim');
    const name = str(meta(workload).name) ?? '';
    for (const t of templates) {
      const claimName = `${str(meta(t).name)}-${name}-${ordinal}`;
      if (this.store.has(this.key(pvcDef, namespace, claimName))) continue;
      const labels = { ...obj(meta(t).labels), ...obj(obj(spec.selector).matchLabels) };
      const claim: JsonObject = {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: {
          name: claimName,
          namespace,
          labels,
          ...(retention.whenDeleted === 'Delete'
            ? {
                ownerReferences: [
                  {
                    apiVersion: 'apps/v1',
                    kind: 'StatefulSet',
                    name,
                    uid: meta(workload).uid ?? '',
                    controller: true,
                    blockOwnerDeletion: true,
                  },
                ],
              }
            : {}),
        },
        spec: clone(obj(t.spec)),
        status: { phase: 'Bound' },
      };
      this.store.set(this.key(pvcDef, namespace, claimName), {
        def: pvcDef,
        obj: this.prepareNew(pvcDef, claim, namespace),
      });
    }
  }

  private registerCrd(crd: JsonObject): void {
    const spec = obj(crd.spec);
    const names = obj(spec.names);
    const group = str(spec.group);
    const kind = str(names.kind);
    const plural = str(names.plural);
    if (!group || !kind || !plural) return;
    for (const v of Array.isArray(spec.versions) ? spec.versions.map(obj) : []) {
      if (v.served === false || !str(v.name)) continue;
      this.table.add({
        group,
        version: str(v.name) ?? '',
        kind,
        plural,
        singular: str(names.singular) ?? kind.toLowerCase(),
        namespaced: spec.scope !== 'Cluster',
        subresources: isObject(obj(v.subresources).status) ? ['status'] : [],
      });
    }
  }

  private unregisterCrd(crd: JsonObject): void {
    const spec = obj(crd.spec);
    const group = str(spec.group) ?? '';
    const plural = str(obj(spec.names).plural) ?? '';
    for (const v of Array.isArray(spec.versions) ? spec.versions.map(obj) : []) {
      const def = this.table.byPlural(group, str(v.name) ?? '', plural);
      if (!def) continue;
      for (const o of this.objectsOf(def, undefined)) this.remove(def, o, 'Background');
      this.table.remove(group, def.version, plural);
    }
  }

  private present(def: ResourceDef, object: JsonObject): JsonObject {
    const copy = clone(object);
    copy.apiVersion = apiVersionOf(def);
    copy.kind = def.kind;
    return copy;
  }

  private apiGroup(name: string, versions: string[]): JsonObject {
    const list = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
    return { name, versions: list, preferredVersion: list[0] ?? {} };
  }

  // --- plumbing --------------------------------------------------------------------------------------------

  private parseBody(raw: string, contentType: string): Json {
    if (!raw.trim()) throw new HttpError(400, 'BadRequest', 'the body of the request is empty');
    try {
      if (contentType === 'application/apply-patch+yaml') return parseYaml(raw) as Json;
      return JSON.parse(raw) as Json;
    } catch (err) {
      throw new HttpError(400, 'BadRequest', `the body of the request could not be decoded: ${String(err)}`);
    }
  }

  private takeFault(method: string, path: string): Fault | undefined {
    const i = this.faults.findIndex(
      (f) =>
        (!f.method || f.method.toUpperCase() === method) &&
        (!f.path || (typeof f.path === 'string' ? path.includes(f.path) : f.path.test(path))),
    );
    if (i < 0) return undefined;
    const fault = this.faults[i];
    if (!fault) return undefined;
    fault.remaining--;
    if (fault.remaining <= 0) this.faults.splice(i, 1);
    return fault;
  }

  private json(code: number, body: JsonObject): Handler {
    return (res) => {
      const text = JSON.stringify(body);
      res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
  }

  private sendStatus(
    res: ServerResponse,
    code: number,
    reason: string,
    message: string,
    details?: JsonObject,
  ): void {
    this.json(code, statusBody(code, reason, message, details))(res);
  }

  /** The options the fake was built with (for a test's own bookkeeping). */
  get settings(): Readonly<FakeKubernetesOptions> {
    return this.options;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** RFC 6902 add/remove/replace/test (what the generated clients send by default). */
function applyJsonPatch(target: JsonObject, ops: Json): JsonObject {
  if (!Array.isArray(ops)) throw new HttpError(400, 'BadRequest', 'a JSON patch must be an array');
  const doc = clone(target);
  for (const raw of ops) {
    const op = obj(raw);
    const path = (str(op.path) ?? '')
      .split('/')
      .slice(1)
      .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = path.pop();
    if (last === undefined) throw new HttpError(422, 'Invalid', 'the JSON patch path is empty');
    let parent: Json = doc;
    for (const p of path) {
      const next: Json | undefined = Array.isArray(parent)
        ? parent[Number(p)]
        : isObject(parent)
          ? parent[p]
          : undefined;
      if (next === undefined) {
        if (op.op === 'add' && isObject(parent)) {
          parent[p] = {};
          parent = parent[p] as Json;
          continue;
        }
        throw new HttpError(422, 'Invalid', `the JSON patch path ${String(op.path)} does not exist`);
      }
      parent = next;
    }
    const value = op.value ?? null;
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      if (op.op === 'add') parent.splice(index, 0, value);
      else if (op.op === 'remove') parent.splice(index, 1);
      else if (op.op === 'replace') parent[index] = value;
      else if (op.op === 'test' && !deepEqual(parent[index], value))
        throw new HttpError(422, 'Invalid', 'testing value failed');
    } else if (isObject(parent)) {
      if (op.op === 'add' || op.op === 'replace') parent[last] = value;
      else if (op.op === 'remove') delete parent[last];
      else if (op.op === 'test' && !deepEqual(parent[last], value))
        throw new HttpError(422, 'Invalid', 'testing value failed');
    }
    if (!['add', 'remove', 'replace', 'test'].includes(str(op.op) ?? '')) {
      throw new HttpError(
        422,
        'Invalid',
        `the fake supports add, remove, replace and test, not ${String(op.op)}`,
      );
    }
  }
  return doc;
}
