/**
 * Recycling of large Buffers for the hot paths (sealed blobs, pack buffers, restored plaintext).
 *
 * Why: a fresh multi-MiB Buffer is fresh memory from the kernel — every 4 KiB page faults on first
 * write (≈ 0.5 ms of system time per MiB on the test VM) — and V8 counts every ArrayBuffer
 * allocation as external memory, which schedules full garbage collections. A backup of 1 GiB
 * otherwise allocates several GiB this way. Taking buffers from here and giving them back when
 * done keeps both flat.
 *
 * Sizes are rounded up to classes (quarter steps between powers of two, at least `minSize`), so
 * a buffer is at most 25 % larger than asked for. Buffers are whole ArrayBuffers of their own.
 * The pool keeps at most `maxBytes` of idle buffers; more are left to the garbage collector. A
 * buffer given back to a full pool pushes out idle buffers of the size class used least recently:
 * rejecting it instead let a pool filled by a few large blobs refuse every small one afterwards (a
 * restore then allocated 600 MiB of fresh 64 KiB+ buffers, and V8 ran a full collection for
 * every ~40 MiB of them).
 */
export class BufferPool {
  private readonly idle = new Map<number, Buffer[]>();
  private idleBytes = 0;
  /** Per size class, when it was last taken from or given to (a counter of calls). */
  private readonly lastUse = new Map<number, number>();
  private clock = 0;

  constructor(
    readonly maxBytes: number,
    readonly minSize = 64 * 1024,
    /** Makes a new buffer of exactly `size` bytes (e.g. native.alignedBuffer for direct I/O). */
    private readonly alloc: (size: number) => Buffer = Buffer.allocUnsafeSlow,
  ) {}

  /** The capacity of the buffers handed out for `size` bytes. */
  classOf(size: number): number {
    if (size <= this.minSize) return this.minSize;
    const p = 2 ** Math.floor(Math.log2(size));
    const step = Math.max(1, p / 4);
    return Math.ceil(size / step) * step;
  }

  /**
   * A buffer of at least `size` bytes (its length is its class size; use a subarray): an idle one
   * of the class, else the smallest idle one of a larger class up to twice the size (blob sizes
   * vary, and a fresh buffer costs page faults — a little slack costs nothing), else a new one.
   */
  take(size: number): Buffer {
    const c = this.classOf(size);
    let best = this.idle.get(c)?.length ? c : 0;
    if (best === 0) {
      for (const [k, list] of this.idle) if (k > c && k <= 2 * c && list.length > 0 && (best === 0 || k < best)) best = k;
    }
    this.lastUse.set(c, ++this.clock);
    if (best !== 0) {
      this.idleBytes -= best;
      return this.idle.get(best)!.pop()!;
    }
    return this.alloc(c);
  }

  /**
   * Returns a buffer from take() (or any whole-ArrayBuffer Buffer of a class size) for reuse.
   * Nothing may use it afterwards. Others are ignored.
   */
  give(b: Buffer): void {
    const c = b.length;
    if (b.byteOffset !== 0 || b.buffer.byteLength !== c || this.classOf(c) !== c) return;
    if (c > this.maxBytes) return;
    this.lastUse.set(c, ++this.clock);
    while (this.idleBytes + c > this.maxBytes) this.evictLeastRecent();
    let list = this.idle.get(c);
    if (list === undefined) this.idle.set(c, (list = []));
    list.push(b);
    this.idleBytes += c;
  }

  /** Drops one idle buffer of the size class used least recently. */
  private evictLeastRecent(): void {
    let victim = 0;
    let oldest = Infinity;
    for (const [k, list] of this.idle) {
      const t = this.lastUse.get(k) ?? 0;
      if (list.length > 0 && t < oldest) {
        oldest = t;
        victim = k;
      }
    }
    this.idle.get(victim)!.pop();
    this.idleBytes -= victim;
  }

  /** Bytes held by idle buffers. */
  get idleSize(): number {
    return this.idleBytes;
  }

  /** Drops every idle buffer. */
  clear(): void {
    this.idle.clear();
    this.idleBytes = 0;
  }
}
