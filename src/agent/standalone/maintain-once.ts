/**
 * `cairn k8s maintain`: the agents' maintenance on demand (or from a CronJob): for the repository
 * of each namespace, take its Lease (waiting while another node maintains it), apply the recorded
 * retention policies, prune, and check with a read-data subset when asked; record the outcome on
 * the Lease like the agents do, so their schedule accounts for it.
 */
import type { Clock } from '../../core/clock.js';
import { CairnError } from '../../core/errors.js';
import { leaseIdentity } from './lease.js';
import { deleteBackupPvbs, repositoryLease, runMaintenance, type MaintenanceResult } from './maintenance.js';
import { clusterCapabilities, openTarget, repoTarget, resolveBsl, type ClusterContext } from './repos.js';

export interface MaintainOnceOptions {
  namespaces: string[];
  storageLocation?: string;
  prune: boolean;
  check: boolean;
  readDataSubset?: string;
  maxUnused?: string;
  leaseWaitMs: number;
  leaseDurationMs?: number;
  retryLockMs: number;
  clock: Clock;
  signal?: AbortSignal;
}

export interface MaintainOnceResult {
  namespace: string;
  repository: string;
  result?: MaintenanceResult;
  skipped?: string;
}

export async function maintainOnce(cc: ClusterContext, o: MaintainOnceOptions): Promise<MaintainOnceResult[]> {
  if (o.namespaces.length === 0) throw new CairnError('INVALID_ARGUMENT', 'no namespace: use --namespace');
  if (!o.prune && !o.check) throw new CairnError('INVALID_ARGUMENT', 'nothing to do: --no-prune without --check');
  const caps = await clusterCapabilities(cc.kube);
  const bsl = await resolveBsl(cc, o.storageLocation);
  const out: MaintainOnceResult[] = [];
  for (const ns of o.namespaces) {
    const target = await repoTarget(cc, bsl, ns);
    const ref = { identifier: target.identifier, storageLocation: bsl.metadata.name!, volumeNamespace: ns };
    const lease = repositoryLease(cc.kube, ref, { namespace: cc.veleroNamespace, identity: leaseIdentity('cairn-k8s-maintain'), durationMs: o.leaseDurationMs ?? 60_000, clock: o.clock, log: cc.log });
    const held = await lease.acquire(o.leaseWaitMs, o.signal);
    if (!held) {
      out.push({ namespace: ns, repository: target.parsed.display, skipped: `lease held by ${(await lease.read())?.spec?.holderIdentity ?? 'another process'}` });
      continue;
    }
    let changes: Record<string, string | undefined> = {};
    try {
      const opened = await openTarget(cc, target, { caps });
      try {
        const signal = o.signal ? AbortSignal.any([held.signal, o.signal]) : held.signal;
        const r = await runMaintenance(opened.repo, ref, { annotations: held.annotations, signal }, { prune: o.prune, check: o.check }, {
          pruneIntervalMs: 0,
          checkIntervalMs: 0,
          readDataSubset: o.readDataSubset,
          maxUnused: o.maxUnused,
          retryLockMs: o.retryLockMs,
        }, { clock: o.clock, log: cc.log, deletePvbs: (id, uids) => deleteBackupPvbs(cc.kube, cc.veleroNamespace, id, uids) });
        changes = r.annotations;
        out.push({ namespace: ns, repository: target.parsed.display, result: r });
      } finally {
        await opened.repo.backend.close().catch(() => undefined);
      }
    } finally {
      await held.release(changes);
    }
  }
  return out;
}
