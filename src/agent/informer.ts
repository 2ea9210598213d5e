/**
 * A list/watch cache that keeps running. client-node 1.4's ListWatch relists by itself on 410 Gone
 * and re-watches when a stream ends, but stops for good on any other watch or list failure; this
 * wrapper restarts it with exponential backoff (1 s → 30 s) and reports whether it is in sync.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../core/logger.js';
import type { Clock } from '../core/clock.js';
import { apiErrorMessage } from './kube.js';

export interface Handlers<T> {
  add?(obj: T): void;
  update?(obj: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions {
  /** Name for logs ("podvolumebackups"). */
  name: string;
  labelSelector?: string;
  fieldSelector?: string;
  logger: Logger;
  clock: Clock;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyObject = any;

export class Informer<T extends object> {
  private readonly lw: k8s.ListWatch<AnyObject>;
  private stopped = false;
  private backoff: number;
  private errorsSinceStart = 0;
  private restartTimer?: { cancel(): void };
  /** True once a list succeeded (the cache reflects the server). */
  synced = false;
  lastError?: string;

  constructor(
    kc: k8s.KubeConfig,
    path: string,
    listFn: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>,
    private readonly opts: InformerOptions,
  ) {
    this.backoff = opts.minBackoffMs ?? 1000;
    // makeInformer cannot pass a field selector; it builds exactly this ListWatch otherwise.
    this.lw = new k8s.ListWatch<AnyObject>(path, new k8s.Watch(kc), listFn as () => Promise<k8s.KubernetesListObject<AnyObject>>, false, opts.labelSelector, opts.fieldSelector);
    this.lw.on('error', (err: unknown) => this.onError(err));
  }

  on(h: Handlers<T>): void {
    if (h.add) this.lw.on('add', h.add);
    if (h.update) this.lw.on('update', h.update);
    if (h.delete) this.lw.on('delete', h.delete);
  }

  /** Starts list+watch; resolves once the first attempt has listed (or failed: it then retries in the background). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.attempt();
  }

  private async attempt(): Promise<void> {
    const before = this.errorsSinceStart;
    await this.lw.start();
    if (this.errorsSinceStart === before && !this.stopped) {
      this.synced = true;
      this.lastError = undefined;
      this.backoff = this.opts.minBackoffMs ?? 1000;
    }
  }

  private onError(err: unknown): void {
    this.errorsSinceStart++;
    if (this.stopped) return;
    this.lastError = apiErrorMessage(err);
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 30_000);
    this.opts.logger.warn('watch failed, restarting', { informer: this.opts.name, error: this.lastError, retryInMs: delay });
    this.restartTimer?.cancel();
    this.restartTimer = this.opts.clock.setTimeout(() => {
      if (!this.stopped) void this.attempt().catch((e) => this.onError(e));
    }, delay);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.restartTimer?.cancel();
    await this.lw.stop();
  }

  list(): readonly T[] {
    return this.lw.list() as T[];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace) as T | undefined;
  }
}
