/**
 * A Kubernetes API test server: a real HTTP server on 127.0.0.1 that speaks the kube-apiserver
 * REST protocol well enough for @kubernetes/client-node (informers, typed and custom-object
 * clients) and behaves like kube-apiserver where a controller can tell the difference: one global
 * resourceVersion, optimistic concurrency, finalizers, status subresources, structural-schema
 * pruning and validation of custom resources, label/field selectors, watch streams with
 * bookmarks and 410 Expired after compaction.
 *
 * Tests drive failure modes through controls: compact(), closeAllWatches(), failNextWatches(),
 * inject() (delays, error statuses, connection resets for matching requests), sendBookmarks(),
 * and read what clients did through `requests`.
 *
 * Semantics and the gaps to a real apiserver are listed in README.md next to this file.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { Api, PATCH_TYPES, type DeleteOptions, type FieldValidation, type ListQuery, type WriteOptions } from './api.js';
import {
  ApiError,
  badRequest,
  customStatus,
  expired,
  fe,
  internalError,
  invalid,
  notAcceptable,
  pathNotFound,
  tooLargeResourceVersion,
  unauthorized,
  unsupportedMediaType,
  type Status,
} from './errors.js';
import type { ResourceType } from './resource.js';
import type { HistoryEvent } from './store.js';
import { clone, isPlainObject, parseRv, type KObj } from './util.js';

export type { KObj } from './util.js';

export interface KubeApiServerOptions {
  /** Bearer token written into kubeconfigs (default "cairn-test-token"). */
  token?: string;
  /** Answer 401 to requests without `Authorization: Bearer <token>` (default false: any or no token). */
  requireToken?: boolean;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Garbage-collect dependents whose owners are gone (default true, as in a cluster). */
  garbageCollector?: boolean;
  /** A gracefully deleted pod disappears this many ms later, as if its kubelet confirmed it (default 50; null: never). */
  podTerminationMs?: number | null;
  /** Interval of BOOKMARK events on watches that allow them (default 60 s, like the watch cache). */
  bookmarkIntervalMs?: number;
  /** End every watch after this many seconds unless the client asks for less (default: only client timeoutSeconds). */
  watchTimeoutSeconds?: number;
  /** How long a request for a future resourceVersion waits before 504 (default 3000 ms, the watch cache's wait). */
  tooLargeResourceVersionWaitMs?: number;
  /** History events kept before automatic compaction (default 100000). */
  maxHistory?: number;
  /** Revision the store starts at (default 1). */
  initialResourceVersion?: number;
  /** Clock for timestamps (creationTimestamp, deletionTimestamp, ...). */
  now?: () => Date;
  /** Version reported at /version (default 1.33). */
  kubernetesVersion?: { major: string; minor: string };
}

export interface RequestLogEntry {
  time: Date;
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  contentType?: string;
  /** The bearer token presented, if any. */
  token?: string;
  watch: boolean;
  /** Parsed JSON body of writes. */
  body?: unknown;
  /** HTTP status (for watches: the status of the response head). */
  status?: number;
  /** Status reason of an error answer, e.g. "Conflict". */
  reason?: string;
  /** Server-side detail a real apiserver does not return (e.g. why a JSON patch did not apply). */
  note?: string;
  /** Injected fault that matched, if any. */
  fault?: string;
}

export interface FaultRule {
  /** HTTP method to match (any when absent). */
  method?: string;
  /** A string matches when the path contains it; a RegExp is tested against path + query. */
  path?: string | RegExp;
  /** Only watch requests (true) or only other requests (false). */
  watch?: boolean;
  /** How many requests the rule applies to (default: unlimited). */
  times?: number;
  /** Delay before handling (or before failing). */
  delayMs?: number;
  /** Answer with a Status of this code instead of handling the request. */
  status?: number;
  reason?: string;
  message?: string;
  /** For watches: send 200 and an in-stream ERROR event with the status, then close. */
  inStream?: boolean;
  /** Destroy the connection without an answer. */
  reset?: boolean;
}

export interface FaultHandle {
  remove(): void;
  readonly hits: number;
}

interface ActiveRule extends FaultRule {
  id: number;
  hits: number;
  remaining: number;
}

interface Watcher {
  type: ResourceType;
  res: ServerResponse;
  close(): void;
  bookmark(): void;
}

const JSON_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];
const DEFAULT_TOKEN = 'cairn-test-token';

function reasonFor(code: number): string {
  const reasons: Record<number, string> = {
    400: 'BadRequest',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'NotFound',
    405: 'MethodNotAllowed',
    409: 'Conflict',
    410: 'Expired',
    422: 'Invalid',
    429: 'TooManyRequests',
    500: 'InternalError',
    503: 'ServiceUnavailable',
    504: 'Timeout',
  };
  return reasons[code] ?? 'Unknown';
}

function mediaType(h: string | undefined): string {
  return (h ?? '').split(';')[0].trim().toLowerCase();
}

/** Kubernetes version priority: v1 > v1beta2 > v1beta1 > v1alpha1 > anything else. */
function versionPriority(v: string): number[] {
  const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
  if (!m) return [0, 0, 0];
  const kind = m[2] === undefined ? 3 : m[2] === 'beta' ? 2 : 1;
  return [kind, Number(m[1]), Number(m[3] ?? 0)];
}

function compareVersions(a: string, b: string): number {
  const pa = versionPriority(a);
  const pb = versionPriority(b);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pb[i] - pa[i];
  return a < b ? -1 : a > b ? 1 : 0;
}

export class KubeApiServer {
  readonly api: Api;
  readonly token: string;
  /** Every request, in arrival order. */
  readonly requests: RequestLogEntry[] = [];
  private server!: Server;
  private baseUrl = '';
  private readonly watchers = new Set<Watcher>();
  private rules: ActiveRule[] = [];
  private nextRuleId = 1;
  private readonly opts: KubeApiServerOptions;

  private constructor(opts: KubeApiServerOptions) {
    this.opts = opts;
    this.token = opts.token ?? DEFAULT_TOKEN;
    this.api = new Api({
      now: opts.now ?? (() => new Date()),
      garbageCollector: opts.garbageCollector ?? true,
      podTerminationMs: opts.podTerminationMs === undefined ? 50 : opts.podTerminationMs,
      tooLargeResourceVersionWaitMs: opts.tooLargeResourceVersionWaitMs ?? 3000,
      initialResourceVersion: opts.initialResourceVersion ?? 1,
      maxHistory: opts.maxHistory ?? 100_000,
    });
  }

  static async start(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
    const s = new KubeApiServer(opts);
    await s.listen();
    return s;
  }

  private listen(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        // Last resort; handle() answers errors itself.
        if (!res.headersSent) this.sendStatus(res, internalError(String(e)).status);
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 5000;
    // Deleting a CRD ends the watches on its resources, as the apiserver tears down their storage.
    this.api.store.subscribe((ev) => {
      if (ev.type !== 'DELETED' || ev.storage !== 'apiextensions.k8s.io/customresourcedefinitions') return;
      const storage = `${ev.obj.spec?.group}/${ev.obj.spec?.names?.plural}`;
      for (const w of [...this.watchers]) if (w.type.storage === storage) w.close();
    });
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
        const a = this.server.address() as AddressInfo;
        this.baseUrl = `http://${a.address}:${a.port}`;
        resolve();
      });
    });
  }

  /** http://127.0.0.1:PORT */
  get url(): string {
    return this.baseUrl;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The current global resourceVersion (etcd revision). */
  get resourceVersion(): number {
    return this.api.store.currentRv;
  }

  /** Watches open right now. */
  get watchCount(): number {
    return this.watchers.size;
  }

  async close(): Promise<void> {
    this.api.close();
    for (const w of [...this.watchers]) w.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // -------------------------------------------------------------------------------------------
  // Test controls

  /**
   * Compacts the history up to `rv` (default: now). Watches from an older resourceVersion then
   * get an in-stream 410 Expired; a watch from the compaction point itself still works.
   */
  compact(rv?: number): number {
    this.api.store.compact(rv);
    return this.api.store.compactedRv;
  }

  /** Ends every open watch normally (as a watch timeout would); clients re-watch from their last RV. */
  closeAllWatches(): number {
    const n = this.watchers.size;
    for (const w of [...this.watchers]) w.close();
    return n;
  }

  /** Sends a BOOKMARK now on every watch that allows bookmarks. */
  sendBookmarks(): void {
    for (const w of this.watchers) w.bookmark();
  }

  /** The next `n` watch requests (optionally only those whose path matches) fail with `status`. */
  failNextWatches(n: number, status = 500, o: { inStream?: boolean; path?: string | RegExp; message?: string } = {}): FaultHandle {
    return this.inject({ watch: true, times: n, status, inStream: o.inStream, path: o.path, message: o.message });
  }

  /** Adds a fault rule; rules are checked in the order they were added, the first match applies. */
  inject(rule: FaultRule): FaultHandle {
    const r: ActiveRule = { ...rule, id: this.nextRuleId++, hits: 0, remaining: rule.times ?? Infinity };
    this.rules.push(r);
    return {
      remove: () => {
        this.rules = this.rules.filter((x) => x !== r);
      },
      get hits() {
        return r.hits;
      },
    };
  }

  clearFaults(): void {
    this.rules = [];
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  /** Writes a kubeconfig for this server (http, bearer token) into `dir` and returns its path. */
  writeKubeconfig(dir: string, o: { token?: string; namespace?: string; fileName?: string } = {}): string {
    const file = path.join(dir, o.fileName ?? 'kubeconfig');
    const q = (s: string): string => JSON.stringify(s);
    const token = o.token ?? this.token;
    const lines = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: cairn-test',
      '  cluster:',
      `    server: ${q(this.url)}`,
      // client-node 1.x refuses plain-http servers unless TLS verification is switched off.
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: cairn-test',
      '  user:',
      `    token: ${q(token)}`,
      'contexts:',
      '- name: cairn-test',
      '  context:',
      '    cluster: cairn-test',
      '    user: cairn-test',
      `    namespace: ${q(o.namespace ?? 'default')}`,
      'current-context: cairn-test',
      'preferences: {}',
      '',
    ];
    writeFileSync(file, lines.join('\n'), { mode: 0o600 });
    return file;
  }

  // -------------------------------------------------------------------------------------------
  // Direct access for test setup (same semantics as over HTTP, without a client)

  private typeOf(apiVersion: string, kind: string): ResourceType {
    const t = this.api.types().find((x) => x.apiVersion === apiVersion && x.kind === kind);
    if (!t) throw new Error(`kind ${kind} of ${apiVersion} is not served`);
    return t;
  }

  /** Creates an object (POST semantics: status is dropped where a status subresource exists). */
  createObject(obj: KObj): KObj {
    const t = this.typeOf(obj.apiVersion, obj.kind);
    return this.api.create(t, obj.metadata?.namespace ?? '', obj, this.api.systemWrite());
  }

  getObject(apiVersion: string, kind: string, namespace: string | undefined, name: string): KObj | undefined {
    const t = this.typeOf(apiVersion, kind);
    try {
      return this.api.get(t, namespace ?? '', name);
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return undefined;
      throw e;
    }
  }

  async listObjects(apiVersion: string, kind: string, namespace?: string, labelSelector?: string): Promise<KObj[]> {
    const t = this.typeOf(apiVersion, kind);
    const l = await this.api.list(t, namespace ?? '', { labelSelector });
    return (l.items as KObj[]).map((i) => ({ apiVersion: t.apiVersion, kind: t.kind, ...i }));
  }

  /** JSON merge patch of the object or (subresource "status") its status. */
  patchObject(apiVersion: string, kind: string, namespace: string | undefined, name: string, patch: KObj, subresource: '' | 'status' = ''): KObj {
    const t = this.typeOf(apiVersion, kind);
    return this.api.patch(t, namespace ?? '', name, PATCH_TYPES.merge, patch, subresource, this.api.systemWrite());
  }

  deleteObject(apiVersion: string, kind: string, namespace: string | undefined, name: string, o: DeleteOptions = {}): KObj {
    const t = this.typeOf(apiVersion, kind);
    return this.api.delete(t, namespace ?? '', name, o, this.api.systemWrite()).body;
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  private sendJson(res: ServerResponse, code: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
    const data = JSON.stringify(body);
    res.writeHead(code, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Audit-Id': randomUUID(),
      'Content-Length': Buffer.byteLength(data),
      ...headers,
    });
    res.end(data);
  }

  private sendStatus(res: ServerResponse, s: Status): void {
    this.sendJson(res, s.code, s);
  }

  private async readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private matchRule(req: IncomingMessage, pathname: string, watch: boolean): ActiveRule | undefined {
    for (const r of this.rules) {
      if (r.remaining <= 0) continue;
      if (r.method && r.method.toUpperCase() !== req.method) continue;
      if (r.watch !== undefined && r.watch !== watch) continue;
      if (typeof r.path === 'string' && !pathname.includes(r.path)) continue;
      if (r.path instanceof RegExp && !r.path.test(req.url ?? '')) continue;
      r.remaining--;
      r.hits++;
      return r;
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://server');
    const pathname = url.pathname;
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const isWatch = query.watch === 'true' || query.watch === '1' || /\/watch\//.test(pathname);
    const entry: RequestLogEntry = {
      time: new Date(),
      method: req.method ?? 'GET',
      path: pathname,
      query,
      contentType: req.headers['content-type'],
      token,
      watch: isWatch,
    };
    this.requests.push(entry);
    res.on('finish', () => {
      entry.status ??= res.statusCode;
    });

    let body: Buffer | undefined;
    if (req.method !== 'GET' && req.method !== 'HEAD') body = await this.readBody(req);

    const rule = this.matchRule(req, pathname, isWatch);
    if (rule) {
      entry.fault = `rule ${rule.id}`;
      if (rule.delayMs) await new Promise((r) => setTimeout(r, rule.delayMs));
      if (rule.reset) {
        entry.status = 0;
        req.socket.destroy();
        return;
      }
      if (rule.status !== undefined) {
        const s = customStatus(rule.status, rule.reason ?? reasonFor(rule.status), rule.message ?? `injected fault (${rule.status})`);
        entry.status = isWatch && rule.inStream ? 200 : rule.status;
        entry.reason = s.reason;
        if (isWatch && rule.inStream) {
          res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
          res.end(JSON.stringify({ type: 'ERROR', object: s }) + '\n');
        } else this.sendStatus(res, s);
        return;
      }
    }

    try {
      // Like the default RBAC for anonymous users: health and version need no credentials.
      const open = ['/healthz', '/livez', '/readyz', '/version'].includes(pathname);
      if (this.opts.requireToken && token !== this.token && !open) throw unauthorized();
      const accept = req.headers.accept;
      if (accept && !/application\/json|\*\/\*|application\/\*/.test(accept)) throw notAcceptable(['application/json']);
      await this.route(req, res, pathname, query, body, entry);
    } catch (e) {
      const err = e instanceof ApiError ? e : internalError((e as Error)?.stack ?? String(e));
      entry.reason = err.status.reason;
      if (err.note) entry.note = err.note;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      this.sendStatus(res, err.status);
    }
  }

  private async route(
    req: IncomingMessage,
    res: ServerResponse,
    pathname: string,
    query: Record<string, string>,
    rawBody: Buffer | undefined,
    entry: RequestLogEntry,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    if (pathname === '/healthz' || pathname === '/livez' || pathname === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (pathname === '/version') return this.sendJson(res, 200, this.versionInfo());
    if (pathname === '/api' || pathname === '/api/') return this.sendJson(res, 200, this.apiVersions());
    if (pathname === '/apis' || pathname === '/apis/') return this.sendJson(res, 200, this.apiGroupList());
    const parts = pathname.split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
    let group: string;
    let version: string;
    let rest: string[];
    if (parts[0] === 'api') {
      if (parts[1] !== 'v1') throw pathNotFound();
      group = '';
      version = 'v1';
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 2) {
      group = parts[1];
      if (parts.length === 2) {
        const g = this.apiGroupList().groups.find((x: KObj) => x.name === group);
        if (!g) throw pathNotFound();
        return this.sendJson(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...g });
      }
      version = parts[2];
      rest = parts.slice(3);
    } else throw pathNotFound();
    const types = this.api.types().filter((t) => t.group === group && t.version === version);
    if (types.length === 0) throw pathNotFound();
    if (rest.length === 0) return this.sendJson(res, 200, this.resourceList(group, version, types));

    let watch = query.watch === 'true' || query.watch === '1';
    if (rest[0] === 'watch') {
      watch = true;
      rest = rest.slice(1);
    }
    let ns = '';
    let rp = rest;
    if (rest[0] === 'namespaces' && rest.length > 2 && rest[2] !== 'status' && rest[2] !== 'finalize') {
      ns = rest[1];
      rp = rest.slice(2);
    }
    if (rp.length === 0 || rp.length > 3) throw pathNotFound();
    const [plural, name, sub] = rp;
    const t = types.find((x) => x.plural === plural);
    if (!t) throw pathNotFound();
    if (t.namespaced && !ns && name) throw pathNotFound();
    // Across all namespaces a namespaced resource can only be listed or watched.
    if (t.namespaced && !ns && method !== 'GET') throw this.methodNotAllowed(t, method);
    if (!t.namespaced && ns) throw pathNotFound();
    if (sub !== undefined && !t.subresources.includes(sub)) throw pathNotFound();
    const subresource = sub ?? '';

    const wo = this.writeOptions(query, method);
    const parse = (): unknown => {
      if (!rawBody || rawBody.length === 0) return undefined;
      try {
        return JSON.parse(rawBody.toString('utf8'));
      } catch (e) {
        throw badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
      }
    };
    const ctype = mediaType(req.headers['content-type']);
    const requireJson = (): void => {
      if (ctype !== 'application/json') throw unsupportedMediaType(JSON_TYPES);
    };
    const reply = (code: number, obj: unknown): void => {
      const headers: Record<string, string | string[]> = {};
      if (wo.warnings.length) headers.Warning = wo.warnings.map((w) => `299 - ${JSON.stringify(w)}`);
      this.sendJson(res, code, obj, headers);
    };

    switch (method) {
      case 'GET': {
        if (watch) return this.watch(req, res, t, ns, name, query, entry);
        if (subresource === 'binding') throw pathNotFound();
        if (name) return reply(200, this.api.get(t, ns, name));
        return reply(200, await this.api.list(t, ns, this.listQuery(query)));
      }
      case 'POST': {
        if (name && subresource === 'binding') {
          requireJson();
          const b = parse();
          entry.body = b;
          return reply(201, this.api.bindPod(ns, name, b, wo));
        }
        if (name) throw this.methodNotAllowed(t, method);
        requireJson();
        const b = parse();
        entry.body = b;
        if (b === undefined) throw badRequest('the body of the request is empty');
        return reply(201, this.api.create(t, ns, b, wo));
      }
      case 'PUT': {
        if (!name) throw this.methodNotAllowed(t, method);
        requireJson();
        const b = parse();
        entry.body = b;
        if (subresource === 'finalize') return reply(200, this.api.finalizeNamespace(name, b, wo));
        if (subresource === 'binding') throw this.methodNotAllowed(t, method);
        return reply(200, this.api.update(t, ns, name, b, subresource as '' | 'status', wo));
      }
      case 'PATCH': {
        if (!name || (subresource !== '' && subresource !== 'status')) throw this.methodNotAllowed(t, method);
        const b = parse();
        entry.body = b;
        return reply(200, this.api.patch(t, ns, name, ctype, b, subresource as '' | 'status', wo));
      }
      case 'DELETE': {
        if (subresource) throw this.methodNotAllowed(t, method);
        const b = parse();
        entry.body = b;
        const opts = this.deleteOptions(query, b);
        if (!name) return reply(200, await this.api.deleteCollection(t, ns, this.listQuery(query), opts, wo));
        const r = this.api.delete(t, ns, name, opts, wo);
        return reply(r.code, r.body);
      }
      default:
        throw this.methodNotAllowed(t, method);
    }
  }

  private methodNotAllowed(t: ResourceType, method: string): ApiError {
    const s = customStatus(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    s.details = {};
    return new ApiError(s, `${method} on ${t.plural}`);
  }

  private writeOptions(q: Record<string, string>, method: string): WriteOptions {
    const dry = q.dryRun;
    const kindOf = method === 'POST' ? 'CreateOptions' : method === 'DELETE' ? 'DeleteOptions' : method === 'PATCH' ? 'PatchOptions' : 'UpdateOptions';
    if (dry !== undefined && dry !== 'All')
      throw invalid({ group: 'meta.k8s.io', kind: kindOf }, '', [fe.notSupported('dryRun', dry, ['All'])]);
    const fv = q.fieldValidation ?? '';
    if (!['', 'Ignore', 'Warn', 'Strict'].includes(fv))
      throw invalid({ group: 'meta.k8s.io', kind: kindOf }, '', [fe.notSupported('fieldValidation', fv, ['', 'Ignore', 'Warn', 'Strict'])]);
    return { dryRun: dry === 'All', fieldValidation: (fv || 'Warn') as FieldValidation, warnings: [] };
  }

  private listQuery(q: Record<string, string>): ListQuery {
    return {
      labelSelector: q.labelSelector,
      fieldSelector: q.fieldSelector,
      resourceVersion: q.resourceVersion,
      resourceVersionMatch: q.resourceVersionMatch,
      limit: q.limit,
      continue: q.continue,
    };
  }

  private deleteOptions(q: Record<string, string>, body: unknown): DeleteOptions {
    const o: DeleteOptions = {};
    const int = (s: string | undefined, what: string): number | undefined => {
      if (s === undefined || s === '') return undefined;
      if (!/^-?[0-9]+$/.test(s)) throw badRequest(`invalid ${what}: ${s}`);
      return Number(s);
    };
    o.gracePeriodSeconds = int(q.gracePeriodSeconds, 'gracePeriodSeconds');
    if (q.propagationPolicy) o.propagationPolicy = q.propagationPolicy;
    if (q.orphanDependents !== undefined) o.orphanDependents = q.orphanDependents === 'true';
    if (isPlainObject(body)) {
      if (typeof body.gracePeriodSeconds === 'number') o.gracePeriodSeconds = body.gracePeriodSeconds;
      if (typeof body.propagationPolicy === 'string') o.propagationPolicy = body.propagationPolicy;
      if (typeof body.orphanDependents === 'boolean') o.orphanDependents = body.orphanDependents;
      if (isPlainObject(body.preconditions)) o.preconditions = clone(body.preconditions) as DeleteOptions['preconditions'];
      if (Array.isArray(body.dryRun) && body.dryRun.length && !body.dryRun.every((d) => d === 'All'))
        throw invalid({ group: 'meta.k8s.io', kind: 'DeleteOptions' }, '', [fe.notSupported('dryRun', body.dryRun[0], ['All'])]);
    }
    return o;
  }

  // -------------------------------------------------------------------------------------------
  // Watch

  private async watch(
    req: IncomingMessage,
    res: ServerResponse,
    t: ResourceType,
    ns: string,
    name: string | undefined,
    q: Record<string, string>,
    entry: RequestLogEntry,
  ): Promise<void> {
    const lq = this.listQuery(q);
    this.api.validateListOptions(lq, true, q.sendInitialEvents);
    const baseMatch = this.api.matcher(t, ns, lq.labelSelector, lq.fieldSelector);
    const match = name ? (o: KObj) => o.metadata.name === name && baseMatch(o) : baseMatch;
    const store = this.api.store;
    const bookmarks = q.allowWatchBookmarks === 'true' || q.allowWatchBookmarks === '1';
    const sendInitial = q.sendInitialEvents === 'true';
    let fromRv: number | undefined;
    const rvParam = q.resourceVersion;
    if (rvParam !== undefined && rvParam !== '' && rvParam !== '0') {
      const n = parseRv(rvParam);
      if (n === undefined) throw badRequest(`invalid resource version: ${rvParam}`);
      if (n > store.currentRv && !(await store.waitForRv(n, this.opts.tooLargeResourceVersionWaitMs ?? 3000)))
        throw tooLargeResourceVersion(n, store.currentRv);
      if (!sendInitial) fromRv = n;
    }
    const timeouts: number[] = [];
    if (q.timeoutSeconds !== undefined) {
      if (!/^[0-9]+$/.test(q.timeoutSeconds)) throw badRequest(`invalid timeoutSeconds: ${q.timeoutSeconds}`);
      timeouts.push(Number(q.timeoutSeconds));
    }
    if (this.opts.watchTimeoutSeconds !== undefined) timeouts.push(this.opts.watchTimeoutSeconds);

    // Headers go out at once: client-node's watch() resolves only when they arrive.
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    entry.status = 200;
    const write = (type: string, object: unknown): void => {
      if (!res.writableEnded) res.write(JSON.stringify({ type, object }) + '\n');
    };

    if (fromRv !== undefined && fromRv < store.compactedRv) {
      // The watch cache answers an expired resourceVersion in-stream, then closes.
      write('ERROR', expired(`too old resource version: ${fromRv} (${store.compactedRv})`).status);
      entry.reason = 'Expired';
      res.end();
      return;
    }

    const timers: NodeJS.Timeout[] = [];
    let unsubscribe = (): void => {};
    const w: Watcher = {
      type: t,
      res,
      close: () => {
        unsubscribe();
        for (const x of timers) clearTimeout(x);
        this.watchers.delete(w);
        if (!res.writableEnded) res.end();
      },
      bookmark: () => {
        if (!bookmarks) return;
        write('BOOKMARK', { kind: t.kind, apiVersion: t.apiVersion, metadata: { resourceVersion: String(store.currentRv) } });
      },
    };
    const deliver = (ev: HistoryEvent): void => {
      if (ev.storage !== t.storage) return;
      // cacheWatcher.convertToWatchEvent: an object entering the selection is ADDED, one leaving it DELETED.
      const cur = ev.type !== 'DELETED' && match(ev.obj);
      const old = ev.prev ? match(ev.prev) : false;
      if (!cur && !old) return;
      if (cur && !old) write('ADDED', this.api.output(t, ev.obj));
      else if (cur && old) write('MODIFIED', this.api.output(t, ev.obj));
      else {
        const gone = ev.type === 'DELETED' ? ev.obj : { ...(ev.prev as KObj), metadata: { ...(ev.prev as KObj).metadata, resourceVersion: String(ev.rv) } };
        write('DELETED', this.api.output(t, gone));
      }
    };
    // Snapshot (or replay) and subscription happen in the same tick, so nothing falls in between.
    if (fromRv === undefined) {
      for (const [, o] of store.list(t.storage)) if (match(o)) write('ADDED', this.api.output(t, o));
      if (sendInitial && bookmarks)
        write('BOOKMARK', {
          kind: t.kind,
          apiVersion: t.apiVersion,
          metadata: { resourceVersion: String(store.currentRv), annotations: { 'k8s.io/initial-events-end': 'true' } },
        });
    } else {
      for (const ev of store.eventsSince(t.storage, fromRv)) deliver(ev);
    }
    unsubscribe = store.subscribe(deliver);
    this.watchers.add(w);
    // The response's close is the reliable signal that the client went away.
    res.on('close', () => w.close());
    if (timeouts.length) {
      const tm = setTimeout(() => w.close(), Math.min(...timeouts) * 1000);
      tm.unref();
      timers.push(tm);
    }
    if (bookmarks) {
      const iv = setInterval(() => w.bookmark(), this.opts.bookmarkIntervalMs ?? 60_000);
      iv.unref();
      timers.push(iv);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Discovery

  private versionInfo(): KObj {
    const v = this.opts.kubernetesVersion ?? { major: '1', minor: '33' };
    return {
      major: v.major,
      minor: v.minor,
      gitVersion: `v${v.major}.${v.minor}.0`,
      gitCommit: '0000000000000000000000000000000000000000',
      gitTreeState: 'clean',
      buildDate: '2026-01-01T00:00:00Z',
      goVersion: 'go1.24.0',
      compiler: 'gc',
      platform: 'linux/amd64',
    };
  }

  private apiVersions(): KObj {
    return {
      kind: 'APIVersions',
      versions: ['v1'],
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: this.url.replace(/^http:\/\//, '') }],
    };
  }

  private apiGroupList(): KObj {
    const byGroup = new Map<string, Set<string>>();
    for (const t of this.api.types()) {
      if (!t.group) continue;
      const s = byGroup.get(t.group) ?? new Set<string>();
      s.add(t.version);
      byGroup.set(t.group, s);
    }
    const groups = [...byGroup.entries()].map(([name, vs]) => {
      const versions = [...vs].sort(compareVersions).map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
      return { name, versions, preferredVersion: versions[0] };
    });
    return { kind: 'APIGroupList', apiVersion: 'v1', groups };
  }

  private resourceList(group: string, version: string, types: ResourceType[]): KObj {
    const resources: KObj[] = [];
    for (const t of types) {
      const r: KObj = { name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: t.verbs };
      if (t.shortNames.length) r.shortNames = t.shortNames;
      if (t.categories.length) r.categories = t.categories;
      resources.push(r);
      for (const sub of t.subresources) {
        if (sub === 'status') resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
        if (sub === 'binding') resources.push({ name: `${t.plural}/binding`, singularName: '', namespaced: t.namespaced, kind: 'Binding', verbs: ['create'] });
        if (sub === 'finalize') resources.push({ name: `${t.plural}/finalize`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['update'] });
      }
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
  }
}

/** Starts a server with default options. */
export function startKubeApiServer(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  return KubeApiServer.start(opts);
}
