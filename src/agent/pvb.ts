/**
 * PodVolumeBackup controller (contract §2): selects this node's restic-path PVBs, claims them,
 * backs the volume up exactly like Velero's restic path (`.` with cwd = volume dir, host velero,
 * key=value tags, explicit parent by PVC UID) and writes one terminal status.
 */
import type * as k8s from '@kubernetes/client-node';
import { CairnError, errorMessage, isCairnError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { shortId } from '../core/ids.js';
import { backup, listSnapshotsFiltered, type Repository } from '../engine/index.js';
import { abortItem, shutdownReason, type AgentContext, type CancelReason, type RunningItem } from './context.js';
import { hostPathAccess, resolveVolumeDir } from './hostpath.js';
import { apiErrorMessage } from './kube.js';
import { redactRepo } from './log.js';
import { openItemRepository } from './open-repo.js';
import { checkOwner } from './owners.js';
import type { Job } from './scheduler.js';
import { claim, failUnclaimed, StatusWriter } from './status.js';
import {
  EMPTY_VOLUME_MESSAGE,
  LABEL_PVC_UID,
  SNAPSHOT_HOST,
  controllerOwner,
  isNew,
  phaseOf,
  timeMs,
  uploaderOf,
  type Phase,
  type PodVolumeBackup,
  type PodVolumeStatus,
} from './velero.js';

export const PVB_PLURAL = 'podvolumebackups';

export type PvbDecision = 'process' | 'kopia' | 'ignore';

/** Contract §2.5: which PVBs this agent acts on. */
export function decidePvb(pvb: PodVolumeBackup, node: string): PvbDecision {
  if (pvb.spec?.node !== node) return 'ignore';
  if (!isNew(pvb) || pvb.spec.cancel === true) return 'ignore';
  const up = uploaderOf(pvb);
  if (up === 'restic') return 'process';
  if (up === 'kopia') return 'kopia';
  return 'ignore';
}

export function pvbLogger(ctx: AgentContext, pvb: PodVolumeBackup): Logger {
  return ctx.log.child({
    pvb: pvb.metadata.name,
    backup: pvb.metadata.labels?.['velero.io/backup-name'],
    pod: `${pvb.spec.pod?.namespace}/${pvb.spec.pod?.name}`,
    volume: pvb.spec.volume,
    repository: redactRepo(pvb.spec.repoIdentifier),
  });
}

export function cancelStatus(ctx: AgentContext, phases: ReadonlySet<Phase>, reason: CancelReason): PodVolumeStatus & { phase: Phase } {
  if (reason.kind === 'cancel' && phases.has('Canceled')) return { phase: 'Canceled', message: reason.message };
  return { phase: 'Failed', message: reason.message };
}

export function pvbJob(ctx: AgentContext, pvb: PodVolumeBackup): Job {
  return {
    key: `pvb/${pvb.metadata.uid}`,
    createdMs: timeMs(pvb.metadata.creationTimestamp),
    name: pvb.metadata.name ?? '',
    repoKey: pvb.spec.repoIdentifier ?? '',
    run: () => runPvb(ctx, pvb),
  };
}

/** Kopia PVBs for this node when this agent is the only node agent: fail at once instead of leaving the server waiting for hours. */
export async function failKopiaPvb(ctx: AgentContext, pvb: PodVolumeBackup): Promise<void> {
  const msg = 'this node agent (cairn) handles only the restic uploader; kopia pod volume backups are not supported (run the stock node-agent for kopia, and start cairn with --kopia-items=ignore)';
  const r = await failUnclaimed(ctx.kube, PVB_PLURAL, pvb, msg, ctx.clock.now());
  if (r === 'written') {
    pvbLogger(ctx, pvb).warn('kopia pod volume backup failed', { reason: msg });
    await ctx.events.emit(ctx.cfg.namespace, { involved: ctx.events.veleroRef('PodVolumeBackup', pvb.metadata), type: 'Warning', reason: 'UnsupportedUploader', message: msg });
  }
}

async function runPvb(ctx: AgentContext, queued: PodVolumeBackup): Promise<void> {
  const current = ctx.pvbs.get(queued.metadata.name!, queued.metadata.namespace) ?? queued;
  if (current.metadata.uid !== queued.metadata.uid || decidePvb(current, ctx.cfg.nodeName) !== 'process') return;
  const log = pvbLogger(ctx, current);
  const started = ctx.clock.now();
  // logged before the claim's round trip, so these lines show the queue's (FIFO) order even when
  // two items start at once and their claims return in either order
  log.info('pod volume backup dequeued');
  const claimed = await claim(ctx.kube, PVB_PLURAL, current, started);
  if (!claimed) {
    log.info('pod volume backup was changed or claimed by someone else; skipping');
    return;
  }
  ctx.observer.started?.('pvb');
  const item: RunningItem = {
    kind: 'pvb',
    uid: claimed.metadata.uid!,
    name: claimed.metadata.name!,
    ownerUid: controllerOwner(claimed.metadata, 'Backup')?.uid,
    controller: new AbortController(),
    cleanup: [],
  };
  const writer = new StatusWriter(ctx.kube, PVB_PLURAL, claimed.metadata, ctx.clock, ctx.cfg.progressIntervalMs, log);
  item.writer = writer;
  ctx.running.set(item.uid, item);
  if (ctx.state.shuttingDown) abortItem(item, shutdownReason('pvb'));
  log.info('pod volume backup started');
  let final: PodVolumeStatus & { phase: Phase };
  let errorCode: string | undefined;
  try {
    final = await backupVolume(ctx, claimed, item, writer, log);
  } catch (e) {
    if (item.cancel) final = cancelStatus(ctx, ctx.caps.pvbPhases, item.cancel);
    else final = { phase: 'Failed', message: errorMessage(e) };
    errorCode = item.cancel ? 'CANCELLED' : isCairnError(e) ? e.code : 'INTERNAL';
    if (!item.cancel || item.cancel.kind !== 'deleted') log.error('pod volume backup failed', { error: final.message, code: isCairnError(e) ? e.code : undefined });
  }
  try {
    const r = await writer.finish(final, ctx.clock.now());
    if (r === 'written') {
      log.info('pod volume backup finished', { phase: final.phase, snapshotID: final.snapshotID, message: final.message });
      if (final.phase === 'Failed') {
        const msg = `pod volume backup ${claimed.metadata.name} failed: ${final.message}`;
        await ctx.events.emit(ctx.cfg.namespace, { involved: ctx.events.veleroRef('PodVolumeBackup', claimed.metadata), type: 'Warning', reason: 'BackupFailed', message: final.message ?? '' });
        const pod = claimed.spec.pod;
        if (pod?.name && pod.namespace) {
          await ctx.events.emit(pod.namespace, { involved: { kind: 'Pod', apiVersion: 'v1', namespace: pod.namespace, name: pod.name, uid: pod.uid }, type: 'Warning', reason: 'VolumeBackupFailed', message: `volume ${claimed.spec.volume}: ${msg}` });
        }
      }
    } else if (r !== 'error') {
      log.warn('terminal status not written', { result: r, phase: final.phase });
    }
    ctx.observer.finished?.('pvb', {
      name: claimed.metadata.name!,
      namespace: claimed.metadata.namespace ?? '',
      owner: controllerOwner(claimed.metadata, 'Backup')?.name ?? '',
      backupStorageLocation: claimed.spec.backupStorageLocation ?? '',
      podNamespace: claimed.spec.pod?.namespace ?? '',
      uploaderType: claimed.spec.uploaderType ?? '',
      phase: final.phase,
      durationMs: ctx.clock.now() - started,
      bytes: final.progress?.bytesDone,
      bytesAdded: final.incrementalBytes,
      errorCode: final.phase === 'Completed' ? undefined : errorCode ?? 'IO',
    });
  } finally {
    ctx.running.delete(item.uid);
    for (const c of item.cleanup) await c().catch(() => undefined);
  }
}

async function backupVolume(ctx: AgentContext, pvb: PodVolumeBackup, item: RunningItem, writer: StatusWriter, log: Logger): Promise<PodVolumeStatus & { phase: Phase }> {
  const signal = item.controller.signal;
  const ownerProblem = await checkOwner(ctx, 'Backup', pvb.metadata);
  if (ownerProblem) {
    abortItem(item, { kind: 'owner', message: `${ownerProblem}; the pod volume backup was not started` });
    throw new CairnError('CANCELLED', ownerProblem);
  }
  const podRef = pvb.spec.pod ?? {};
  let pod: k8s.V1Pod | undefined;
  try {
    pod = await ctx.kube.getPod(podRef.namespace ?? '', podRef.name ?? '');
  } catch (e) {
    throw new CairnError('BACKEND', `error getting pod ${podRef.namespace}/${podRef.name}: ${apiErrorMessage(e)}`);
  }
  if (!pod) throw new CairnError('NOT_FOUND', `error getting pod ${podRef.namespace}/${podRef.name}: pod not found`);
  if (podRef.uid && pod.metadata?.uid !== podRef.uid) {
    throw new CairnError('NOT_FOUND', `pod ${podRef.namespace}/${podRef.name} has UID ${pod.metadata?.uid}, not ${podRef.uid}: the pod was replaced`);
  }
  if (pod.spec?.nodeName !== ctx.cfg.nodeName) {
    throw new CairnError('INVALID_ARGUMENT', `pod ${podRef.namespace}/${podRef.name} runs on node ${pod.spec?.nodeName ?? '(none)'}, not on ${ctx.cfg.nodeName}`);
  }
  const vol = await resolveVolumeDir(pod, pvb.spec.volume ?? '', ctx.kube, ctx.cfg.hostPodsDir, hostPathAccess(ctx.cfg)).catch((e: unknown) => {
    throw new CairnError(isCairnError(e) ? e.code : 'IO', `unable to locate volume ${pvb.spec.volume} of pod ${podRef.namespace}/${podRef.name}: ${errorMessage(e)}`);
  });
  signal.throwIfAborted();
  const { repo, parsed } = await openItemRepository(ctx, pvb.spec, log, 'backup');
  item.cleanup.push(() => repo.backend.close());
  signal.throwIfAborted();
  const parent = await chooseParent(ctx, pvb, repo, log);
  if (pvb.spec.uploaderSettings?.ParallelFilesUpload) log.debug('ParallelFilesUpload is honoured as file concurrency');
  const tags = Object.entries(pvb.spec.tags ?? {}).map(([k, v]) => `${k}=${v}`);
  const fileConcurrency = Number(pvb.spec.uploaderSettings?.ParallelFilesUpload) || undefined;
  let firstItemError: string | undefined;
  log.info('backing up volume', { path: vol.path, parent: parent ? shortId(parent) : undefined, repository: parsed.display });
  try {
    const r = await backup(repo, {
      paths: ['.'],
      cwd: vol.path,
      host: SNAPSHOT_HOST,
      tags,
      parent,
      fileConcurrency: fileConcurrency && fileConcurrency > 0 ? fileConcurrency : undefined,
      retryLockMs: ctx.cfg.retryLockMs,
      signal,
      reporter: {
        progress: (p) => writer.progress({ totalBytes: p.totalBytes, bytesDone: p.bytesDone }),
        itemError: (path, err) => {
          firstItemError ??= `${path}: ${err.message}`;
          log.warn('file could not be read', { file: path, error: err.message });
        },
      },
    });
    const s = r.summary;
    log.info('backup summary', {
      snapshot: r.snapshotId ? shortId(r.snapshotId) : undefined,
      parent: r.parent ? shortId(r.parent) : undefined,
      filesNew: s.filesNew,
      filesChanged: s.filesChanged,
      filesUnmodified: s.filesUnmodified,
      bytesProcessed: s.totalBytesProcessed,
      dataAdded: s.dataAdded,
      errors: s.errors,
      durationMs: r.durationMs,
    });
    const progress = { totalBytes: s.totalBytesProcessed, bytesDone: s.totalBytesProcessed };
    const snapshotID = r.snapshotId ? shortId(r.snapshotId) : '';
    const incremental = ctx.caps.incrementalBytes ? { incrementalBytes: s.dataAdded } : {};
    if (s.errors > 0) {
      // restic exits non-zero on partial reads and Velero then fails the PVB; the snapshot exists.
      return {
        phase: 'Failed',
        path: vol.path,
        snapshotID,
        progress,
        ...incremental,
        message: `data path backup failed: ${s.errors} file(s) could not be read (first: ${firstItemError ?? 'unknown'}); snapshot ${snapshotID} was saved without them`,
      };
    }
    return { phase: 'Completed', path: vol.path, snapshotID, progress, ...incremental };
  } catch (e) {
    if (isCairnError(e, 'EMPTY_SNAPSHOT')) {
      return { phase: 'Completed', path: vol.path, snapshotID: '', message: EMPTY_VOLUME_MESSAGE };
    }
    if (item.cancel) throw e;
    throw new CairnError(isCairnError(e) ? e.code : 'IO', `data path backup failed: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * Parent snapshot (contract §2.7): the newest Completed PVB of the same PVC, BSL and uploader whose
 * snapshot exists in this repository; otherwise the newest snapshot of this repository tagged with
 * the same pvc-uid. Non-PVC volumes get restic's own choice (same host and path).
 */
export async function chooseParent(ctx: AgentContext, pvb: PodVolumeBackup, repo: Repository, log: Logger): Promise<string | undefined> {
  const pvcUid = pvb.metadata.labels?.[LABEL_PVC_UID];
  if (!pvcUid) return undefined;
  const candidates = ctx.pvbs
    .list()
    .filter(
      (p) =>
        p.metadata.uid !== pvb.metadata.uid &&
        p.metadata.labels?.[LABEL_PVC_UID] === pvcUid &&
        phaseOf(p) === 'Completed' &&
        !!p.status?.snapshotID &&
        p.spec.backupStorageLocation === pvb.spec.backupStorageLocation &&
        (p.spec.repoIdentifier ?? '') === (pvb.spec.repoIdentifier ?? '') &&
        uploaderOf(p) === uploaderOf(pvb),
    )
    .sort((a, b) => timeMs(b.status?.startTimestamp) - timeMs(a.status?.startTimestamp));
  const snapshots = await listSnapshotsFiltered(repo);
  for (const c of candidates) {
    const prefix = c.status!.snapshotID!;
    const hits = snapshots.filter((s) => s.id.startsWith(prefix));
    if (hits.length === 1) {
      log.debug('parent from a previous pod volume backup', { parentPvb: c.metadata.name, parent: prefix });
      return hits[0]!.id;
    }
    log.debug('snapshot of a previous pod volume backup is not in the repository', { parentPvb: c.metadata.name, snapshot: prefix });
  }
  const tag = `pvc-uid=${pvcUid}`;
  const tagged = snapshots.filter((s) => s.snapshot.hostname === SNAPSHOT_HOST && (s.snapshot.tags ?? []).includes(tag));
  const newest = tagged[tagged.length - 1];
  if (newest) log.debug('parent from the repository by pvc-uid tag', { parent: shortId(newest.id) });
  return newest?.id;
}
