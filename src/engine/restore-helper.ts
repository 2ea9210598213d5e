/**
 * The restore helper: the init container Velero injects into every restored pod that has pod
 * volume data to wait for (contract §7). Each volume to be restored is mounted at
 * `<restoresDir>/<volume>`; the node agent writes `<volume>/.velero/<restore UID>` once it has
 * restored that volume. The helper polls until every sub-directory carries the marker, then removes
 * each `<volume>/.velero` (failures are reported and ignored: a non-root helper may not be allowed to
 * write the volume root) and returns, which lets kubelet start the application containers.
 *
 * Like Velero's helper there is no timeout: a missing marker keeps the pod in Init until someone
 * intervenes. The wait ends early only through the AbortSignal (SIGTERM when the pod is deleted).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { systemClock, type Clock } from '../core/clock.js';
import { CairnError, errnoCode, errorMessage } from '../core/errors.js';

/** The directory Velero mounts the volumes under, and the marker directory name inside each. */
export const DEFAULT_RESTORES_DIR = '/restores';
export const MARKER_DIR = '.velero';
/** Velero's helper polls once a second. */
export const DEFAULT_INTERVAL_MS = 1000;
/** While nothing changes, repeat the "waiting for" report this often so a stuck pod's log says why. */
export const DEFAULT_REMINDER_MS = 60_000;

export interface RestoreScan {
  /** Sub-directories of the restores directory (the volumes), sorted. */
  volumes: string[];
  /** Volumes whose marker does not exist (yet), sorted. */
  pending: string[];
  /** Entries that are not directories; skipped like Velero does. */
  skipped: string[];
  /** Per-volume problems other than "marker missing" (e.g. permission denied), by volume. */
  volumeErrors: Record<string, string>;
  /** Set when the restores directory itself cannot be listed; nothing is done then. */
  error?: string;
  /** True when every volume has its marker (and the directory could be listed). */
  done: boolean;
}

/** A restore UID names a file: one non-empty path component. */
export function validateRestoreUid(uid: string): void {
  if (!uid || uid === '.' || uid === '..' || uid.includes('/') || uid.includes('\0')) {
    throw new CairnError('INVALID_ARGUMENT', `invalid restore UID ${JSON.stringify(uid)}: expected the UID of the Velero Restore`);
  }
}

/** One look at the restores directory: which volumes exist and which still lack their marker. */
export async function scanRestoreMarkers(restoresDir: string, restoreUid: string): Promise<RestoreScan> {
  const scan: RestoreScan = { volumes: [], pending: [], skipped: [], volumeErrors: {}, done: false };
  let entries;
  try {
    entries = await fsp.readdir(restoresDir, { withFileTypes: true });
  } catch (e) {
    scan.error = describeFsError(e, restoresDir);
    return scan;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    // Volumes are mount points, i.e. real directories; Velero skips anything else (incl. symlinks).
    if (!entry.isDirectory()) {
      scan.skipped.push(entry.name);
      continue;
    }
    scan.volumes.push(entry.name);
    const marker = path.join(restoresDir, entry.name, MARKER_DIR, restoreUid);
    try {
      await fsp.stat(marker);
    } catch (e) {
      scan.pending.push(entry.name);
      if (errnoCode(e) !== 'ENOENT' && errnoCode(e) !== 'ENOTDIR') scan.volumeErrors[entry.name] = describeFsError(e, marker);
    }
  }
  scan.done = scan.pending.length === 0;
  return scan;
}

export type RestoreHelperEvent =
  /** Emitted when the set of pending volumes (or an error) changes, and every reminder interval. */
  | { type: 'waiting'; scan: RestoreScan }
  | { type: 'done'; volumes: string[] }
  | { type: 'removed'; volume: string; path: string }
  | { type: 'remove-failed'; volume: string; path: string; error: string };

export interface RestoreHelperOptions {
  restoreUid: string;
  restoresDir?: string;
  intervalMs?: number;
  reminderMs?: number;
  signal?: AbortSignal;
  clock?: Clock;
  report?: (event: RestoreHelperEvent) => void;
  /** Removes one marker directory recursively (default: fs.rm); a seam for tests. */
  removeDir?: (dir: string) => Promise<void>;
}

export interface RestoreHelperResult {
  volumes: string[];
  /** Volumes whose marker directory could not be removed (reported, not fatal). */
  removeFailures: string[];
}

/**
 * Waits until every volume under the restores directory has the marker of this restore, then
 * removes the marker directories. Rejects only with a CANCELLED error when the signal fires;
 * the markers are left in place then.
 */
export async function runRestoreHelper(o: RestoreHelperOptions): Promise<RestoreHelperResult> {
  validateRestoreUid(o.restoreUid);
  const dir = o.restoresDir ?? DEFAULT_RESTORES_DIR;
  const intervalMs = o.intervalMs ?? DEFAULT_INTERVAL_MS;
  const reminderMs = o.reminderMs ?? DEFAULT_REMINDER_MS;
  const clock = o.clock ?? systemClock;
  const report = o.report ?? (() => {});
  const removeDir = o.removeDir ?? ((p: string) => fsp.rm(p, { recursive: true, force: true }));
  if (!(intervalMs > 0)) throw new CairnError('INVALID_ARGUMENT', `poll interval must be positive, got ${intervalMs} ms`);

  let lastKey: string | undefined;
  let lastReportAt = 0;
  let scan: RestoreScan;
  for (;;) {
    throwIfCancelled(o.signal);
    scan = await scanRestoreMarkers(dir, o.restoreUid);
    if (scan.done) break;
    const key = JSON.stringify([scan.pending, scan.volumeErrors, scan.error ?? '']);
    const now = clock.now();
    if (key !== lastKey || now - lastReportAt >= reminderMs) {
      report({ type: 'waiting', scan });
      lastKey = key;
      lastReportAt = now;
    }
    try {
      await clock.sleep(intervalMs, o.signal);
    } catch {
      throwIfCancelled(o.signal);
    }
  }

  report({ type: 'done', volumes: scan.volumes });
  const removeFailures: string[] = [];
  for (const volume of scan.volumes) {
    const markerDir = path.join(dir, volume, MARKER_DIR);
    try {
      await removeDir(markerDir);
      report({ type: 'removed', volume, path: markerDir });
    } catch (e) {
      removeFailures.push(volume);
      report({ type: 'remove-failed', volume, path: markerDir, error: describeFsError(e, markerDir) });
    }
  }
  return { volumes: scan.volumes, removeFailures };
}

function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const why = signal.reason instanceof Error ? signal.reason.message : signal.reason !== undefined ? String(signal.reason) : 'aborted';
    throw new CairnError('CANCELLED', `restore helper cancelled: ${why}`);
  }
}

function describeFsError(e: unknown, p: string): string {
  switch (errnoCode(e)) {
    case 'ENOENT':
      return `${p}: no such file or directory`;
    case 'EACCES':
    case 'EPERM':
      return `${p}: permission denied`;
    case 'ENOTDIR':
      return `${p}: not a directory`;
    default:
      return `${p}: ${errorMessage(e)}`;
  }
}
