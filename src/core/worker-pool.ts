import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * A fixed pool of worker threads running one script. Tasks are plain messages answered by
 * `{id, ok, result | error}`; the pool spreads them over workers by queue length. Work waits on a
 * bounded number of in-flight tasks per worker so callers feel back-pressure instead of queueing
 * unbounded data in messages.
 */
export class WorkerPool<Req, Res> {
  private readonly workers: Worker[] = [];
  private readonly inflight: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: Array<() => void> = [];
  private nextId = 1;
  private closed = false;
  private fatal: unknown;

  constructor(
    script: URL,
    workerData: unknown,
    readonly size = Math.max(1, availableParallelism()),
    private readonly perWorker = 2,
  ) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(script, { workerData });
      w.unref();
      w.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: { message: string; code?: string } }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        this.inflight[i]!--;
        this.waiters.shift()?.();
        if (m.ok) p.resolve(m.result);
        else p.reject(Object.assign(new Error(m.error?.message ?? 'worker task failed'), { code: m.error?.code }));
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`worker exited with code ${code}`));
      });
      this.workers.push(w);
      this.inflight.push(0);
    }
  }

  private fail(e: unknown): void {
    this.fatal ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    for (const w of this.waiters.splice(0)) w();
  }

  async run(req: Req, transfer: ArrayBuffer[] = []): Promise<Res> {
    for (;;) {
      if (this.fatal) throw this.fatal;
      let best = -1;
      for (let i = 0; i < this.workers.length; i++) {
        if (this.inflight[i]! < this.perWorker && (best < 0 || this.inflight[i]! < this.inflight[best]!)) best = i;
      }
      if (best >= 0) {
        const id = this.nextId++;
        this.inflight[best]!++;
        return new Promise<Res>((resolve, reject) => {
          this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
          this.workers[best]!.postMessage({ id, req }, transfer);
        });
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
