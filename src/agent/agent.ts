/**
 * The node agent: caches (informers) for this namespace's Velero objects and this node's pods,
 * startup checks, the PVB/PVR/repository controllers, the concurrency scheduler, and shutdown.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { systemClock, type Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { detectCapabilities, type Capabilities } from './capabilities.js';
import { concurrencyFor, parseNodeAgentConfig, type AgentConfig } from './config.js';
import { abortItem, EventRecorder, shutdownReason, type AgentContext, type AgentObserver, type ItemKind } from './context.js';
import { podDirName } from './hostpath.js';
import { Informer } from './informer.js';
import { apiErrorMessage, KubeClient } from './kube.js';
import { ownerProblemOf } from './owners.js';
import { decidePvb, failKopiaPvb, PVB_PLURAL, pvbJob } from './pvb.js';
import { decidePvr, failKopiaPvr, podOfPvr, PVR_PLURAL, pvrJob, pvrsOfPod } from './pvr.js';
import { RepositoryController } from './repositories.js';
import { Scheduler } from './scheduler.js';
import { MaintenanceController } from './standalone/maintenance-controller.js';
import { AgentState } from './state.js';
import { failInProgress } from './status.js';
import { VELERO_GROUP, VELERO_VERSION, controllerOwner, phaseOf, type BackupStorageLocation, type OwnerObject, type PodVolumeBackup, type PodVolumeRestore, type RepositoryCR } from './velero.js';

export const STARTUP_PVB_MESSAGE =
  'found a podvolumebackup with status "InProgress" during the server starting, mark it as "Failed" (the node agent restarted while it was running; restic-path work cannot be resumed)';
export const STARTUP_PVR_MESSAGE =
  'found a podvolumerestore with status "InProgress" during the server starting, mark it as "Failed" (the node agent restarted while it was running; restic-path work cannot be resumed)';

export interface AgentOptions {
  config: AgentConfig;
  kubeConfig: k8s.KubeConfig;
  logger: Logger;
  clock?: Clock;
  state?: AgentState;
  observer?: AgentObserver;
}

export class Agent {
  readonly state: AgentState;
  private readonly cfg: AgentConfig;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly kube: KubeClient;
  private readonly scheduler: Scheduler;
  private ctx?: AgentContext;
  private repoController?: RepositoryController;
  private maintenance?: MaintenanceController;
  private started = false;
  private stopped = false;
  private hostPodsOk = false;
  private resyncTimer?: NodeJS.Timeout;
  private readonly failingKopia = new Set<string>();
  private readonly informers: Array<Informer<object>> = [];
  private readonly stopController = new AbortController();

  constructor(private readonly opts: AgentOptions) {
    this.cfg = opts.config;
    this.log = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.state = opts.state ?? new AgentState();
    this.kube = new KubeClient(opts.kubeConfig);
    this.scheduler = new Scheduler(
      this.cfg.concurrency,
      this.cfg.perRepoConcurrency,
      (job, e) => this.log.error('work item crashed', { item: job.key, error: errorMessage(e) }),
      (running, queued) => {
        this.state.running = running;
        this.state.queued = queued;
        this.opts.observer?.queued?.('pvb', this.scheduler.queuedWithPrefix('pvb/'));
        this.opts.observer?.queued?.('pvr', this.scheduler.queuedWithPrefix('pvr/'));
      },
    );
  }

  /** Runs the startup sequence and starts the controllers; resolves once work can begin. */
  async start(): Promise<void> {
    this.log.info('starting node agent', { node: this.cfg.nodeName, namespace: this.cfg.namespace, hostPodsDir: this.cfg.hostPodsDir });
    // A ref'd timer keeps the process alive while watches reconnect.
    this.resyncTimer = setInterval(() => this.resync(), this.cfg.resyncIntervalMs);
    const caps = await this.retry('reading the Velero CRDs', () => this.capabilities());
    if (!caps) return;
    this.log.info('detected Velero installation', {
      version: caps.summary,
      pvbPhases: [...caps.pvbPhases],
      repository: caps.repoPlural,
    });
    await this.configureConcurrency();
    this.ctx = this.buildContext(caps);
    this.repoController = new RepositoryController(this.ctx);
    this.registerHandlers(this.ctx);
    this.state.setReady(false, 'waiting for the caches to sync');
    await Promise.all(this.informers.map((i) => i.start()));
    for (;;) {
      if (this.stopped) return;
      const notSynced = [this.ctx.pvbs, this.ctx.pvrs, this.ctx.pods].filter((i) => !i.synced);
      if (notSynced.length === 0) break;
      this.state.setReady(false, `waiting for the caches to sync (${notSynced.map((i) => i.lastError ?? 'listing').join('; ')})`);
      await this.clock.sleep(200, this.stopController.signal).catch(() => undefined);
    }
    await this.checkHostPods();
    await this.recoverInProgress(this.ctx);
    this.started = true;
    this.resync();
    if (this.cfg.maintenance && !this.stopped) {
      this.maintenance = new MaintenanceController(this.ctx, this.cfg.maintenance);
      this.maintenance.start();
    }
  }

  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    let delay = 1000;
    for (;;) {
      if (this.stopped) return undefined;
      try {
        return await fn();
      } catch (e) {
        const msg = apiErrorMessage(e);
        this.state.setReady(false, `${what} failed: ${msg}`);
        this.log.warn(`${what} failed, retrying`, { error: msg, retryInMs: delay });
        await this.clock.sleep(delay, this.stopController.signal).catch(() => undefined);
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  private async capabilities(): Promise<Capabilities> {
    const [pvb, pvr, br, rr] = await Promise.all(
      ['podvolumebackups', 'podvolumerestores', 'backuprepositories', 'resticrepositories'].map((n) => this.kube.getCrd(`${n}.velero.io`)),
    );
    if (!pvb) throw new Error('CRD podvolumebackups.velero.io is not installed');
    return detectCapabilities(pvb, pvr, br, rr);
  }

  private async configureConcurrency(): Promise<void> {
    let global = this.cfg.concurrency;
    if (this.cfg.nodeAgentConfigMap) {
      try {
        const data = await this.kube.getConfigMapData(this.cfg.namespace, this.cfg.nodeAgentConfigMap);
        if (!data) this.log.warn('node-agent ConfigMap not found; using the default concurrency', { configMap: this.cfg.nodeAgentConfigMap });
        const lc = data ? parseNodeAgentConfig(data) : undefined;
        if (lc) {
          const labels = lc.perNodeConfig?.length ? await this.kube.getNodeLabels(this.cfg.nodeName) : {};
          global = concurrencyFor(lc, labels, global);
        }
      } catch (e) {
        this.log.warn('cannot use the node-agent ConfigMap; using the default concurrency', { configMap: this.cfg.nodeAgentConfigMap, error: apiErrorMessage(e) });
      }
    }
    this.scheduler.globalLimit = global;
    this.log.info('concurrency', { global, perRepository: this.cfg.perRepoConcurrency });
  }

  private buildContext(caps: Capabilities): AgentContext {
    const { kc } = this.kube;
    const ns = this.cfg.namespace;
    const common = { logger: this.log, clock: this.clock };
    const velero = <T extends object>(plural: string) =>
      new Informer<T>(kc, `/apis/${VELERO_GROUP}/${VELERO_VERSION}/namespaces/${ns}/${plural}`, () => this.kube.listVelero<T>(ns, plural), { name: plural, ...common });
    const fieldSelector = `spec.nodeName=${this.cfg.nodeName}`;
    const pods = new Informer<k8s.V1Pod>(kc, '/api/v1/pods', () => this.kube.core.listPodForAllNamespaces({ fieldSelector }), { name: 'pods', fieldSelector, ...common });
    const ctx: AgentContext = {
      cfg: this.cfg,
      kube: this.kube,
      log: this.log,
      clock: this.clock,
      state: this.state,
      caps,
      pvbs: velero<PodVolumeBackup>(PVB_PLURAL),
      pvrs: velero<PodVolumeRestore>(PVR_PLURAL),
      pods,
      bsls: velero<BackupStorageLocation>('backupstoragelocations'),
      backups: velero<OwnerObject>('backups'),
      restores: velero<OwnerObject>('restores'),
      repos: velero<RepositoryCR>(caps.repoPlural),
      running: new Map(),
      keyHints: new Map(),
      observer: this.opts.observer ?? {},
      events: new EventRecorder(this.kube, this.cfg.nodeName, this.clock, this.log),
    };
    this.informers.push(ctx.pvbs, ctx.pvrs, ctx.pods, ctx.bsls, ctx.backups, ctx.restores, ctx.repos);
    return ctx;
  }

  private registerHandlers(ctx: AgentContext): void {
    const onPvb = (o: PodVolumeBackup) => this.onPvb(o);
    const onPvr = (o: PodVolumeRestore) => this.onPvr(o);
    ctx.pvbs.on({ add: onPvb, update: onPvb, delete: (o) => this.onDeleted('pvb', o) });
    ctx.pvrs.on({ add: onPvr, update: onPvr, delete: (o) => this.onDeleted('pvr', o) });
    const onPod = (pod: k8s.V1Pod) => {
      if (!this.started) return;
      for (const pvr of pvrsOfPod(ctx, pod)) this.onPvr(pvr);
    };
    ctx.pods.on({ add: onPod, update: onPod });
    const onOwner = (kind: 'Backup' | 'Restore', deleted: boolean) => (o: OwnerObject) => this.onOwner(kind, o, deleted);
    ctx.backups.on({ update: onOwner('Backup', false), delete: onOwner('Backup', true) });
    ctx.restores.on({ update: onOwner('Restore', false), delete: onOwner('Restore', true) });
    const onRepo = (cr: RepositoryCR) => {
      if (this.started) this.repoController?.handle(cr);
    };
    ctx.repos.on({ add: onRepo, update: onRepo });
  }

  private get canClaim(): boolean {
    return this.started && !this.stopped && this.hostPodsOk;
  }

  private onPvb(pvb: PodVolumeBackup): void {
    const ctx = this.ctx;
    if (!ctx || !this.started || this.stopped) return;
    const uid = pvb.metadata.uid ?? '';
    const running = ctx.running.get(uid);
    if (running) {
      if (pvb.spec?.cancel === true) abortItem(running, { kind: 'cancel', message: 'pod volume backup was canceled (spec.cancel was set)' });
      return;
    }
    switch (decidePvb(pvb, this.cfg.nodeName)) {
      case 'process':
        if (this.scheduler.enqueue(pvbJob(ctx, pvb))) ctx.observer.enqueued?.('pvb');
        break;
      case 'kopia':
        if (this.cfg.kopiaItems === 'fail' && this.canClaim) this.failKopia(uid, () => failKopiaPvb(ctx, pvb));
        break;
      default:
        this.scheduler.remove(`pvb/${uid}`);
    }
  }

  private onPvr(pvr: PodVolumeRestore): void {
    const ctx = this.ctx;
    if (!ctx || !this.started || this.stopped) return;
    const uid = pvr.metadata.uid ?? '';
    const running = ctx.running.get(uid);
    if (running) {
      if (pvr.spec?.cancel === true) abortItem(running, { kind: 'cancel', message: 'pod volume restore was canceled (spec.cancel was set)' });
      return;
    }
    switch (decidePvr(pvr, podOfPvr(ctx, pvr), this.cfg.nodeName)) {
      case 'process':
        if (this.scheduler.enqueue(pvrJob(ctx, pvr))) ctx.observer.enqueued?.('pvr');
        break;
      case 'kopia':
        if (this.cfg.kopiaItems === 'fail' && this.canClaim) this.failKopia(uid, () => failKopiaPvr(ctx, pvr));
        break;
      default:
        this.scheduler.remove(`pvr/${uid}`);
    }
  }

  private failKopia(uid: string, fn: () => Promise<void>): void {
    if (this.failingKopia.has(uid)) return;
    this.failingKopia.add(uid);
    void fn()
      .catch((e) => this.log.warn('could not fail a kopia item', { error: apiErrorMessage(e) }))
      .finally(() => this.failingKopia.delete(uid));
  }

  private onDeleted(kind: ItemKind, o: PodVolumeBackup | PodVolumeRestore): void {
    const uid = o.metadata.uid ?? '';
    this.scheduler.remove(`${kind}/${uid}`);
    const running = this.ctx?.running.get(uid);
    if (running) {
      this.log.warn('object deleted while running; stopping', { [kind]: o.metadata.name });
      abortItem(running, { kind: 'deleted', message: `the pod volume ${kind === 'pvb' ? 'backup' : 'restore'} was deleted while running` });
    }
  }

  private onOwner(kind: 'Backup' | 'Restore', owner: OwnerObject, deleted: boolean): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const ownerUid = owner.metadata.uid;
    for (const item of ctx.running.values()) {
      if (!item.ownerUid || item.ownerUid !== ownerUid) continue;
      if ((kind === 'Backup') !== (item.kind === 'pvb')) continue;
      const problem = ownerProblemOf(kind, { name: owner.metadata.name ?? '', uid: ownerUid }, deleted ? undefined : owner);
      if (problem) {
        this.log.warn('owner no longer waits for the result; stopping', { item: item.name, reason: problem });
        abortItem(item, { kind: 'owner', message: `${problem}; the pod volume ${item.kind === 'pvb' ? 'backup' : 'restore'} was stopped` });
      }
    }
  }

  /** §10.5: every running pod of this node must have its directory under the host pods dir. */
  async checkHostPods(): Promise<boolean> {
    const ctx = this.ctx;
    if (!ctx) return false;
    const dir = this.cfg.hostPodsDir;
    let problem: string | undefined;
    if (!existsSync(dir)) {
      problem = `host pods directory ${dir} does not exist (mount the kubelet pods directory there)`;
    } else {
      const missing = ctx.pods
        .list()
        .filter((p) => p.status?.phase === 'Running' && !existsSync(path.join(dir, podDirName(p))))
        .map((p) => `${p.metadata?.namespace}/${p.metadata?.name} (${podDirName(p)})`);
      if (missing.length) {
        problem = `host pods directory ${dir} does not correspond to the kubelet pods directory of node ${this.cfg.nodeName}: no directory for ${missing.length} running pod(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`;
      }
    }
    const was = this.hostPodsOk;
    this.hostPodsOk = !problem;
    if (problem) {
      if (was || this.state.reason !== problem) this.log.error('host pods directory check failed; not taking work', { reason: problem });
      this.state.setReady(false, problem);
      this.scheduler.pause();
    } else {
      if (!was) this.log.info('host pods directory matches the pods of this node', { dir });
      this.state.setReady(true);
      if (!this.stopped) this.scheduler.resume();
    }
    return !problem;
  }

  /** §11.1: this node's InProgress items cannot be resumed; fail them so nothing stays stuck. */
  private async recoverInProgress(ctx: AgentContext): Promise<void> {
    for (const pvb of ctx.pvbs.list()) {
      if (pvb.spec?.node !== this.cfg.nodeName || phaseOf(pvb) !== 'InProgress' || ctx.running.has(pvb.metadata.uid ?? '')) continue;
      await this.failStale(PVB_PLURAL, pvb, STARTUP_PVB_MESSAGE);
    }
    for (const pvr of ctx.pvrs.list()) {
      if (phaseOf(pvr) !== 'InProgress' || ctx.running.has(pvr.metadata.uid ?? '')) continue;
      const pod = podOfPvr(ctx, pvr);
      if (!pod || pod.spec?.nodeName !== this.cfg.nodeName) continue;
      await this.failStale(PVR_PLURAL, pvr, STARTUP_PVR_MESSAGE);
    }
  }

  private async failStale(plural: string, o: PodVolumeBackup | PodVolumeRestore, message: string): Promise<void> {
    try {
      const r = await failInProgress(this.kube, plural, o.metadata, message, this.clock.now());
      if (r === 'written') this.log.warn('marked an interrupted item Failed', { [plural === PVB_PLURAL ? 'pvb' : 'pvr']: o.metadata.name });
    } catch (e) {
      this.log.error('could not fail an interrupted item', { name: o.metadata.name, error: apiErrorMessage(e) });
    }
  }

  /** Periodic pass over the caches: catches missed events, owner changes and host-path recovery. */
  private resync(): void {
    const ctx = this.ctx;
    if (!ctx || !this.started || this.stopped) return;
    void (async () => {
      if (!this.hostPodsOk) await this.checkHostPods();
      for (const item of ctx.running.values()) {
        const list = item.kind === 'pvb' ? ctx.pvbs : ctx.pvrs;
        const obj = list.list().find((o) => o.metadata.uid === item.uid) as PodVolumeBackup | PodVolumeRestore | undefined;
        if (obj?.spec?.cancel === true) abortItem(item, { kind: 'cancel', message: `pod volume ${item.kind === 'pvb' ? 'backup' : 'restore'} was canceled (spec.cancel was set)` });
        const ownerKind = item.kind === 'pvb' ? 'Backup' : 'Restore';
        const informer = item.kind === 'pvb' ? ctx.backups : ctx.restores;
        const ref = obj ? controllerOwner(obj.metadata, ownerKind) : undefined;
        if (ref && informer.synced) {
          const problem = ownerProblemOf(ownerKind, ref, informer.get(ref.name, this.cfg.namespace));
          if (problem) abortItem(item, { kind: 'owner', message: `${problem}; the pod volume ${item.kind === 'pvb' ? 'backup' : 'restore'} was stopped` });
        }
      }
      for (const pvb of ctx.pvbs.list()) this.onPvb(pvb);
      for (const pvr of ctx.pvrs.list()) this.onPvr(pvr);
      for (const cr of ctx.repos.list()) this.repoController?.handle(cr);
    })().catch((e) => this.log.error('resync failed', { error: errorMessage(e) }));
  }

  /**
   * Graceful stop: claim nothing more, abort running work, and make sure every running item ends
   * Failed (one terminal write) within the grace period.
   */
  async shutdown(graceMs = this.cfg.shutdownGraceMs): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.state.shuttingDown = true;
    this.state.setReady(false, 'shutting down');
    this.stopController.abort();
    this.scheduler.pause();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    // aborts running maintenance (its restic lock is released) and gives its lease up
    await this.maintenance?.stop();
    const ctx = this.ctx;
    if (ctx) {
      const items = [...ctx.running.values()];
      if (items.length) this.log.warn('stopping running work', { items: items.map((i) => i.name) });
      for (const item of items) abortItem(item, shutdownReason(item.kind));
      // Leave a margin of the grace period for our own terminal writes.
      const wait = Math.max(0, graceMs - 3000);
      const timer = this.clock.setTimeout(() => undefined, wait);
      await Promise.race([this.scheduler.idle(), this.clock.sleep(wait)]);
      timer.cancel();
      for (const item of ctx.running.values()) {
        if (item.writer && !item.writer.isFinished) {
          const r = shutdownReason(item.kind);
          await item.writer.finish({ phase: 'Failed', message: r.message }, this.clock.now());
        }
      }
    }
    await Promise.all(this.informers.map((i) => i.stop().catch(() => undefined)));
    this.log.info('node agent stopped');
  }
}
