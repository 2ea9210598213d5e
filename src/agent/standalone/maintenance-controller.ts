/**
 * Repository maintenance inside the node agents (`cairn agent --maintenance`): every agent looks
 * for due work every poll interval, and a per-repository Lease makes sure exactly one of them does
 * it. The repositories are those the cluster knows: BackupRepository/ResticRepository CRs (restic
 * type), the repositories of restic PodVolumeBackups, and the repositories cairn keeps a Lease for.
 * A CR's `maintenanceFrequency` (and `status.lastMaintenanceTime`, when Velero's server maintained
 * it) is honoured; otherwise the configured interval applies. The record of what was done lives on
 * the Lease, so a second agent sees it and does not repeat the work.
 *
 * While an agent holds a repository's Lease it renews the Lease and keeps the restic lock of the
 * running forget/prune/check refreshed (the engine refreshes lock files every five minutes as long
 * as they are held); losing the Lease aborts the work, which releases the restic lock.
 */
import { errorMessage } from '../../core/errors.js';
import type { MaintenanceConfig } from '../config.js';
import type { AgentContext } from '../context.js';
import { apiErrorMessage } from '../kube.js';
import { redactRepo } from '../log.js';
import { openItemRepository } from '../open-repo.js';
import { timeMs, uploaderOf } from '../velero.js';
import { CAIRN_COMPONENT, CAIRN_MANAGED_BY, CAIRN_REPOSITORY, CAIRN_STORAGE_LOCATION, CAIRN_VOLUME_NAMESPACE } from './labels.js';
import { leaseIdentity, type RepositoryLease } from './lease.js';
import { deleteBackupPvbs, dueWork, parseGoDuration, repositoryLease, runMaintenance, type MaintenanceSettings, type RepositoryRef } from './maintenance.js';
import { StandaloneKube } from './kube.js';

interface RepoCRFields {
  spec: { maintenanceFrequency?: string };
  status?: { lastMaintenanceTime?: string };
}

export class MaintenanceController {
  private readonly identity: string;
  private readonly leases = new Map<string, RepositoryLease>();
  private readonly kube: StandaloneKube;
  private timer?: { cancel(): void };
  private running?: Promise<void>;
  private stopped = false;
  private readonly stopController = new AbortController();

  constructor(private readonly ctx: AgentContext, private readonly cfg: MaintenanceConfig) {
    this.identity = leaseIdentity('cairn-agent', ctx.cfg.nodeName);
    this.kube = new StandaloneKube(ctx.kube.kc, ctx.kube);
  }

  private get settings(): MaintenanceSettings {
    return { pruneIntervalMs: this.cfg.pruneIntervalMs, checkIntervalMs: this.cfg.checkIntervalMs, readDataSubset: this.cfg.readDataSubset, maxUnused: this.cfg.maxUnused, retryLockMs: this.cfg.retryLockMs };
  }

  start(): void {
    this.ctx.log.info('repository maintenance enabled', { identity: this.identity, pruneEvery: this.cfg.pruneIntervalMs, checkEvery: this.cfg.checkIntervalMs, readDataSubset: this.cfg.readDataSubset });
    this.schedule(Math.min(this.cfg.pollMs, 1000));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    // jitter, so agents started together do not all read every lease at the same moment
    const jitter = Math.floor(Math.random() * Math.min(ms, 5000) * 0.2);
    this.timer = this.ctx.clock.setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined;
        this.schedule(this.cfg.pollMs);
      });
    }, ms + jitter);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.stopController.abort();
    await this.running?.catch(() => undefined);
  }

  /** The repositories the cluster knows, by identifier. */
  async repositories(): Promise<RepositoryRef[]> {
    const refs = new Map<string, RepositoryRef>();
    const add = (r: RepositoryRef) => {
      const prev = refs.get(r.identifier);
      refs.set(r.identifier, { ...r, ...prev, frequencyMs: prev?.frequencyMs ?? r.frequencyMs, lastMaintenanceMs: prev?.lastMaintenanceMs ?? r.lastMaintenanceMs });
    };
    for (const cr of this.ctx.repos.list()) {
      const type = cr.spec?.repositoryType ?? '';
      if ((type !== '' && type !== 'restic') || !cr.spec?.resticIdentifier || !cr.spec.backupStorageLocation) continue;
      const f = cr as unknown as RepoCRFields;
      add({
        identifier: cr.spec.resticIdentifier,
        storageLocation: cr.spec.backupStorageLocation,
        volumeNamespace: cr.spec.volumeNamespace,
        frequencyMs: parseGoDuration(f.spec.maintenanceFrequency),
        lastMaintenanceMs: timeMs(f.status?.lastMaintenanceTime) || undefined,
      });
    }
    for (const p of this.ctx.pvbs.list()) {
      if (uploaderOf(p) !== 'restic' || !p.spec.repoIdentifier || !p.spec.backupStorageLocation) continue;
      add({ identifier: p.spec.repoIdentifier, storageLocation: p.spec.backupStorageLocation, volumeNamespace: p.spec.pod?.namespace });
    }
    try {
      for (const l of await this.kube.listLeases(this.ctx.cfg.namespace, `${CAIRN_COMPONENT}=${CAIRN_MANAGED_BY}`)) {
        const a = l.metadata?.annotations ?? {};
        if (a[CAIRN_REPOSITORY] && a[CAIRN_STORAGE_LOCATION]) add({ identifier: a[CAIRN_REPOSITORY], storageLocation: a[CAIRN_STORAGE_LOCATION], volumeNamespace: a[CAIRN_VOLUME_NAMESPACE] });
      }
    } catch (e) {
      this.ctx.log.debug('could not list leases', { error: apiErrorMessage(e) });
    }
    return [...refs.values()].sort((a, b) => a.identifier.localeCompare(b.identifier));
  }

  private leaseOf(ref: RepositoryRef): RepositoryLease {
    let l = this.leases.get(ref.identifier);
    if (!l) {
      l = repositoryLease(this.kube, ref, { namespace: this.ctx.cfg.namespace, identity: this.identity, durationMs: this.cfg.leaseDurationMs, clock: this.ctx.clock, log: this.ctx.log });
      this.leases.set(ref.identifier, l);
    }
    return l;
  }

  /** One pass over all repositories: the due ones whose lease this agent gets are maintained. */
  async tick(): Promise<void> {
    let refs: RepositoryRef[];
    try {
      refs = await this.repositories();
    } catch (e) {
      this.ctx.log.warn('maintenance: cannot list repositories', { error: errorMessage(e) });
      return;
    }
    for (const ref of refs) {
      if (this.stopped) return;
      try {
        await this.maintain(ref);
      } catch (e) {
        this.ctx.log.warn('maintenance pass failed', { repository: redactRepo(ref.identifier), error: apiErrorMessage(e) });
      }
    }
  }

  private async maintain(ref: RepositoryRef): Promise<void> {
    // prune and forget write: never on a read-only location
    const bsl = this.ctx.bsls.get(ref.storageLocation, this.ctx.cfg.namespace);
    if (bsl?.spec.accessMode === 'ReadOnly') return;
    const lease = this.leaseOf(ref);
    const now = this.ctx.clock.now();
    // Decide from the lease's record first, so that an agent with nothing to do never competes.
    const current = await lease.read();
    if (lease.heldByOther(current, now)) return;
    if (!this.isDue(current?.metadata?.annotations, ref, now)) return;
    const held = await lease.tryAcquire();
    if (!held) return;
    const log = this.ctx.log.child({ repository: redactRepo(ref.identifier), lease: lease.opts.name });
    let changes: Record<string, string | undefined> = {};
    try {
      // Re-decide from the record we now hold: another agent may just have finished.
      const due = dueWork(held.annotations, ref, this.settings, this.ctx.clock.now());
      if (!due.prune && !due.check) return;
      log.info('maintenance lease acquired', { identity: this.identity, prune: due.prune, check: due.check });
      const signal = AbortSignal.any([held.signal, this.stopController.signal]);
      const { repo } = await openItemRepository(this.ctx, { repoIdentifier: ref.identifier, backupStorageLocation: ref.storageLocation }, log, 'backup');
      try {
        const r = await runMaintenance(repo, ref, { annotations: held.annotations, signal }, due, this.settings, {
          clock: this.ctx.clock,
          log,
          deletePvbs: (identifier, uids) => deleteBackupPvbs(this.kube, this.ctx.cfg.namespace, identifier, uids),
        });
        changes = r.annotations;
        log.info('maintenance finished', { pruned: r.pruned, forgottenSnapshots: r.removedSnapshots, deletedPvbs: r.deletedPvbs, checked: !!r.checked, error: r.error });
      } finally {
        await repo.backend.close().catch(() => undefined);
      }
    } catch (e) {
      log.warn('maintenance could not run', { error: errorMessage(e) });
    } finally {
      await held.release(changes);
      if (Object.keys(changes).length) log.info('maintenance lease released', { identity: this.identity });
    }
  }

  private isDue(ann: Record<string, string> | undefined, ref: RepositoryRef, now: number): boolean {
    const d = dueWork(ann, ref, this.settings, now);
    return d.prune || d.check;
  }
}
