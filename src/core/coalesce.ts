/**
 * Coalescing of many small asynchronous requests into a few batch calls.
 *
 * Why: each job handed to libuv's thread pool costs the JavaScript thread a wake-up of a pool
 * thread (a futex, and on a virtual machine an inter-processor interrupt) — tens of microseconds,
 * more than an lstat or the read of a small file itself. Requests made during one turn of the
 * event loop are collected and sent together at the end of that turn (setImmediate), split into
 * at most `lanes` batches so that the pool's threads still share the work.
 *
 * At most `lanes` batch calls are outstanding: while every lane is busy, requests wait and go out
 * together when a lane frees up. Sending each turn's requests at once regardless gave a 20k-file
 * restore 10,900 calls of 1.8 files on average (each completion starts the next file or two),
 * 53 µs of main-thread time apiece here; waiting for a free lane turns the same stream into full
 * batches, while a lone request on an idle lane still goes out at the end of its turn.
 */
export interface CoalescerOptions {
  /** Most requests in one batch call. */
  maxBatch: number;
  /** Batch calls outstanding at most (pool threads that should share the work). */
  lanes: number;
}

type Settle<Res> = { resolve: (r: Res) => void; reject: (e: unknown) => void };

export class Coalescer<Req, Res> {
  private queue: Req[] = [];
  private waiters: Settle<Res>[] = [];
  private scheduled = false;
  private busy = 0;

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
      this.schedule();
    });
  }

  /** Flushes at the end of this turn (after its microtasks), when a lane is free. */
  private schedule(): void {
    if (this.scheduled || this.busy >= this.opts.lanes || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const free = this.opts.lanes - this.busy;
    const n = Math.min(this.queue.length, free * this.opts.maxBatch);
    if (free <= 0 || n === 0) return;
    const reqs = this.queue.splice(0, n);
    const waiters = this.waiters.splice(0, n);
    // as many batches as free lanes allow, at most maxBatch each, spread evenly
    const batches = Math.min(free, n);
    const size = Math.ceil(n / batches);
    for (let from = 0; from < n; from += size) {
      const to = Math.min(n, from + size);
      this.dispatch(reqs.slice(from, to), waiters.slice(from, to));
    }
  }

  private dispatch(reqs: Req[], waiters: Settle<Res>[]): void {
    this.busy++;
    let call: Promise<Array<Res | Error>>;
    try {
      call = this.run(reqs);
    } catch (e) {
      call = Promise.reject(e);
    }
    call
      .then(
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
      )
      .finally(() => {
        this.busy--;
        this.schedule();
      });
  }
}
