/**
 * Helpers for end-to-end tests of cairn without Velero (`cairn k8s …` and the agents'
 * maintenance): a cluster on the API test server whose default BSL maps repositories to local
 * directories (`resticRepoPrefix`), one fake kubelet pods directory per node, pods that carry
 * Velero's annotations, restore targets with the restore-wait init container, and the cairn CLI
 * pointed at the cluster.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { cairn, type RunResult } from './env.js';
import { FakeKubelet, startCluster, waitFor, type AgentProcess, type Cluster, type Obj, type VeleroLine } from './agent.js';

export class StandaloneCluster {
  readonly kubelets: Record<string, FakeKubelet>;

  constructor(readonly c: Cluster) {
    this.kubelets = { 'node-1': c.kubelet, 'node-2': new FakeKubelet(path.join(c.tmp, 'host_pods-node-2')) };
  }

  get http() {
    return this.c.http;
  }

  /** Local repository of a volume namespace (what the BSL's resticRepoPrefix maps it to). */
  repo(ns: string): string {
    return this.c.repo(ns);
  }

  /** `cairn k8s <args> --kubeconfig …` */
  k8s(args: string[], env: Record<string, string | undefined> = {}): Promise<RunResult> {
    const [sub, ...rest] = args;
    return cairn(['k8s', sub!, '--kubeconfig', this.c.kubeconfig, '--credentials-dir', path.join(this.c.tmp, 'credentials'), ...rest], { env: { KUBECONFIG: undefined, ...env } });
  }

  /** An agent for a node, reading that node's fake kubelet directory. */
  agent(node: 'node-1' | 'node-2', args: string[] = []): AgentProcess {
    return this.c.startAgent(['--node-name', node, ...args], { hostPodsDir: this.kubelets[node]!.root });
  }

  async namespace(name: string): Promise<void> {
    await this.http.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }

  /** A claim bound to a CSI PV (ReadWriteMany so several pods may share it). */
  async claim(ns: string, name: string, pvName = `pv-${ns}-${name}`): Promise<string> {
    await this.http.create({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: pvName },
      spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteMany'], persistentVolumeReclaimPolicy: 'Delete', csi: { driver: 'hostpath.csi.k8s.io', volumeHandle: pvName }, claimRef: { kind: 'PersistentVolumeClaim', namespace: ns, name } },
    });
    const pvc = await this.http.create({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name, namespace: ns },
      spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '1Gi' } }, volumeName: pvName },
    });
    return pvc.metadata.uid as string;
  }

  /**
   * Creates a pod as kubelet would run it (status Running, or Pending while its restore-wait init
   * container waits), and its volume directories in the node's kubelet dir. Returns the pod and
   * the host directory of each volume that has one.
   */
  async pod(o: {
    name: string;
    namespace: string;
    node: 'node-1' | 'node-2';
    volumes: Obj[];
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    /** Volumes the app container mounts (default: all). */
    mounts?: string[];
    /** Add the restore helper init container mounting these volumes under /restores. */
    restoreWait?: { volumes: string[]; args?: string[]; env?: Obj[] };
    phase?: string;
  }): Promise<{ pod: Obj; dirs: Record<string, string> }> {
    const mounts = o.mounts ?? o.volumes.map((v) => v.name as string);
    const spec: Obj = {
      nodeName: o.node,
      containers: [{ name: 'app', image: 'busybox:1.36', volumeMounts: mounts.map((m) => ({ name: m, mountPath: `/data/${m}` })) }],
      volumes: o.volumes,
    };
    let status: Obj = { phase: o.phase ?? 'Running' };
    if (o.restoreWait) {
      spec.initContainers = [
        {
          name: 'restore-wait',
          image: 'ghcr.io/example/cairn:latest',
          command: ['cairn', 'restore-helper'],
          args: o.restoreWait.args ?? ['$(POD_UID)'],
          env: o.restoreWait.env ?? [{ name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } }],
          volumeMounts: o.restoreWait.volumes.map((v) => ({ name: v, mountPath: `/restores/${v}` })),
        },
      ];
      status = { phase: 'Pending', initContainerStatuses: [{ name: 'restore-wait', ready: false, restartCount: 0, image: 'cairn', imageID: '', state: { waiting: { reason: 'PodInitializing' } } }] };
    }
    const created = await this.http.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: o.name, namespace: o.namespace, annotations: o.annotations, labels: o.labels }, spec });
    const uid = created.metadata.uid as string;
    const kubelet = this.kubelets[o.node]!;
    kubelet.podDir(uid);
    const dirs: Record<string, string> = {};
    for (const v of o.volumes) {
      if (v.emptyDir) dirs[v.name] = kubelet.emptyDir(uid, v.name);
      else if (v.persistentVolumeClaim) {
        const pvc = await this.http.get('v1', 'PersistentVolumeClaim', o.namespace, v.persistentVolumeClaim.claimName);
        dirs[v.name] = kubelet.csi(uid, pvc.spec.volumeName);
      } else if (v.configMap || v.secret) {
        dirs[v.name] = kubelet.volume(uid, v.configMap ? 'kubernetes.io~configmap' : 'kubernetes.io~secret', v.name);
      }
    }
    const pod = await this.http.patchStatus('v1', 'Pod', o.namespace, o.name, { status });
    return { pod, dirs };
  }

  /** The restore helper started: its container is running (the agent's trigger). */
  async restoreWaitRunning(ns: string, name: string): Promise<void> {
    await this.c.setRestoreWaitRunning(ns, name);
  }

  async pvbs(labelSelector?: string): Promise<Obj[]> {
    return this.http.list('velero.io/v1', 'PodVolumeBackup', 'velero', labelSelector);
  }

  async pvrs(labelSelector?: string): Promise<Obj[]> {
    return this.http.list('velero.io/v1', 'PodVolumeRestore', 'velero', labelSelector);
  }

  async leases(): Promise<Obj[]> {
    return (await this.http.request('GET', '/apis/coordination.k8s.io/v1/namespaces/velero/leases')).items as Obj[];
  }

  close(): Promise<void> {
    return this.c.close();
  }
}

export async function startStandalone(o: { velero?: VeleroLine } = {}): Promise<StandaloneCluster> {
  const c = await startCluster({ velero: o.velero ?? '1.16' });
  // The default BSL maps the repository of namespace <ns> to <tmp>/repos/restic/<ns>.
  const prefix = path.dirname(c.repo('x'));
  mkdirSync(prefix, { recursive: true });
  await c.http.mergePatch('velero.io/v1', 'BackupStorageLocation', 'velero', 'default', { spec: { default: true, config: { resticRepoPrefix: prefix } } });
  return new StandaloneCluster(c);
}

export function parseJson<T = Obj>(r: RunResult, what: string): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`${what}: not JSON (exit ${r.code})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

export { waitFor };
