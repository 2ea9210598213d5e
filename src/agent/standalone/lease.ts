/**
 * A coordination.k8s.io/v1 Lease per repository, so that exactly one process in the cluster runs
 * exclusive work (forget, prune, check) on a repository at a time. Semantics follow client-go's
 * leader election:
 *
 * - a free lease (missing, or `holderIdentity` empty) is taken with a create or an update carrying
 *   the observed resourceVersion, so of two candidates only one write succeeds (409 for the other);
 * - a lease held by someone else is taken over only after this candidate has seen the same holder
 *   record (holder, renewTime, duration) unchanged for a whole lease duration on its own clock, so
 *   clock skew between nodes cannot make two holders;
 * - the holder renews every third of the duration and gives up (aborting its work through the
 *   lease's AbortSignal) when a renewal finds another holder or no renewal succeeded for two
 *   thirds of the duration, i.e. before anyone else may take over;
 * - release writes an empty holder so the next candidate need not wait.
 *
 * The lease's annotations also carry the repository's maintenance record (last prune/check, the
 * retention policies of cairn's backup series); writes to them ride on the guarded updates.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import type { Clock } from '../../core/clock.js';
import { CairnError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { apiErrorMessage } from '../kube.js';
import type { LeaseObject, StandaloneKube } from './kube.js';

export type LeaseStore = Pick<StandaloneKube, 'getLease' | 'createLease' | 'replaceLease'>;

export interface LeaseOptions {
  namespace: string;
  name: string;
  /** Unique per process (see leaseIdentity). */
  identity: string;
  durationMs: number;
  clock: Clock;
  log: Logger;
  /** Labels and annotations of a lease this candidate creates. */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** `<component>@<host>-<random>`: unique per process, readable in `kubectl get lease`. */
export function leaseIdentity(component: string, host = process.env.NODE_NAME || hostname()): string {
  return `${component}@${host}-${randomBytes(3).toString('hex')}`;
}

/** metav1.MicroTime as the API server parses it: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): k8s.V1MicroTime {
  return new k8s.V1MicroTime(ms);
}

export function leaseTimeMs(t: unknown): number | undefined {
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'string') {
    const v = Date.parse(t);
    return Number.isFinite(v) ? v : undefined;
  }
  return undefined;
}

/** What identifies one holder record: a renewal or a new holder changes it, annotation edits do not. */
function recordKey(l: LeaseObject): string {
  const s = l.spec ?? {};
  return JSON.stringify([s.holderIdentity ?? '', leaseTimeMs(s.renewTime) ?? null, s.leaseDurationSeconds ?? null]);
}

export function holderOf(l: LeaseObject | undefined): string {
  return l?.spec?.holderIdentity ?? '';
}

export class RepositoryLease {
  private observed?: { key: string; atMs: number };

  constructor(private readonly kube: LeaseStore, readonly opts: LeaseOptions) {}

  get identity(): string {
    return this.opts.identity;
  }

  private observe(l: LeaseObject, nowMs: number): void {
    const key = recordKey(l);
    if (this.observed?.key !== key) this.observed = { key, atMs: nowMs };
  }

  /** Whether the lease is held by another candidate now (from this candidate's observations). */
  heldByOther(l: LeaseObject | undefined, nowMs: number): boolean {
    if (!l) return false;
    const holder = holderOf(l);
    if (!holder || holder === this.opts.identity) return false;
    this.observe(l, nowMs);
    const durMs = (l.spec?.leaseDurationSeconds ?? Math.ceil(this.opts.durationMs / 1000)) * 1000;
    return this.observed!.atMs + durMs > nowMs;
  }

  /** Reads the lease (for callers that decide from its annotations before competing). */
  async read(): Promise<LeaseObject | undefined> {
    const l = await this.kube.getLease(this.opts.namespace, this.opts.name);
    if (l) this.observe(l, this.opts.clock.now());
    return l;
  }

  /** One attempt; undefined when another candidate holds the lease or won the race. */
  async tryAcquire(): Promise<HeldLease | undefined> {
    const { namespace, name, identity, clock } = this.opts;
    const now = clock.now();
    const seconds = Math.max(1, Math.ceil(this.opts.durationMs / 1000));
    const current = await this.kube.getLease(namespace, name);
    if (!current) {
      const created = await this.kube.createLease(namespace, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace, labels: this.opts.labels, annotations: this.opts.annotations },
        spec: { holderIdentity: identity, leaseDurationSeconds: seconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
      });
      if (!created) return undefined;
      this.observe(created, now);
      return new HeldLease(this.kube, this.opts, created);
    }
    if (this.heldByOther(current, now)) return undefined;
    const previous = holderOf(current);
    const mine = previous === identity;
    const body: LeaseObject = {
      ...current,
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...current.metadata, annotations: { ...(this.opts.annotations ?? {}), ...(current.metadata?.annotations ?? {}) }, labels: { ...(this.opts.labels ?? {}), ...(current.metadata?.labels ?? {}) } },
      spec: {
        ...current.spec,
        holderIdentity: identity,
        leaseDurationSeconds: seconds,
        acquireTime: mine && current.spec?.acquireTime ? current.spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (current.spec?.leaseTransitions ?? 0) + (mine || !previous ? 0 : 1),
      },
    };
    const updated = await this.kube.replaceLease(namespace, body);
    if (!updated) return undefined;
    this.observe(updated, now);
    if (previous && !mine) this.opts.log.info('took over an expired lease', { lease: name, previousHolder: previous });
    return new HeldLease(this.kube, this.opts, updated);
  }

  /** Tries until it holds the lease, the timeout passes (undefined) or the signal aborts. */
  async acquire(timeoutMs: number, signal?: AbortSignal, pollMs = Math.min(2000, Math.max(200, Math.floor(this.opts.durationMs / 5)))): Promise<HeldLease | undefined> {
    const deadline = this.opts.clock.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      const held = await this.tryAcquire();
      if (held) return held;
      if (this.opts.clock.now() + pollMs > deadline) return undefined;
      await this.opts.clock.sleep(pollMs, signal);
    }
  }
}

export class HeldLease {
  private readonly controller = new AbortController();
  private timer?: { cancel(): void };
  private chain: Promise<unknown> = Promise.resolve();
  private lastRenewMs: number;
  private released = false;
  private current: LeaseObject;

  constructor(private readonly kube: LeaseStore, private readonly opts: LeaseOptions, lease: LeaseObject) {
    this.current = lease;
    this.lastRenewMs = opts.clock.now();
    this.schedule(this.renewIntervalMs);
  }

  /** Aborted when the lease is lost (another holder, or renewals failed for too long). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get lost(): boolean {
    return this.controller.signal.aborted;
  }

  get annotations(): Record<string, string> {
    return { ...(this.current.metadata?.annotations ?? {}) };
  }

  get lease(): LeaseObject {
    return this.current;
  }

  private get renewIntervalMs(): number {
    return Math.max(200, Math.floor(this.opts.durationMs / 3));
  }

  private get renewDeadlineMs(): number {
    return Math.floor((this.opts.durationMs * 2) / 3);
  }

  private schedule(ms: number): void {
    if (this.released || this.lost) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.chain = this.chain.then(() => this.renewOnce());
    }, ms);
  }

  private lose(why: string): void {
    if (this.lost) return;
    this.opts.log.warn('lost the lease', { lease: this.opts.name, reason: why });
    this.controller.abort(new CairnError('CANCELLED', `lost the lease ${this.opts.name}: ${why}`));
    this.timer?.cancel();
  }

  /**
   * One guarded write of the lease with this holder: renewTime now, annotation changes merged
   * (undefined values remove keys). A 409 re-reads: still ours → retry on the new version.
   */
  private async write(holder: string, annotations: Record<string, string | undefined> = {}): Promise<'ok' | 'lost'> {
    const { namespace, identity, clock } = this.opts;
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = clock.now();
      const ann = { ...(this.current.metadata?.annotations ?? {}) };
      for (const [k, v] of Object.entries(annotations)) {
        if (v === undefined) delete ann[k];
        else ann[k] = v;
      }
      const body: LeaseObject = {
        ...this.current,
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { ...this.current.metadata, annotations: ann },
        spec: { ...this.current.spec, holderIdentity: holder, renewTime: microTime(now) },
      };
      const r = await this.kube.replaceLease(namespace, body);
      if (r) {
        this.current = r;
        this.lastRenewMs = now;
        return 'ok';
      }
      const fresh = await this.kube.getLease(namespace, this.opts.name);
      if (!fresh) return 'lost';
      if (holderOf(fresh) !== identity) return 'lost';
      this.current = fresh; // someone edited annotations only: still ours
    }
    throw new CairnError('BACKEND', 'the lease kept changing under concurrent writes', { retryable: true });
  }

  private async renewOnce(): Promise<void> {
    if (this.released || this.lost) return;
    try {
      const r = await this.write(this.opts.identity);
      if (r === 'lost') return this.lose(`another holder: ${holderOf(await this.kube.getLease(this.opts.namespace, this.opts.name).catch(() => undefined)) || '(none)'}`);
      this.schedule(this.renewIntervalMs);
    } catch (e) {
      const since = this.opts.clock.now() - this.lastRenewMs;
      if (since >= this.renewDeadlineMs) return this.lose(`no renewal for ${Math.round(since / 1000)}s (${apiErrorMessage(e)})`);
      this.opts.log.warn('lease renewal failed, retrying', { lease: this.opts.name, error: apiErrorMessage(e) });
      this.schedule(Math.min(2000, Math.max(100, Math.floor(this.opts.durationMs / 10))));
    }
  }

  /** Writes annotation changes now (renewing at the same time). Throws when the lease was lost. */
  async annotate(changes: Record<string, string | undefined>): Promise<void> {
    const p = this.chain.then(async () => {
      if (this.lost) throw this.signal.reason;
      const r = await this.write(this.opts.identity, changes);
      if (r === 'lost') {
        this.lose('another holder took it');
        throw this.signal.reason;
      }
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Gives the lease up (empty holder), writing final annotation changes with it. */
  async release(changes: Record<string, string | undefined> = {}): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.timer?.cancel();
    await this.chain.catch(() => undefined);
    if (this.lost) return;
    try {
      await this.write('', changes);
    } catch (e) {
      this.opts.log.warn('could not release the lease (it expires by itself)', { lease: this.opts.name, error: errorMessage(e) });
    }
  }
}
