/**
 * Storage for the compact restore plan: columns of numbers in fixed-size typed-array chunks, and
 * an append-only store of byte strings (names) in fixed chunks.
 *
 * A plan of a million files held as one object per entry costs over a kilobyte each (objects,
 * arrays of Buffers, hex strings, Map entries); the same facts in columns cost under two hundred
 * bytes and give the garbage collector nothing to trace. Chunks rather than one array that
 * doubles: growing never copies, never holds an old and a new copy at once, and leaves no freed
 * large blocks behind in the allocator (which, freed in the middle of the heap, stay resident).
 */

type NumberArray = Uint8Array | Uint32Array | Int32Array | Float64Array;

/** Elements per chunk of a Column (the first chunk starts small and grows to this). */
const COLUMN_CHUNK_BITS = 13;
const COLUMN_CHUNK = 1 << COLUMN_CHUNK_BITS;
const COLUMN_MASK = COLUMN_CHUNK - 1;
const FIRST_CHUNK = 64;

/** A growable column of numbers of one typed-array kind, addressed by index. */
export class Column<T extends NumberArray> {
  private readonly chunks: T[];
  /** Elements there is room for. */
  private room: number;

  constructor(private readonly make: new (n: number) => T) {
    this.chunks = [new make(FIRST_CHUNK)];
    this.room = FIRST_CHUNK;
  }

  /** Makes room for indexes below n (new elements are 0). */
  reserve(n: number): void {
    if (n <= this.room) return;
    const first = this.chunks[0]!;
    if (this.chunks.length === 1 && first.length < COLUMN_CHUNK) {
      // small plans stay small: the first chunk doubles up to a whole chunk
      const grownFirst = new this.make(Math.min(COLUMN_CHUNK, Math.max(n, first.length * 2)));
      grownFirst.set(first as never);
      this.chunks[0] = grownFirst;
      this.room = grownFirst.length;
    }
    while (this.room < n) {
      this.chunks.push(new this.make(COLUMN_CHUNK));
      this.room += COLUMN_CHUNK;
    }
  }

  /** Elements there is room for without growing. */
  get capacity(): number {
    return this.room;
  }

  get(i: number): number {
    return this.chunks[i >>> COLUMN_CHUNK_BITS]![i & COLUMN_MASK]!;
  }

  set(i: number, v: number): void {
    this.chunks[i >>> COLUMN_CHUNK_BITS]![i & COLUMN_MASK] = v;
  }

  /** Bytes held. */
  get byteLength(): number {
    let n = 0;
    for (const c of this.chunks) n += c.byteLength;
    return n;
  }
}

/**
 * Bytes per chunk of a ByteStore. 1 MiB keeps the unused end of the last one (allocated, mostly
 * not touched) small.
 */
const BYTES_CHUNK = 1 << 20;

/**
 * Append-only byte strings addressed by a position (a float64-safe integer: chunk × BYTES_CHUNK
 * + offset) plus their length. A string longer than a chunk gets a chunk of its own.
 */
export class ByteStore {
  private readonly chunks: Buffer[] = [];
  /** Bytes used in the last chunk (BYTES_CHUNK when it is full or an oversized one). */
  private used = BYTES_CHUNK;

  /** Copies `b` in; returns its position. */
  add(b: Uint8Array): number {
    if (b.length > BYTES_CHUNK) {
      this.chunks.push(Buffer.from(b));
      this.used = BYTES_CHUNK;
      return (this.chunks.length - 1) * BYTES_CHUNK;
    }
    if (this.used + b.length > BYTES_CHUNK) {
      // the first chunk is small (most plans are small); later ones are whole
      const size = this.chunks.length === 0 ? Math.max(4096, b.length) : BYTES_CHUNK;
      this.chunks.push(Buffer.allocUnsafeSlow(size));
      this.used = 0;
    }
    let c = this.chunks.length - 1;
    if (this.used + b.length > this.chunks[c]!.length) {
      // the small first chunk is full: continue in whole ones
      this.chunks.push(Buffer.allocUnsafeSlow(BYTES_CHUNK));
      this.used = 0;
      c++;
    }
    const at = this.used;
    this.chunks[c]!.set(b, at);
    this.used += b.length;
    return c * BYTES_CHUNK + at;
  }

  /** A view (not a copy) of the `length` bytes stored at `pos`. */
  view(pos: number, length: number): Buffer {
    const c = Math.floor(pos / BYTES_CHUNK);
    const at = pos - c * BYTES_CHUNK;
    return this.chunks[c]!.subarray(at, at + length);
  }

  /** Bytes of memory held (whole chunks). */
  get byteLength(): number {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    return n;
  }
}
