/**
 * FastCDC (fastcdc-rs 1.0.5, compiled to WebAssembly by the npm package fastcdc-wasm 0.1.0) as a
 * streaming FileSplitter. The boundaries come from the addon's kernel with the same cut rules and
 * gear table when the addon is loaded (fastcdcBoundaries, below), else from the wasm as follows.
 *
 * Why not call the package's `get_chunks` wrapper: fastcdc-wasm's Rust entry point takes its input
 * as `&mut [u8]`, so the wasm-bindgen glue copies the whole input into wasm memory and, in a
 * `finally` block, copies it back over the caller's array (`bytes.set(...)`). fastcdc never writes
 * to its input (tested), so the copy-back stores identical bytes, but it is (a) a second full
 * memcpy per call (measured 8–15% of fastcdc throughput on 8–32 MiB inputs) and (b) a write into
 * the caller's memory: it would clobber concurrent writers of a SharedArrayBuffer, and after a trap
 * the finally block still copies whatever wasm memory then holds over the caller's bytes. So this module
 * instantiates the package's .wasm itself and drives the same exports directly: copy in, call,
 * read the boundary vector, free — the caller's bytes are only ever read. Our own instance also
 * means a trap (which leaves wasm-bindgen's shadow stack and allocator in an unknown state) can be
 * handled by discarding the instance.
 *
 * `get_chunks(bytes, min, avg, max)` returns all boundary offsets including 0 and bytes.length
 * (only [0] for empty input); fastcdc-rs traps ("unreachable") unless 64 ≤ min ≤ 64 MiB,
 * 256 ≤ avg ≤ 256 MiB and 1024 ≤ max ≤ 1 GiB (it does not check min ≤ avg ≤ max) — callers validate
 * first (see FASTCDC_LIMITS).
 *
 * Streaming: fastcdc-rs 1.0.5 decides each cut by scanning forward from chunkStart + min with a
 * gear hash (a smaller-mask phase then a larger-mask phase; the switch point is fixed relative to
 * the chunk start, except that it is clamped to the end of the input, which changes nothing for
 * positions before that end), stopping at the first hit, at chunkStart + max, or at the end of its
 * input (inputs of ≤ min bytes are returned whole).
 * Hence, for one call over a region that is a prefix of the file:
 *   - a boundary strictly before the region end is the first hit and is final whatever follows;
 *   - a boundary exactly max after the previous one is a forced cut, also final;
 *   - the boundary at the region end is final only if the region ends the file.
 * The splitter caches one call's boundaries and hands them out across next() calls; it tracks
 * positions relative to the current chunk start only, so the caller may move the bytes.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { CairnError } from '../core/errors.js';
import { native } from '../native/index.js';
import type { FileSplitter } from './types.js';

/** fastcdc-rs 1.0.5 parameter limits (its constructor asserts these; violating them traps). */
export const FASTCDC_LIMITS = {
  minSize: [64, 64 * 1024 * 1024],
  avgSize: [256, 256 * 1024 * 1024],
  maxSize: [1024, 1024 * 1024 * 1024],
} as const;

// --- minimal WebAssembly typings (the project compiles against lib ES2022, which has none) ---

interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmModule {
  readonly __brand: 'WasmModule';
}
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmGlobal {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, unknown>) => WasmInstance;
}

/** The raw exports of fastcdc_wasm_bg.wasm (wasm-bindgen ABI of fastcdc-wasm 0.1.0). */
interface FastCdcExports {
  memory: WasmMemory;
  /** Writes (pointer, length) of a Vec<u32> of boundaries to retptr. */
  get_chunks(retptr: number, ptr: number, len: number, min: number, avg: number, max: number): void;
  __wbindgen_add_to_stack_pointer(delta: number): number;
  __wbindgen_malloc(size: number): number;
  __wbindgen_free(ptr: number, size: number): void;
}

let wasmModule: WasmModule | undefined;
let instance: FastCdcExports | undefined;

function loadModule(): WasmModule {
  if (wasmModule === undefined) {
    const require = createRequire(import.meta.url);
    const file = require.resolve('fastcdc-wasm/fastcdc_wasm_bg.wasm');
    const wasm = (globalThis as unknown as { WebAssembly: WasmGlobal }).WebAssembly;
    wasmModule = new wasm.Module(readFileSync(file));
  }
  return wasmModule;
}

function getInstance(): FastCdcExports {
  if (instance === undefined) {
    const wasm = (globalThis as unknown as { WebAssembly: WasmGlobal }).WebAssembly;
    const exports = new wasm.Instance(loadModule(), {}).exports;
    for (const name of ['get_chunks', '__wbindgen_add_to_stack_pointer', '__wbindgen_malloc', '__wbindgen_free']) {
      if (typeof exports[name] !== 'function') {
        throw new CairnError('INTERNAL', `fastcdc-wasm: export ${name} missing (unexpected package version)`);
      }
    }
    if (!exports.memory || !((exports.memory as WasmMemory).buffer instanceof ArrayBuffer)) {
      throw new CairnError('INTERNAL', 'fastcdc-wasm: memory export missing (unexpected package version)');
    }
    instance = exports as unknown as FastCdcExports;
  }
  return instance;
}

/**
 * SHA-256 of fastcdc 1.0.5's gear table (256 little-endian 32-bit words) as it lies in the memory
 * of fastcdc-wasm's module: the addon's kernel takes the table from there (gearTable), so the two
 * cut with the very same table; an equivalence test checks their boundaries in CI.
 */
const GEAR_SHA256 = 'd499f6cdb238b999913ce6bc226452991b403b71cb0b144ca82ecf6e2ce2032a';

/** The gear table once looked for: undefined not yet, null not found (another package version). */
let gear: Uint32Array | null | undefined;

/**
 * Finds the gear table among the static data of a fresh instance of fastcdc-wasm's module: 256
 * consecutive non-zero words below 2^31 (as every entry of it is; a few other runs of data qualify
 * too) whose bytes have GEAR_SHA256. Little-endian hosts only (the module's memory is little-endian).
 */
function gearTable(): Uint32Array | null {
  if (gear !== undefined) return gear;
  gear = null;
  if (new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1) return gear;
  const wasm = (globalThis as unknown as { WebAssembly: WasmGlobal }).WebAssembly;
  const memory = new wasm.Instance(loadModule(), {}).exports.memory as WasmMemory | undefined;
  if (!memory || !(memory.buffer instanceof ArrayBuffer)) return gear;
  const words = new Uint32Array(memory.buffer, 0, memory.buffer.byteLength >>> 2);
  let run = 0;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    run = w !== 0 && w < 0x80000000 ? run + 1 : 0;
    if (run < 256) continue;
    const table = words.slice(i - 255, i + 1);
    if (createHash('sha256').update(new Uint8Array(table.buffer)).digest('hex') === GEAR_SHA256) return (gear = table);
  }
  return gear;
}

/** Which implementation fastcdcBoundaries uses: the addon's kernel or fastcdc-wasm. */
export function fastcdcImplementation(): 'addon' | 'wasm' {
  return native.fastcdcBoundaries !== undefined && gearTable() !== null ? 'addon' : 'wasm';
}

/**
 * FastCDC boundaries of `data`: [0, b1, …, data.length] ([0] for empty input). Reads `data`, never
 * writes it. The parameters must be within FASTCDC_LIMITS. The addon's kernel when it is loaded
 * (and the gear table was found), else fastcdc-wasm: the same boundaries, but the kernel reads
 * `data` where it is, while wasm needs a copy in its memory, and it hashes faster — on the
 * benchmark backup (768 MiB chunked) the JavaScript thread spent 0.56 s in wasm and its copies.
 */
export function fastcdcBoundaries(data: Uint8Array, minSize: number, avgSize: number, maxSize: number): Uint32Array {
  const kernel = native.fastcdcBoundaries;
  if (kernel !== undefined && data.length > 0) {
    const table = gearTable();
    if (table !== null) {
      const out = new Uint32Array(Math.floor(data.length / minSize) + 2);
      let n: number;
      try {
        n = kernel(data, minSize, avgSize, maxSize, table, out);
      } catch (e) {
        // parameters outside fastcdc's limits (callers validate them first), as the wasm reports them
        throw new CairnError('INTERNAL', `fastcdc failed on ${data.length} bytes (min ${minSize}, avg ${avgSize}, max ${maxSize})`, { cause: e });
      }
      if (n > 0) return out.subarray(0, n);
    }
  }
  return fastcdcBoundariesWasm(data, minSize, avgSize, maxSize);
}

/**
 * fastcdcBoundaries computed by fastcdc-wasm (the reference the kernel is tested against). One
 * instance serves the process: wasm memory grows to the largest input seen (the splitter caps
 * inputs, see windowFor) and stays.
 */
export function fastcdcBoundariesWasm(data: Uint8Array, minSize: number, avgSize: number, maxSize: number): Uint32Array {
  if (data.length === 0) return Uint32Array.of(0);
  const w = getInstance();
  try {
    const ptr = w.__wbindgen_malloc(data.length);
    // Views on wasm memory are taken after every call that may grow it (growth detaches old views).
    new Uint8Array(w.memory.buffer, ptr, data.length).set(data);
    const retptr = w.__wbindgen_add_to_stack_pointer(-16);
    w.get_chunks(retptr, ptr, data.length, minSize, avgSize, maxSize);
    const ret = new Int32Array(w.memory.buffer, retptr, 2);
    const vecPtr = ret[0];
    const vecLen = ret[1];
    const out = new Uint32Array(w.memory.buffer, vecPtr, vecLen).slice();
    w.__wbindgen_free(vecPtr, vecLen * 4);
    w.__wbindgen_add_to_stack_pointer(16);
    w.__wbindgen_free(ptr, data.length);
    return out;
  } catch (e) {
    // A trap leaves the instance's shadow stack / allocator mid-operation: never reuse it. (The
    // parameters are validated before we get here, so this is not expected to happen.)
    instance = undefined;
    throw new CairnError('INTERNAL', `fastcdc-wasm failed on ${data.length} bytes (min ${minSize}, avg ${avgSize}, max ${maxSize})`, { cause: e });
  }
}

/**
 * The largest region handed to one wasm call. Each call copies its input into wasm memory and
 * rescans the undecided tail after its last final boundary on the next call, so bigger windows
 * amortize better, but wasm memory keeps the high-water mark. ≥ maxSize guarantees at least one
 * final boundary per call.
 */
export function windowFor(maxSize: number): number {
  const MiB = 1024 * 1024;
  return Math.max(maxSize, Math.min(Math.max(4 * maxSize, 4 * MiB), 64 * MiB));
}

export class FastCdcSplitter implements FileSplitter {
  /** Boundaries of the last wasm call, relative to the start of the region it saw. */
  private bounds: Uint32Array | null = null;
  /** Index into bounds of the current chunk start. */
  private idx = 0;
  /** Length of the region the last call saw, and whether it reached the end of the file. */
  private regionLen = 0;
  private regionFinal = false;
  private readonly window: number;

  constructor(
    private readonly minSize: number,
    private readonly avgSize: number,
    readonly maxSize: number,
  ) {
    this.window = windowFor(maxSize);
  }

  next(buf: Uint8Array, start: number, end: number, eof: boolean): number {
    const len = end - start;
    if (len < 0 || start < 0 || end > buf.length) {
      throw new CairnError('INTERNAL', `fastcdc splitter: bad region [${start}, ${end}) of a ${buf.length}-byte buffer`);
    }
    if (len === 0) return 0;

    if (this.bounds !== null) {
      const n = this.takeCached(len, eof);
      if (n > 0) return n;
    }
    // Call wasm only with ≥ maxSize bytes (or the whole rest of the file): then every call decides
    // at least one chunk and usually several, and only the undecided tail after the last final
    // boundary is copied and hashed again by the next call. Measured on 256 MiB of random data with
    // 512K/1M/8M: 1.05–1.08 bytes passed to wasm per input byte for read sizes 64 KiB…16 MiB;
    // calling as soon as a chunk might be decidable (doubling the region each time) cost 1.3–1.9.
    // Callers must be able to hold maxSize bytes anyway (a maximal chunk needs them).
    if (!eof && len < this.maxSize) return 0;
    if (eof && len <= this.minSize) return len; // fastcdc returns the rest as is

    const callLen = Math.min(len, this.window);
    const b = fastcdcBoundaries(buf.subarray(start, start + callLen), this.minSize, this.avgSize, this.maxSize);
    if (b.length < 2 || b[0] !== 0 || b[b.length - 1] !== callLen) {
      throw new CairnError('INTERNAL', `fastcdc returned unexpected boundaries for ${callLen} bytes`);
    }
    this.bounds = b;
    this.idx = 0;
    this.regionLen = callLen;
    this.regionFinal = eof && callLen === len;
    const n = this.takeCached(len, eof);
    // With eof or ≥ maxSize bytes the first boundary is always final (a content cut before the
    // region end, a forced cut at maxSize, or the end of the file).
    if (n === 0) throw new CairnError('INTERNAL', `fastcdc splitter made no progress on ${len} bytes (eof ${eof})`);
    return n;
  }

  /** The next cached boundary if it is final, else 0 (and the cache is dropped). */
  private takeCached(len: number, eof: boolean): number {
    const bounds = this.bounds as Uint32Array;
    const a = bounds[this.idx];
    const b = bounds[this.idx + 1];
    const n = b - a;
    // The cached region was exactly the rest of the file if the caller now says eof and holds
    // exactly the bytes that region had left.
    const final = this.regionFinal || (eof && len === this.regionLen - a);
    if (b < this.regionLen || n === this.maxSize || final) {
      if (n > len) {
        throw new CairnError('INTERNAL', `fastcdc splitter: region of ${len} bytes is shorter than the cached chunk of ${n}`);
      }
      this.idx++;
      if (this.idx === bounds.length - 1) this.bounds = null;
      return n;
    }
    this.bounds = null;
    return 0;
  }
}
