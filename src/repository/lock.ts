import { hostname } from 'node:os';
import { CairnError, errorMessage, isCairnError } from '../core/errors.js';
import { shortId, type Id } from '../core/ids.js';
import { decodeLock, encodeLock, type Lock as LockFile } from '../format/lock.js';
import { formatTime, localOffsetMinutes, parseTime } from '../format/time.js';
import { safeUserName, type Repository } from './repository.js';

/** restic refreshes its lock files every 5 minutes; a lock older than 30 minutes is stale. */
export const LOCK_REFRESH_MS = 5 * 60 * 1000;
export const LOCK_STALE_MS = 30 * 60 * 1000;
/**
 * restic waits this long after writing its lock before re-checking for conflicts, so that a lock
 * another process wrote at about the same time has become visible in the listing.
 *
 * cairn waits only for exclusive locks. Each side writes its lock before its re-check, so of two
 * processes racing, the one that writes second sees the other's lock in its re-check — or, if its
 * listing lags, the first one sees the second's in its own re-check after the wait. What must never
 * happen is an exclusive lock holder missing a non-exclusive one: the exclusive side waiting covers
 * that in both orders (its re-check comes 200 ms after its write: a shared lock written before then
 * is seen; one written after it sees in its own re-check the exclusive lock, which by then is at
 * least 200 ms old — the same visibility assumption restic makes). Two shared locks never
 * conflict. So a backup or restore does not pay the 200 ms.
 */
const LOCK_RECHECK_MS = 200;

export interface LockInfo {
  id: Id;
  lock: LockFile;
}

export function lockTimeMs(l: LockFile): number {
  return Number(parseTime(l.time).ns / 1_000_000n);
}

/** restic's staleness: older than 30 minutes, or from this host with a process that no longer exists. */
export function isStale(l: LockFile, nowMs: number, localHost = hostname()): boolean {
  if (nowMs - lockTimeMs(l) > LOCK_STALE_MS) return true;
  if (l.hostname !== localHost) return false;
  try {
    process.kill(l.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export function describeLock(info: LockInfo, nowMs: number): string {
  const l = info.lock;
  const ageS = Math.max(0, Math.round((nowMs - lockTimeMs(l)) / 1000));
  return `${l.exclusive ? 'exclusive' : 'non-exclusive'} lock ${shortId(info.id)} held by ${l.username || '?'}@${l.hostname} (pid ${l.pid}), created ${l.time} (${ageS}s ago)${isStale(l, nowMs) ? ', stale' : ''}`;
}

/** Loads all lock files; unreadable ones are skipped, as restic does. */
export async function listLocks(repo: Repository): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for (const id of await repo.listIds('lock')) {
    try {
      out.push({ id, lock: decodeLock(await repo.loadUnpacked('lock', id)) });
    } catch (e) {
      if (!isCairnError(e, 'NOT_FOUND')) repo.logger.debug('ignoring unreadable lock', { lock: id, error: errorMessage(e) });
    }
  }
  return out;
}

export interface LockOptions {
  exclusive: boolean;
  /** Keep retrying for up to this long when the repository is locked (restic's --retry-lock). */
  retryLockMs?: number;
  signal?: AbortSignal;
  /**
   * Reads to do while a new exclusive lock waits for its re-check (restic's 200 ms), instead of
   * after it: loading the index and snapshots, for example. They start once no conflicting lock
   * was seen; acquire() resolves after both the lock and the reads are done. If the re-check finds
   * a conflict, the attempt fails like any other (and is retried within retryLockMs), so the
   * reads may run again: they must replace, not add to, what an earlier attempt read. Shared
   * locks do not wait; for them the reads run after the re-check. If the reads fail, the lock is
   * removed and their error thrown.
   */
  whileConfirming?: () => Promise<void>;
}

/**
 * A restic-compatible repository lock: a lock file refreshed every 5 minutes (new file, then the
 * old one deleted, as restic does) and removed on release.
 */
export class RepoLock {
  private timer: { cancel(): void } | undefined;
  private released = false;
  private refreshing: Promise<void> = Promise.resolve();

  private constructor(private readonly repo: Repository, private lockId: Id, readonly exclusive: boolean, private readonly template: LockFile) {}

  get id(): Id {
    return this.lockId;
  }

  static async acquire(repo: Repository, opts: LockOptions): Promise<RepoLock> {
    const deadline = repo.clock.now() + (opts.retryLockMs ?? 0);
    let delay = 1000;
    for (;;) {
      try {
        return await RepoLock.tryAcquire(repo, opts.exclusive, opts.whileConfirming);
      } catch (e) {
        if (!isCairnError(e, 'REPO_LOCKED') || repo.clock.now() + delay > deadline) throw e;
        await repo.clock.sleep(delay, opts.signal);
        delay = Math.min(delay * 2, 60_000);
      }
    }
  }

  private static conflict(repo: Repository, others: LockInfo[], exclusive: boolean, ownId?: Id): void {
    const now = repo.clock.now();
    for (const o of others) {
      if (o.id === ownId) continue;
      if (exclusive || o.lock.exclusive) {
        throw new CairnError(
          'REPO_LOCKED',
          `repository is already locked: ${describeLock(o, now)}${isStale(o.lock, now) ? ' — remove stale locks with "cairn unlock"' : ''}`,
          { object: `lock ${o.id}`, retryable: true },
        );
      }
    }
  }

  private static async tryAcquire(repo: Repository, exclusive: boolean, whileConfirming?: () => Promise<void>): Promise<RepoLock> {
    RepoLock.conflict(repo, await listLocks(repo), exclusive);
    const ns = repo.clock.nowNs();
    const template: LockFile = {
      time: formatTime(ns, localOffsetMinutes(ns)),
      exclusive,
      hostname: hostname(),
      username: safeUserName(),
      pid: process.pid,
    };
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    if (uid) template.uid = uid;
    if (gid) template.gid = gid;
    const id = await repo.saveUnpacked('lock', encodeLock(template));
    // during an exclusive lock's wait the reads run beside it; their outcome is collected, never left unhandled
    const collect = (): Promise<{ error: unknown } | undefined> | undefined =>
      whileConfirming?.().then(
        () => undefined,
        (e: unknown) => ({ error: e }),
      );
    const overlapped = exclusive ? collect() : undefined;
    try {
      if (exclusive) await repo.clock.sleep(LOCK_RECHECK_MS);
      RepoLock.conflict(repo, await listLocks(repo), exclusive, id);
      const failed = exclusive ? await overlapped : await collect();
      if (failed) throw failed.error;
    } catch (e) {
      await overlapped;
      await repo.removeFile('lock', id).catch(() => undefined);
      throw e;
    }
    const lock = new RepoLock(repo, id, exclusive, template);
    lock.schedule();
    return lock;
  }

  private schedule(): void {
    this.timer = this.repo.clock.setTimeout(() => {
      this.refreshing = this.refresh().catch((e) => this.repo.logger.warn('lock refresh failed', { error: errorMessage(e) }));
    }, LOCK_REFRESH_MS);
  }

  /** Writes a new lock file with the current time and removes the previous one. */
  async refresh(): Promise<void> {
    if (this.released) return;
    const ns = this.repo.clock.nowNs();
    const next = { ...this.template, time: formatTime(ns, localOffsetMinutes(ns)) };
    const newId = await this.repo.saveUnpacked('lock', encodeLock(next));
    const old = this.lockId;
    this.lockId = newId;
    await this.repo.removeFile('lock', old).catch(() => undefined);
    if (!this.released) this.schedule();
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.timer?.cancel();
    await this.refreshing;
    await this.repo.removeFile('lock', this.lockId).catch((e) => {
      if (!isCairnError(e, 'NOT_FOUND')) throw e;
    });
  }
}

/** Removes stale locks (or all with removeAll); returns the removed IDs. */
export async function unlock(repo: Repository, removeAll: boolean): Promise<Id[]> {
  const now = repo.clock.now();
  const removed: Id[] = [];
  if (removeAll) {
    // every lock file, including ones that cannot be read (restic unlock --remove-all)
    for (const id of await repo.listIds('lock')) {
      await repo.removeFile('lock', id).catch(() => undefined);
      removed.push(id);
    }
    return removed;
  }
  for (const l of await listLocks(repo)) {
    if (removeAll || isStale(l.lock, now)) {
      await repo.removeFile('lock', l.id).catch(() => undefined);
      removed.push(l.id);
    }
  }
  return removed;
}
