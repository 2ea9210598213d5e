/**
 * Helpers for end-to-end tests of `cairn agent`: a fake kubelet pods directory, factories for the
 * Kubernetes/Velero objects the agent reads (with Velero's labels and owner references), a small
 * JSON client for the API test server, and the agent as a child process with its JSON log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { cairn, cairnCli, hasRestic, mustOk, restic, type RunResult } from './env.js';
import { KubeApiServer } from './kube/server.js';
import { installVeleroCrds } from './kube/velero-crds.js';

// --- fake kubelet pods directory ---------------------------------------------------------------

/** `<root>/<pod uid>/volumes/<plugin>/<dir>` as kubelet lays it out. */
export class FakeKubelet {
  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  podDir(podUid: string): string {
    const d = path.join(this.root, podUid, 'volumes');
    mkdirSync(d, { recursive: true });
    return path.join(this.root, podUid);
  }

  volume(podUid: string, plugin: string, dir: string): string {
    const d = path.join(this.root, podUid, 'volumes', plugin, dir);
    mkdirSync(d, { recursive: true });
    return d;
  }

  emptyDir(podUid: string, volume: string): string {
    return this.volume(podUid, 'kubernetes.io~empty-dir', volume);
  }

  csi(podUid: string, pvName: string): string {
    return this.volume(podUid, 'kubernetes.io~csi', `${pvName}/mount`);
  }

  localPv(podUid: string, pvName: string): string {
    return this.volume(podUid, 'kubernetes.io~local-volume', pvName);
  }
}

/** Writes files below dir: { "a/b.txt": "content", "big.bin": Buffer }. */
export function writeFiles(dir: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, content);
  }
}

// --- object factories ----------------------------------------------------------------------------

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Obj = Record<string, any>;

export const VELERO_NS = 'velero';

export interface PodOptions {
  name: string;
  namespace?: string;
  node?: string;
  volumes: Obj[];
  /** Add Velero's restore helper init container; 'running' also sets its status. */
  restoreWait?: 'running' | 'waiting' | 'name-restic-wait';
  phase?: string;
  annotations?: Record<string, string>;
}

export function pod(o: PodOptions): Obj {
  const p: Obj = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: o.name, namespace: o.namespace ?? 'app', annotations: o.annotations },
    spec: {
      nodeName: o.node ?? 'node-1',
      containers: [{ name: 'app', image: 'busybox', volumeMounts: o.volumes.map((v) => ({ name: v.name, mountPath: `/mnt/${v.name}` })) }],
      volumes: o.volumes,
    },
    status: { phase: o.phase ?? 'Running' },
  };
  if (o.restoreWait) {
    const name = o.restoreWait === 'name-restic-wait' ? 'restic-wait' : 'restore-wait';
    p.spec.initContainers = [{ name, image: 'velero/velero', command: ['/velero-restore-helper'], args: ['restore-uid'] }];
    p.status.phase = 'Pending';
    p.status.initContainerStatuses = [
      { name, ready: false, restartCount: 0, image: 'velero/velero', imageID: '', state: o.restoreWait === 'waiting' ? { waiting: { reason: 'PodInitializing' } } : { running: { startedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') } } },
    ];
  }
  return p;
}

export const emptyDirVolume = (name: string): Obj => ({ name, emptyDir: {} });
export const pvcVolume = (name: string, claimName: string): Obj => ({ name, persistentVolumeClaim: { claimName } });

export function pvc(name: string, namespace: string, volumeName: string, volumeMode?: 'Block' | 'Filesystem'): Obj {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, volumeName, volumeMode },
    status: { phase: 'Bound' },
  };
}

export function pv(name: string, kind: 'csi' | 'local' | 'block' | 'migrated', claim?: { namespace: string; name: string }): Obj {
  const spec: Obj = { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Delete' };
  const metadata: Obj = { name };
  if (kind === 'csi') spec.csi = { driver: 'hostpath.csi.k8s.io', volumeHandle: name };
  if (kind === 'local') {
    spec.local = { path: `/mnt/disks/${name}` };
    spec.nodeAffinity = { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['node-1'] }] }] } };
  }
  if (kind === 'block') {
    spec.csi = { driver: 'hostpath.csi.k8s.io', volumeHandle: name };
    spec.volumeMode = 'Block';
  }
  if (kind === 'migrated') {
    spec.awsElasticBlockStore = { volumeID: `vol-${name}` };
    metadata.annotations = { 'pv.kubernetes.io/provisioned-by': 'ebs.csi.aws.com' };
  }
  if (claim) spec.claimRef = { kind: 'PersistentVolumeClaim', namespace: claim.namespace, name: claim.name };
  return { apiVersion: 'v1', kind: 'PersistentVolume', metadata, spec, status: { phase: 'Bound' } };
}

export function csiDriver(name: string): Obj {
  return { apiVersion: 'storage.k8s.io/v1', kind: 'CSIDriver', metadata: { name }, spec: { attachRequired: true } };
}

export function secret(name: string, data: Record<string, string>, namespace = VELERO_NS): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}

export const passwordSecret = (password: string, name = 'velero-repo-credentials'): Obj => secret(name, { 'repository-password': password });

export function bsl(name: string, extra: Obj = {}): Obj {
  return {
    apiVersion: 'velero.io/v1',
    kind: 'BackupStorageLocation',
    metadata: { name, namespace: VELERO_NS },
    spec: { provider: 'aws', objectStorage: { bucket: 'velero' }, config: { region: 'minio' }, ...extra },
  };
}

export function backupObj(name: string, phase = 'InProgress'): Obj {
  return { apiVersion: 'velero.io/v1', kind: 'Backup', metadata: { name, namespace: VELERO_NS }, spec: { defaultVolumesToFsBackup: false }, status: { phase } };
}

export function restoreObj(name: string, backupName: string, phase = 'InProgress'): Obj {
  return { apiVersion: 'velero.io/v1', kind: 'Restore', metadata: { name, namespace: VELERO_NS }, spec: { backupName }, status: { phase } };
}

export interface Ref {
  name: string;
  uid: string;
  namespace?: string;
}

export interface PvbOptions {
  backup: Ref;
  pod: Ref & { namespace: string };
  volume: string;
  repoIdentifier: string;
  node?: string;
  bsl?: string;
  pvcUid?: string;
  pvcName?: string;
  uploaderType?: string;
  cancel?: boolean;
}

/** A PVB as Velero's server creates it (labels, owner reference, tags). */
export function pvb(o: PvbOptions): Obj {
  const labels: Record<string, string> = { 'velero.io/backup-name': o.backup.name, 'velero.io/backup-uid': o.backup.uid };
  if (o.pvcUid) labels['velero.io/pvc-uid'] = o.pvcUid;
  const tags: Record<string, string> = {
    backup: o.backup.name,
    'backup-uid': o.backup.uid,
    pod: o.pod.name,
    'pod-uid': o.pod.uid,
    ns: o.pod.namespace,
    volume: o.volume,
  };
  if (o.pvcUid) tags['pvc-uid'] = o.pvcUid;
  const spec: Obj = {
    node: o.node ?? 'node-1',
    pod: { kind: 'Pod', namespace: o.pod.namespace, name: o.pod.name, uid: o.pod.uid },
    volume: o.volume,
    backupStorageLocation: o.bsl ?? 'default',
    repoIdentifier: o.repoIdentifier,
    tags,
  };
  if (o.uploaderType !== undefined) spec.uploaderType = o.uploaderType;
  if (o.cancel !== undefined) spec.cancel = o.cancel;
  return {
    apiVersion: 'velero.io/v1',
    kind: 'PodVolumeBackup',
    metadata: {
      generateName: `${o.backup.name}-`,
      namespace: VELERO_NS,
      labels,
      annotations: o.pvcName ? { 'velero.io/pvc-name': o.pvcName } : undefined,
      ownerReferences: [{ apiVersion: 'velero.io/v1', kind: 'Backup', name: o.backup.name, uid: o.backup.uid, controller: true }],
    },
    spec,
  };
}

export interface PvrOptions {
  restore: Ref;
  pod: Ref & { namespace: string };
  volume: string;
  repoIdentifier: string;
  snapshotID: string;
  bsl?: string;
  sourceNamespace?: string;
  uploaderType?: string;
  uploaderSettings?: Record<string, string>;
}

export function pvr(o: PvrOptions): Obj {
  const spec: Obj = {
    pod: { kind: 'Pod', namespace: o.pod.namespace, name: o.pod.name, uid: o.pod.uid },
    volume: o.volume,
    backupStorageLocation: o.bsl ?? 'default',
    repoIdentifier: o.repoIdentifier,
    snapshotID: o.snapshotID,
    sourceNamespace: o.sourceNamespace ?? o.pod.namespace,
    uploaderType: o.uploaderType ?? 'restic',
  };
  if (o.uploaderSettings) spec.uploaderSettings = o.uploaderSettings;
  return {
    apiVersion: 'velero.io/v1',
    kind: 'PodVolumeRestore',
    metadata: {
      generateName: `${o.restore.name}-`,
      namespace: VELERO_NS,
      labels: { 'velero.io/restore-name': o.restore.name, 'velero.io/restore-uid': o.restore.uid, 'velero.io/pod-uid': o.pod.uid },
      ownerReferences: [{ apiVersion: 'velero.io/v1', kind: 'Restore', name: o.restore.name, uid: o.restore.uid, controller: true }],
    },
    spec,
  };
}

// --- a small JSON client for the API test server ---------------------------------------------------

const CORE = new Set(['Pod', 'PersistentVolumeClaim', 'PersistentVolume', 'Secret', 'ConfigMap', 'Node', 'Event', 'Namespace']);
const PLURALS: Record<string, string> = {
  Pod: 'pods', PersistentVolumeClaim: 'persistentvolumeclaims', PersistentVolume: 'persistentvolumes', Secret: 'secrets', ConfigMap: 'configmaps',
  Node: 'nodes', Event: 'events', Namespace: 'namespaces', CSIDriver: 'csidrivers', CustomResourceDefinition: 'customresourcedefinitions',
  PodVolumeBackup: 'podvolumebackups', PodVolumeRestore: 'podvolumerestores', BackupStorageLocation: 'backupstoragelocations',
  Backup: 'backups', Restore: 'restores', BackupRepository: 'backuprepositories', ResticRepository: 'resticrepositories',
};
const CLUSTER_SCOPED = new Set(['PersistentVolume', 'Node', 'Namespace', 'CSIDriver', 'CustomResourceDefinition']);

export class KubeHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Path of a collection or object: kind + namespace (+ name). */
export function apiPath(apiVersion: string, kind: string, namespace?: string, name?: string): string {
  const base = CORE.has(kind) ? `/api/${apiVersion}` : `/apis/${apiVersion}`;
  const plural = PLURALS[kind];
  if (!plural) throw new Error(`unknown kind ${kind}`);
  const ns = CLUSTER_SCOPED.has(kind) ? '' : `/namespaces/${namespace ?? 'default'}`;
  return `${base}${ns}/${plural}${name ? `/${name}` : ''}`;
}

export class KubeHttp {
  constructor(readonly server: string, private readonly token?: string) {}

  async request(method: string, p: string, body?: unknown, contentType = 'application/json'): Promise<Obj> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = contentType;
    const send = () => fetch(this.server + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let res: Response;
    try {
      res = await send();
    } catch {
      // a pooled keep-alive connection the server closed meanwhile (ECONNRESET): the request never arrived
      res = await send();
    }
    const text = await res.text();
    const json = text ? (JSON.parse(text) as Obj) : {};
    if (!res.ok) throw new KubeHttpError(res.status, `${method} ${p}: ${res.status} ${json.message ?? text}`);
    return json;
  }

  create(obj: Obj): Promise<Obj> {
    return this.request('POST', apiPath(obj.apiVersion, obj.kind, obj.metadata?.namespace), obj);
  }

  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<Obj> {
    return this.request('GET', apiPath(apiVersion, kind, namespace, name));
  }

  async tryGet(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<Obj | undefined> {
    try {
      return await this.get(apiVersion, kind, namespace, name);
    } catch (e) {
      if (e instanceof KubeHttpError && e.status === 404) return undefined;
      throw e;
    }
  }

  async list(apiVersion: string, kind: string, namespace?: string, labelSelector?: string): Promise<Obj[]> {
    const q = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : '';
    return (await this.request('GET', apiPath(apiVersion, kind, namespace) + q)).items as Obj[];
  }

  mergePatch(apiVersion: string, kind: string, namespace: string | undefined, name: string, patch: unknown): Promise<Obj> {
    return this.request('PATCH', apiPath(apiVersion, kind, namespace, name), patch, 'application/merge-patch+json');
  }

  /** Status of a Pod (core objects have a status subresource). */
  patchStatus(apiVersion: string, kind: string, namespace: string | undefined, name: string, patch: unknown): Promise<Obj> {
    return this.request('PATCH', apiPath(apiVersion, kind, namespace, name) + '/status', patch, 'application/merge-patch+json');
  }

  delete(apiVersion: string, kind: string, namespace: string | undefined, name: string, options?: Obj): Promise<Obj> {
    return this.request('DELETE', apiPath(apiVersion, kind, namespace, name), options ? { apiVersion: 'v1', kind: 'DeleteOptions', ...options } : undefined);
  }
}

// --- the agent as a child process ---------------------------------------------------------------------

export interface AgentProcessOptions {
  kubeconfig: string;
  hostPodsDir: string;
  node?: string;
  namespace?: string;
  args?: string[];
  env?: Record<string, string | undefined>;
}

export class AgentProcess {
  readonly logs: Obj[] = [];
  stderr = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(o: AgentProcessOptions) {
    const args = [
      cairnCli,
      'agent',
      '--kubeconfig', o.kubeconfig,
      '--node-name', o.node ?? 'node-1',
      '--namespace', o.namespace ?? VELERO_NS,
      '--host-pods-dir', o.hostPodsDir,
      '--metrics-address', '127.0.0.1:0',
      '--progress-interval', '5s',
      '--resync-interval', '2s',
      '--log-level', 'debug',
      ...(o.args ?? []),
    ];
    this.child = spawn(process.execPath, args, { env: { ...process.env, KUBECONFIG: undefined, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.logs.push(JSON.parse(line) as Obj);
        } catch {
          this.logs.push({ msg: line });
        }
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async waitForLog(pred: (l: Obj) => boolean, timeoutMs = 30_000): Promise<Obj> {
    return waitFor(() => this.logs.find(pred), timeoutMs, `log line (stderr: ${this.stderr.slice(-500)})`);
  }

  /** Waits until the agent is ready (host pods validated, caches synced). */
  ready(timeoutMs = 30_000): Promise<Obj> {
    return this.waitForLog((l) => l.msg === 'host pods directory matches the pods of this node', timeoutMs);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }
}

/** Polls fn until it returns a truthy value. */
export async function waitFor<T>(fn: () => T | undefined | false | null | Promise<T | undefined | false | null>, timeoutMs = 30_000, what = 'condition', intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// --- a whole test cluster: API server, Velero CRDs, kubelet dir, repository password -------------------

export type VeleroLine = '1.9' | '1.10' | '1.16' | '1.17' | '1.18';

export interface ClusterOptions {
  velero: VeleroLine;
  password?: string;
}

export const TEST_PASSWORD = 'test-password';

export class Cluster {
  readonly http: KubeHttp;
  readonly kubelet: FakeKubelet;
  readonly hostPods: string;
  readonly kubeconfig: string;
  readonly resticEnv: Record<string, string>;
  private readonly agents: AgentProcess[] = [];

  constructor(
    readonly server: KubeApiServer,
    readonly tmp: string,
    readonly password: string,
  ) {
    this.http = new KubeHttp(server.url, server.token);
    this.hostPods = path.join(tmp, 'host_pods');
    this.kubelet = new FakeKubelet(this.hostPods);
    this.kubeconfig = server.writeKubeconfig(tmp);
    // client-node 1.4 refuses plain http unless the cluster entry skips TLS verification
    const text = readFileSync(this.kubeconfig, 'utf8');
    if (!text.includes('insecure-skip-tls-verify')) writeFileSync(this.kubeconfig, text.replace(/(\n    server: [^\n]+)/, '$1\n    insecure-skip-tls-verify: true'));
    this.resticEnv = { RESTIC_PASSWORD: password };
  }

  /** Local repository of a volume namespace (a stand-in for s3:…/<bucket>/restic/<ns>). */
  repo(ns: string): string {
    return path.join(this.tmp, 'repos', 'restic', ns);
  }

  /** Initialises a repository like Velero's server does (restic init), or with cairn when restic is missing. */
  async initRepo(ns: string): Promise<void> {
    if (hasRestic) return this.initRepoWithRestic(ns);
    mustOk(await cairn(['init', '--chunker', 'rabin', '-r', this.repo(ns)], { env: this.resticEnv }), 'cairn init');
  }

  async initRepoWithRestic(ns: string): Promise<void> {
    mustOk(await restic(['init', '-r', this.repo(ns)], { env: this.resticEnv }), 'restic init');
  }

  cairn(args: string[]): Promise<RunResult> {
    return cairn(args, { env: this.resticEnv });
  }

  startAgent(args: string[] = [], o: { hostPodsDir?: string; env?: Record<string, string | undefined> } = {}): AgentProcess {
    const a = new AgentProcess({ kubeconfig: this.kubeconfig, hostPodsDir: o.hostPodsDir ?? this.hostPods, args, env: { ...o.env, } });
    this.agents.push(a);
    return a;
  }

  /** Creates a pod and sets its status as kubelet would (Running, or Pending with the restore helper). */
  async createPod(o: PodOptions): Promise<Obj> {
    const obj = pod(o);
    const status = obj.status;
    delete obj.status;
    const created = await this.http.create(obj);
    return this.http.patchStatus('v1', 'Pod', created.metadata.namespace, created.metadata.name, { status });
  }

  /** Deletes a pod and waits until kubelet (the test server) has finished the graceful deletion. */
  async deletePod(namespace: string, name: string): Promise<void> {
    await this.http.delete('v1', 'Pod', namespace, name);
    await waitFor(async () => !(await this.http.tryGet('v1', 'Pod', namespace, name)), 10_000, `pod ${namespace}/${name} gone`);
  }

  async setRestoreWaitRunning(namespace: string, name: string): Promise<Obj> {
    const p = await this.http.get('v1', 'Pod', namespace, name);
    const statuses = (p.status.initContainerStatuses as Obj[]).map((s) => ({ ...s, state: { running: { startedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') } } }));
    return this.http.patchStatus('v1', 'Pod', namespace, name, { status: { initContainerStatuses: statuses } });
  }

  async createBackup(name: string, phase = 'InProgress'): Promise<Ref> {
    const b = await this.http.create(backupObj(name));
    await this.http.mergePatch('velero.io/v1', 'Backup', VELERO_NS, name, { status: { phase } });
    return { name, uid: b.metadata.uid };
  }

  async createRestore(name: string, backupName: string, phase = 'InProgress'): Promise<Ref> {
    const r = await this.http.create(restoreObj(name, backupName));
    await this.http.mergePatch('velero.io/v1', 'Restore', VELERO_NS, name, { status: { phase } });
    return { name, uid: r.metadata.uid };
  }

  createPvb(o: PvbOptions): Promise<Obj> {
    return this.http.create(pvb(o));
  }

  createPvr(o: PvrOptions): Promise<Obj> {
    return this.http.create(pvr(o));
  }

  get(kind: 'PodVolumeBackup' | 'PodVolumeRestore', name: string): Promise<Obj> {
    return this.http.get('velero.io/v1', kind, VELERO_NS, name);
  }

  async waitPhase(kind: 'PodVolumeBackup' | 'PodVolumeRestore', name: string, phases: string[], timeoutMs = 60_000): Promise<Obj> {
    return waitFor(async () => {
      const o = await this.get(kind, name);
      return phases.includes(o.status?.phase) ? o : undefined;
    }, timeoutMs, `${kind} ${name} in phase ${phases.join('/')}`);
  }

  async events(): Promise<Obj[]> {
    return (await this.http.request('GET', '/api/v1/events')).items as Obj[];
  }

  async close(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop('SIGKILL', 5000)));
    await this.server.close();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const server = await KubeApiServer.start();
  const tmp = mkdtempSync(path.join(tmpdir(), 'cairn-agent-e2e-'));
  const c = new Cluster(server, tmp, o.password ?? TEST_PASSWORD);
  installVeleroCrds(server, o.velero);
  for (const ns of [VELERO_NS, 'app']) server.createObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  server.createObject({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1', labels: { 'kubernetes.io/hostname': 'node-1', 'kubernetes.io/os': 'linux' } } });
  server.createObject({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-2', labels: { 'kubernetes.io/hostname': 'node-2', 'kubernetes.io/os': 'linux' } } });
  server.createObject(passwordSecret(c.password, o.velero === '1.9' ? 'velero-restic-credentials' : 'velero-repo-credentials'));
  server.createObject(bsl('default'));
  return c;
}
