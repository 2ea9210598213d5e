/**
 * Coalescing of many small asynchronous requests into a few batch calls.
 *
 * Why: each job handed to libuv's thread pool costs the JavaScript thread a wake-up of a pool
 * thread (a futex, and on a virtual machine an inter-processor interrupt) — tens of microseconds,
 * more than an lstat or the read of a small file itself. Requests made during one turn of the
 * event loop are collected and sent together at the end of that turn (setImmediate), split into
 * at most `lanes` batches so that the pool's threads still share the work.
 */
export interface CoalescerOptions {
  /** Most requests in one batch call. */
  maxBatch: number;
  /** Batches a flush is split into at most (pool threads that should share the work). */
  lanes: number;
}

type Settle<Res> = { resolve: (r: Res) => void; reject: (e: unknown) => void };

export class Coalescer<Req, Res> {
  private queue: Req[] = [];
  private waiters: Settle<Res>[] = [];
  private scheduled = false;

  /**
   * `run` performs one batch: it resolves to one outcome per request, in order (an Error instance
   * rejects that request only); a rejection of the whole call rejects every request of the batch.
   */
  constructor(
    private readonly run: (batch: Req[]) => Promise<Array<Res | Error>>,
    private readonly opts: CoalescerOptions,
  ) {}

  submit(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.queue.push(req);
      this.waiters.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const reqs = this.queue;
    const waiters = this.waiters;
    this.queue = [];
    this.waiters = [];
    const n = reqs.length;
    const batches = Math.max(Math.ceil(n / this.opts.maxBatch), Math.min(this.opts.lanes, n));
    const size = Math.ceil(n / batches);
    for (let from = 0; from < n; from += size) {
      const to = Math.min(n, from + size);
      this.dispatch(reqs.slice(from, to), waiters.slice(from, to));
    }
  }

  private dispatch(reqs: Req[], waiters: Settle<Res>[]): void {
    let call: Promise<Array<Res | Error>>;
    try {
      call = this.run(reqs);
    } catch (e) {
      call = Promise.reject(e);
    }
    call.then(
      (outcomes) => {
        for (let i = 0; i < waiters.length; i++) {
          const o = outcomes[i];
          if (o instanceof Error) waiters[i]!.reject(o);
          else if (o === undefined) waiters[i]!.reject(new Error('batch call returned no outcome for a request'));
          else waiters[i]!.resolve(o);
        }
      },
      (e: unknown) => {
        for (const w of waiters) w.reject(e);
      },
    );
  }
}
