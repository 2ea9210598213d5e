/** A counting semaphore: bounds how much work is in flight (memory stays bounded by configuration). */
export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly capacity: number) {
    if (capacity < 1) throw new Error('semaphore capacity must be >= 1');
    this.available = capacity;
  }

  async acquire(): Promise<void> {
    if (this.available > 0) {
      this.available--;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.available++;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  get inUse(): number {
    return this.capacity - this.available;
  }
}

/**
 * A budget of units (bytes) shared by jobs of different sizes, granted in FIFO order: acquire(n)
 * waits until n more fit — or until nothing else holds any, so one job larger than the whole
 * budget still runs (alone).
 */
export class ByteBudget {
  private used = 0;
  private readonly waiters: Array<{ n: number; go: () => void }> = [];

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new Error('budget capacity must be >= 1');
  }

  async acquire(n: number): Promise<void> {
    if (this.waiters.length === 0 && this.fits(n)) {
      this.used += n;
      return;
    }
    await new Promise<void>((go) => this.waiters.push({ n, go }));
  }

  release(n: number): void {
    this.used -= n;
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.n)) {
      const w = this.waiters.shift()!;
      this.used += w.n;
      w.go();
    }
  }

  private fits(n: number): boolean {
    return this.used === 0 || this.used + n <= this.capacity;
  }

  get inUse(): number {
    return this.used;
  }
}

/** Runs fn over items with at most `limit` in flight; rejects with the first error (after all started work settles). */
export async function mapLimit<T, R>(items: Iterable<T>, limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  const it = items[Symbol.iterator]();
  let index = 0;
  let failed: unknown;
  let hasFailed = false;
  const runners: Promise<void>[] = [];
  for (let w = 0; w < Math.max(1, limit); w++) {
    runners.push(
      (async () => {
        for (;;) {
          if (hasFailed) return;
          const next = it.next();
          if (next.done) return;
          const i = index++;
          try {
            results[i] = await fn(next.value, i);
          } catch (e) {
            if (!hasFailed) {
              hasFailed = true;
              failed = e;
            }
            return;
          }
        }
      })(),
    );
  }
  await Promise.all(runners);
  if (hasFailed) throw failed;
  return results;
}
