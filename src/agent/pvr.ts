/**
 * PodVolumeRestore controller (contract §3, §7): a PVR is processed once its target pod runs on
 * this node and the restore helper init container is running; the snapshot root becomes the volume
 * root, then the marker `.velero/<Restore UID>` tells the helper the volume is ready.
 */
import { chmod, lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { CairnError, errorMessage, isCairnError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { restore, snapshotSize } from '../engine/index.js';
import { abortItem, shutdownReason, type AgentContext, type RunningItem } from './context.js';
import { hostPathAccess, resolveVolumeDir } from './hostpath.js';
import { apiErrorMessage } from './kube.js';
import { redactRepo } from './log.js';
import { openItemRepository } from './open-repo.js';
import { checkOwner } from './owners.js';
import { cancelStatus } from './pvb.js';
import type { Job } from './scheduler.js';
import { claim, failUnclaimed, StatusWriter } from './status.js';
import { LABEL_POD_UID, LABEL_RESTORE_MODE, RESTORE_MODE_IN_PLACE, WAIT_CONTAINERS, controllerOwner, isNew, timeMs, uploaderOf, type Phase, type PodVolumeRestore, type PodVolumeStatus } from './velero.js';

export const PVR_PLURAL = 'podvolumerestores';

export type PvrDecision = 'process' | 'kopia' | 'wait' | 'ignore';

/** The restore helper container's status when it is running, with its position among the init containers. */
export function waitContainerRunning(pod: k8s.V1Pod): { name: string; index: number } | undefined {
  const inits = pod.spec?.initContainers ?? [];
  const index = inits.findIndex((c) => WAIT_CONTAINERS.includes(c.name));
  if (index < 0) return undefined;
  const name = inits[index]!.name;
  const st = pod.status?.initContainerStatuses?.find((s) => s.name === name);
  return st?.state?.running ? { name, index } : undefined;
}

/**
 * cairn's in-place restores (label `cairn.io/restore-mode=in-place`, created only on explicit
 * request by `cairn k8s restore --in-place`): the data goes into a running pod's volume, so there
 * is no restore helper to wait for and no marker to write.
 */
export function isInPlace(pvr: PodVolumeRestore): boolean {
  return pvr.metadata.labels?.[LABEL_RESTORE_MODE] === RESTORE_MODE_IN_PLACE;
}

/**
 * Contract §3.3: the PVR is new, restic, and its pod is here with the wait container running
 * (in-place restores: with the pod running).
 */
export function decidePvr(pvr: PodVolumeRestore, pod: k8s.V1Pod | undefined, node: string): PvrDecision {
  if (!isNew(pvr) || pvr.spec?.cancel === true) return 'ignore';
  if (!pod || pod.spec?.nodeName !== node) return 'ignore';
  if (pvr.spec.pod?.uid && pod.metadata?.uid !== pvr.spec.pod.uid) return 'ignore';
  const up = uploaderOf(pvr);
  if (up !== 'restic' && up !== 'kopia') return 'ignore';
  if (isInPlace(pvr)) {
    if (pod.status?.phase !== 'Running' || pod.metadata?.deletionTimestamp) return 'wait';
  } else if (!waitContainerRunning(pod)) return 'wait';
  return up === 'restic' ? 'process' : 'kopia';
}

export function podOfPvr(ctx: AgentContext, pvr: PodVolumeRestore): k8s.V1Pod | undefined {
  const ref = pvr.spec?.pod;
  if (!ref?.name) return undefined;
  return ctx.pods.get(ref.name, ref.namespace);
}

export function pvrsOfPod(ctx: AgentContext, pod: k8s.V1Pod): PodVolumeRestore[] {
  const uid = pod.metadata?.uid;
  if (!uid) return [];
  return ctx.pvrs.list().filter((p) => p.metadata.labels?.[LABEL_POD_UID] === uid || (p.spec?.pod?.uid === uid && !p.metadata.labels?.[LABEL_POD_UID]));
}

function pvrLogger(ctx: AgentContext, pvr: PodVolumeRestore): Logger {
  return ctx.log.child({
    pvr: pvr.metadata.name,
    restore: pvr.metadata.labels?.['velero.io/restore-name'],
    pod: `${pvr.spec.pod?.namespace}/${pvr.spec.pod?.name}`,
    volume: pvr.spec.volume,
    repository: redactRepo(pvr.spec.repoIdentifier),
  });
}

export function pvrJob(ctx: AgentContext, pvr: PodVolumeRestore): Job {
  return {
    key: `pvr/${pvr.metadata.uid}`,
    createdMs: timeMs(pvr.metadata.creationTimestamp),
    name: pvr.metadata.name ?? '',
    repoKey: pvr.spec.repoIdentifier ?? '',
    run: () => runPvr(ctx, pvr),
  };
}

export async function failKopiaPvr(ctx: AgentContext, pvr: PodVolumeRestore): Promise<void> {
  const msg = 'this node agent (cairn) handles only the restic uploader; kopia pod volume restores are not supported (run the stock node-agent for kopia, and start cairn with --kopia-items=ignore)';
  const r = await failUnclaimed(ctx.kube, PVR_PLURAL, pvr, msg, ctx.clock.now());
  if (r === 'written') {
    pvrLogger(ctx, pvr).warn('kopia pod volume restore failed', { reason: msg });
    await ctx.events.emit(ctx.cfg.namespace, { involved: ctx.events.veleroRef('PodVolumeRestore', pvr.metadata), type: 'Warning', reason: 'UnsupportedUploader', message: msg });
  }
}

async function runPvr(ctx: AgentContext, queued: PodVolumeRestore): Promise<void> {
  const current = ctx.pvrs.get(queued.metadata.name!, queued.metadata.namespace) ?? queued;
  if (current.metadata.uid !== queued.metadata.uid || decidePvr(current, podOfPvr(ctx, current), ctx.cfg.nodeName) !== 'process') return;
  const log = pvrLogger(ctx, current);
  const started = ctx.clock.now();
  // logged before the claim's round trip, so these lines show the queue's (FIFO) order even when
  // two items start at once and their claims return in either order
  log.info('pod volume restore dequeued');
  const claimed = await claim(ctx.kube, PVR_PLURAL, current, started);
  if (!claimed) {
    log.info('pod volume restore was changed or claimed by someone else; skipping');
    return;
  }
  ctx.observer.started?.('pvr');
  const item: RunningItem = {
    kind: 'pvr',
    uid: claimed.metadata.uid!,
    name: claimed.metadata.name!,
    ownerUid: controllerOwner(claimed.metadata, 'Restore')?.uid,
    controller: new AbortController(),
    cleanup: [],
  };
  const writer = new StatusWriter(ctx.kube, PVR_PLURAL, claimed.metadata, ctx.clock, ctx.cfg.progressIntervalMs, log);
  item.writer = writer;
  ctx.running.set(item.uid, item);
  if (ctx.state.shuttingDown) abortItem(item, shutdownReason('pvr'));
  log.info('pod volume restore started');
  let final: PodVolumeStatus & { phase: Phase };
  let errorCode: string | undefined;
  try {
    final = await restoreVolume(ctx, claimed, item, writer, log);
  } catch (e) {
    if (item.cancel) final = cancelStatus(ctx, ctx.caps.pvrPhases, item.cancel);
    else final = { phase: 'Failed', message: errorMessage(e) };
    errorCode = item.cancel ? 'CANCELLED' : isCairnError(e) ? e.code : 'INTERNAL';
    if (!item.cancel || item.cancel.kind !== 'deleted') log.error('pod volume restore failed', { error: final.message, code: isCairnError(e) ? e.code : undefined });
  }
  try {
    const r = await writer.finish(final, ctx.clock.now());
    if (r === 'written') {
      log.info('pod volume restore finished', { phase: final.phase, message: final.message });
      if (final.phase === 'Failed') {
        await ctx.events.emit(ctx.cfg.namespace, { involved: ctx.events.veleroRef('PodVolumeRestore', claimed.metadata), type: 'Warning', reason: 'RestoreFailed', message: final.message ?? '' });
        const pod = claimed.spec.pod;
        if (pod?.name && pod.namespace) {
          await ctx.events.emit(pod.namespace, {
            involved: { kind: 'Pod', apiVersion: 'v1', namespace: pod.namespace, name: pod.name, uid: pod.uid },
            type: 'Warning',
            reason: 'VolumeRestoreFailed',
            message: `volume ${claimed.spec.volume}: pod volume restore ${claimed.metadata.name} failed: ${final.message}`,
          });
        }
      }
    } else if (r !== 'error') {
      log.warn('terminal status not written', { result: r, phase: final.phase });
    }
    ctx.observer.finished?.('pvr', {
      name: claimed.metadata.name!,
      namespace: claimed.metadata.namespace ?? '',
      owner: controllerOwner(claimed.metadata, 'Restore')?.name ?? '',
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

/** Sum of the sizes of regular files under a directory (Velero's restore progress measure). */
export async function directorySize(dir: string, signal?: AbortSignal): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    if (signal?.aborted) return;
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(d, n);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await walk(p);
      else if (st.isFile()) total += st.size;
    }
  };
  await walk(dir);
  return total;
}

/** Contract §7.3: replace `<volume>/.velero` by a directory holding the empty file `<restore uid>`. */
export async function writeRestoreMarker(volumeDir: string, restoreUid: string): Promise<string> {
  if (!/^[A-Za-z0-9-]+$/.test(restoreUid)) throw new CairnError('INVALID_ARGUMENT', `restore UID ${JSON.stringify(restoreUid)} is not a valid marker file name`);
  const dir = path.join(volumeDir, '.velero');
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755); // the umask must not make it unreadable for a non-root helper
  const marker = path.join(dir, restoreUid);
  await writeFile(marker, '', { mode: 0o644 });
  await chmod(marker, 0o644);
  return marker;
}

async function restoreVolume(ctx: AgentContext, pvr: PodVolumeRestore, item: RunningItem, writer: StatusWriter, log: Logger): Promise<PodVolumeStatus & { phase: Phase }> {
  const signal = item.controller.signal;
  const owner = controllerOwner(pvr.metadata, 'Restore');
  const inPlace = isInPlace(pvr);
  const restoreUid = owner?.uid ?? pvr.metadata.labels?.['velero.io/restore-uid'];
  if (!restoreUid && !inPlace) throw new CairnError('INVALID_ARGUMENT', 'the pod volume restore has no owning Restore (owner reference or velero.io/restore-uid label), so the restore marker cannot be named');
  const ownerProblem = await checkOwner(ctx, 'Restore', pvr.metadata);
  if (ownerProblem) {
    abortItem(item, { kind: 'owner', message: `${ownerProblem}; the pod volume restore was not started` });
    throw new CairnError('CANCELLED', ownerProblem);
  }
  const snapshotID = pvr.spec.snapshotID;
  if (!snapshotID || !/^[0-9a-f]{1,64}$/.test(snapshotID)) throw new CairnError('INVALID_ARGUMENT', `invalid snapshotID ${JSON.stringify(snapshotID ?? '')}`);
  const podRef = pvr.spec.pod ?? {};
  let pod: k8s.V1Pod | undefined;
  try {
    pod = await ctx.kube.getPod(podRef.namespace ?? '', podRef.name ?? '');
  } catch (e) {
    throw new CairnError('BACKEND', `error getting pod ${podRef.namespace}/${podRef.name}: ${apiErrorMessage(e)}`);
  }
  if (!pod) throw new CairnError('NOT_FOUND', `error getting pod ${podRef.namespace}/${podRef.name}: pod not found`);
  const wait = waitContainerRunning(pod);
  if (wait && wait.index > 0) log.warn('the restore helper is not the first init container; earlier init containers may have written to the volume', { container: wait.name });
  const vol = await resolveVolumeDir(pod, pvr.spec.volume ?? '', ctx.kube, ctx.cfg.hostPodsDir, hostPathAccess(ctx.cfg)).catch((e: unknown) => {
    throw new CairnError(isCairnError(e) ? e.code : 'IO', `unable to locate volume ${pvr.spec.volume} of pod ${podRef.namespace}/${podRef.name}: ${errorMessage(e)}`);
  });
  signal.throwIfAborted();
  const { repo, parsed } = await openItemRepository(ctx, pvr.spec, log, 'restore');
  item.cleanup.push(() => repo.backend.close());
  signal.throwIfAborted();
  const settings = pvr.spec.uploaderSettings ?? {};
  const sparse = settings.WriteSparseFiles === 'true';
  const parallel = Number(settings.ParallelFilesDownload);
  let total: number;
  try {
    total = (await snapshotSize(repo, snapshotID, signal)).totalSize;
  } catch (e) {
    if (item.cancel) throw e;
    throw new CairnError(isCairnError(e) ? e.code : 'IO', `error reading snapshot ${snapshotID} in ${parsed.display}: ${errorMessage(e)}`, { cause: e });
  }
  log.info('restoring volume', { path: vol.path, snapshot: snapshotID, totalBytes: total, sparse });
  // Velero's measure: the sizes of the files present under the target, sampled periodically.
  let sampling = false;
  const sampler = setInterval(() => {
    if (sampling) return;
    sampling = true;
    void directorySize(vol.path, signal)
      .then((done) => writer.progress({ totalBytes: total, bytesDone: Math.min(done, total) }))
      .finally(() => (sampling = false));
  }, Math.max(1000, Math.floor(ctx.cfg.progressIntervalMs / 2)));
  let firstItemError: string | undefined;
  try {
    const r = await restore(repo, {
      snapshot: snapshotID,
      target: vol.path,
      sparse,
      packConcurrency: Number.isInteger(parallel) && parallel > 0 ? parallel : undefined,
      signal,
      reporter: {
        itemError: (p, err) => {
          firstItemError ??= `${p}: ${err.message}`;
          log.warn('entry could not be restored', { file: p, error: err.message });
        },
      },
    });
    for (const w of r.warnings.slice(0, 10)) log.warn('restore warning', { warning: w });
    if (r.errors > 0) throw new CairnError('IO', `${r.errors} entries could not be restored (first: ${firstItemError ?? 'unknown'})`);
  } catch (e) {
    if (item.cancel) throw e;
    throw new CairnError(isCairnError(e) ? e.code : 'IO', `data path restore failed: ${errorMessage(e)}`, { cause: e });
  } finally {
    clearInterval(sampler);
  }
  signal.throwIfAborted();
  if (!inPlace) {
    try {
      await writeRestoreMarker(vol.path, restoreUid!);
    } catch (e) {
      throw new CairnError('IO', `error writing the restore marker in ${vol.path}: ${errorMessage(e)}`, { cause: e });
    }
  }
  return { phase: 'Completed', progress: { totalBytes: total, bytesDone: total } };
}
