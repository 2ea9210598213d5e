/**
 * In-memory storage with etcd's versioning model: one global revision (the resourceVersion of every
 * write, across all kinds), per-storage tables of objects, and a history of changes kept until it is
 * compacted. Watches are fed from the history; lists at an older revision are rebuilt from it.
 */
import { clone, type KObj } from './util.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface HistoryEvent {
  rv: number;
  storage: string;
  key: string;
  type: EventType;
  /** The object after the change; for DELETED, the last state with the deletion's resourceVersion. */
  obj: KObj;
  /** The object before the change (MODIFIED, DELETED). */
  prev?: KObj;
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

export class Store {
  private rv: number;
  private compacted = 0;
  private readonly tables = new Map<string, Map<string, KObj>>();
  private history: HistoryEvent[] = [];
  private readonly listeners = new Set<(e: HistoryEvent) => void>();
  private waiters: Array<{ rv: number; resolve: (ok: boolean) => void }> = [];

  constructor(
    initialRv = 1,
    /** Keep at most this many history events; older ones are compacted away automatically. */
    private readonly maxHistory = 100_000,
  ) {
    this.rv = initialRv;
    this.compacted = initialRv;
  }

  get currentRv(): number {
    return this.rv;
  }

  /** History at or below this revision is gone; watches and consistent lists from older revisions get 410. */
  get compactedRv(): number {
    return this.compacted;
  }

  table(storage: string): Map<string, KObj> {
    let t = this.tables.get(storage);
    if (!t) {
      t = new Map();
      this.tables.set(storage, t);
    }
    return t;
  }

  storages(): string[] {
    return [...this.tables.keys()];
  }

  /** The stored object (shared; callers must not mutate it). */
  get(storage: string, namespace: string | undefined, name: string): KObj | undefined {
    return this.tables.get(storage)?.get(objectKey(namespace, name));
  }

  /** Current objects of a storage, sorted by key (namespace, then name), as etcd returns them. */
  list(storage: string): Array<[string, KObj]> {
    return [...(this.tables.get(storage) ?? new Map<string, KObj>()).entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Writes (or deletes) one object at a new revision and notifies watchers. */
  commit(storage: string, type: EventType, obj: KObj, prev?: KObj): HistoryEvent {
    const rv = ++this.rv;
    const stored = clone(obj);
    stored.metadata.resourceVersion = String(rv);
    const key = objectKey(stored.metadata.namespace, stored.metadata.name);
    const t = this.table(storage);
    if (type === 'DELETED') t.delete(key);
    else t.set(key, stored);
    const ev: HistoryEvent = { rv, storage, key, type, obj: stored, prev: prev ? clone(prev) : undefined };
    this.history.push(ev);
    if (this.history.length > this.maxHistory) this.compact(this.history[this.history.length - this.maxHistory - 1].rv);
    for (const l of [...this.listeners]) l(ev);
    const ready = this.waiters.filter((w) => w.rv <= rv);
    this.waiters = this.waiters.filter((w) => w.rv > rv);
    for (const w of ready) w.resolve(true);
    return ev;
  }

  subscribe(fn: (e: HistoryEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Events of one storage after `rv` (which must not be older than the compaction point). */
  eventsSince(storage: string, rv: number): HistoryEvent[] {
    return this.history.filter((e) => e.rv > rv && e.storage === storage);
  }

  /** The objects of a storage as they were at revision `rv`, rebuilt by undoing later events. */
  stateAt(storage: string, rv: number): Array<[string, KObj]> {
    const state = new Map(this.tables.get(storage) ?? []);
    for (let i = this.history.length - 1; i >= 0; i--) {
      const e = this.history[i];
      if (e.rv <= rv) break;
      if (e.storage !== storage) continue;
      if (e.type === 'ADDED') state.delete(e.key);
      else if (e.prev) state.set(e.key, e.prev);
    }
    return [...state.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Drops history up to and including `rv` (default: everything so far). */
  compact(rv = this.rv): void {
    if (rv <= this.compacted) return;
    this.compacted = Math.min(rv, this.rv);
    this.history = this.history.filter((e) => e.rv > this.compacted);
  }

  /** Resolves true once the revision reaches `rv`, false after `timeoutMs`. */
  waitForRv(rv: number, timeoutMs: number): Promise<boolean> {
    if (rv <= this.rv) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = { rv, resolve };
      this.waiters.push(w);
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(false);
      }, timeoutMs);
      timer.unref();
    });
  }
}
