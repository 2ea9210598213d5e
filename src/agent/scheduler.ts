/**
 * Decides which queued item runs next: FIFO by creation time, then by the order the agent saw
 * them (creation timestamps have whole seconds; the watch delivers creations in order), then
 * name, bounded by a global
 * limit and a per-repository limit. An item whose repository is full does not block items of
 * other repositories behind it. Items stay unclaimed (phase New) while they wait, as in Velero.
 */
export interface Job {
  /** Unique per object: "<kind>/<uid>". */
  key: string;
  createdMs: number;
  /** Tie-breaker for equal creation times (object name). */
  name: string;
  repoKey: string;
  run(): Promise<void>;
}

export class Scheduler {
  private readonly pending = new Map<string, Job>();
  /** When each pending job was queued (a counter), for items created within the same second. */
  private readonly arrival = new Map<string, number>();
  private arrivals = 0;
  private readonly running = new Map<string, Job>();
  private readonly perRepo = new Map<string, number>();
  private paused = true;
  private idleWaiters: Array<() => void> = [];

  constructor(
    public globalLimit: number,
    public perRepoLimit: number,
    private readonly onError: (job: Job, e: unknown) => void,
    private readonly onChange?: (running: number, queued: number) => void,
  ) {}

  /** Queues a job unless the same key is queued or running. Returns true when newly queued. */
  enqueue(job: Job): boolean {
    if (this.pending.has(job.key) || this.running.has(job.key)) return false;
    this.pending.set(job.key, job);
    this.arrival.set(job.key, this.arrivals++);
    this.pump();
    return true;
  }

  remove(key: string): void {
    this.arrival.delete(key);
    if (this.pending.delete(key)) this.changed();
  }

  isRunning(key: string): boolean {
    return this.running.has(key);
  }

  isQueued(key: string): boolean {
    return this.pending.has(key);
  }

  queuedWithPrefix(prefix: string): number {
    let n = 0;
    for (const k of this.pending.keys()) if (k.startsWith(prefix)) n++;
    return n;
  }

  get runningCount(): number {
    return this.running.size;
  }

  get queuedCount(): number {
    return this.pending.size;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  /** Resolves when nothing runs any more. */
  idle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private changed(): void {
    this.onChange?.(this.running.size, this.pending.size);
  }

  private pump(): void {
    if (this.paused) {
      this.changed();
      return;
    }
    const seen = (j: Job) => this.arrival.get(j.key) ?? 0;
    const order = [...this.pending.values()].sort((a, b) => a.createdMs - b.createdMs || seen(a) - seen(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const job of order) {
      if (this.running.size >= this.globalLimit) break;
      if ((this.perRepo.get(job.repoKey) ?? 0) >= this.perRepoLimit) continue;
      this.pending.delete(job.key);
      this.arrival.delete(job.key);
      this.running.set(job.key, job);
      this.perRepo.set(job.repoKey, (this.perRepo.get(job.repoKey) ?? 0) + 1);
      void this.execute(job);
    }
    this.changed();
  }

  private async execute(job: Job): Promise<void> {
    try {
      await job.run();
    } catch (e) {
      this.onError(job, e);
    } finally {
      this.running.delete(job.key);
      const n = (this.perRepo.get(job.repoKey) ?? 1) - 1;
      if (n > 0) this.perRepo.set(job.repoKey, n);
      else this.perRepo.delete(job.repoKey);
      if (this.running.size === 0) for (const w of this.idleWaiters.splice(0)) w();
      this.pump();
    }
  }
}
