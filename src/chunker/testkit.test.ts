/**
 * Test-only helpers shared by the chunker tests (named *.test.ts so it never ships in dist/; it
 * registers no tests itself).
 *
 * referenceRabinKernel: a deliberately literal restic/chunker v0.4.0 state machine (spec §10.3–§10.5) used as
 * an independent oracle for whatever RabinKernel native/ provides. It restarts every scan from the
 * chunk start (reset, priming byte, skip MIN − 64 bytes, slide byte by byte) and only then applies
 * findCut's scanFrom lower bound, so it also checks that resumed scans in the real kernel agree
 * with from-scratch ones. Slow by design.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RabinKernel } from '../native/api.js';
import { deg, mod } from './polynomial.js';
import type { Chunker, ChunkerParams } from './types.js';
import { RabinSplitter } from './rabin.js';

const WINDOW = 64;
const SPLIT_MASK = 0xfffff;

interface Tables {
  outHi: Uint32Array;
  outLo: Uint32Array;
  modHi: Uint32Array;
  modLo: Uint32Array;
  shift: number;
}

function tables(pol: bigint): Tables {
  const k = deg(pol);
  const t: Tables = {
    outHi: new Uint32Array(256),
    outLo: new Uint32Array(256),
    modHi: new Uint32Array(256),
    modLo: new Uint32Array(256),
    shift: k - 8,
  };
  for (let b = 0; b < 256; b++) {
    let h = mod(BigInt(b), pol);
    for (let i = 0; i < WINDOW - 1; i++) h = mod(h << 8n, pol);
    t.outHi[b] = Number(h >> 32n);
    t.outLo[b] = Number(h & 0xffffffffn);
    const top = BigInt(b) << BigInt(k);
    const m = mod(top, pol) | top;
    t.modHi[b] = Number(m >> 32n);
    t.modLo[b] = Number(m & 0xffffffffn);
  }
  return t;
}

/** The literal digest state of spec §10.4; the 64-bit digest is kept as two uint32 halves. */
class RollingHash {
  private window = new Uint8Array(WINDOW);
  private wpos = 0;
  hi = 0;
  lo = 0;

  constructor(private readonly t: Tables) {
    this.slide(1); // restic primes every chunk's window with one byte of value 1
  }

  slide(b: number): void {
    const t = this.t;
    const o = this.window[this.wpos];
    this.window[this.wpos] = b;
    this.wpos = (this.wpos + 1) % WINDOW;
    this.hi = (this.hi ^ t.outHi[o]) >>> 0;
    this.lo = (this.lo ^ t.outLo[o]) >>> 0;
    let idx: number;
    if (t.shift >= 32) idx = this.hi >>> (t.shift - 32);
    else if (t.shift === 0) idx = this.lo;
    else idx = ((this.hi << (32 - t.shift)) | (this.lo >>> t.shift)) >>> 0;
    idx &= 0xff;
    this.hi = ((this.hi << 8) | (this.lo >>> 24)) >>> 0;
    this.lo = ((this.lo << 8) | b) >>> 0;
    this.hi = (this.hi ^ t.modHi[idx]) >>> 0;
    this.lo = (this.lo ^ t.modLo[idx]) >>> 0;
  }
}

export function referenceRabinKernel(pol: bigint): RabinKernel {
  const t = tables(pol);
  return {
    findCut(buf, chunkStart, scanFrom, end, minSize, maxSize) {
      const h = new RollingHash(t);
      const limit = Math.min(maxSize, end - chunkStart);
      const lower = Math.max(minSize, scanFrom - chunkStart);
      for (let n = minSize - WINDOW + 1; n <= limit; n++) {
        h.slide(buf[chunkStart + n - 1]);
        if (n >= lower && (h.lo & SPLIT_MASK) === 0) return n;
      }
      return -1;
    },
  };
}

/** A Chunker over any kernel without going through native/ (for kernel cross-checks). */
export function rabinChunkerWith(kernel: RabinKernel, params: Omit<ChunkerParams, 'algorithm'>): Chunker {
  const full: ChunkerParams = { algorithm: 'rabin', ...params };
  return { params: full, newFile: () => new RabinSplitter(kernel, params.minSize, params.maxSize) };
}

/** Deterministic pseudo-random bytes (xorshift32), fast enough for hundreds of MiB. */
export function prng(seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = (seed | 0) || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeInt32LE(x, i);
  }
  for (; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Random data with runs of ≥ 64 zero bytes sprinkled in: every such run gives a Rabin fingerprint
 * of 0 (a content cut) and typically a FastCDC cut too, so small test inputs exercise content
 * cuts rather than only forced ones.
 */
export function dataWithZeroRuns(seed: number, length: number, meanGap: number): Buffer {
  const out = prng(seed, length);
  const r = prng(seed ^ 0x5bd1e995, 8 * Math.ceil(length / meanGap) + 16);
  let pos = 0;
  for (let j = 0; j + 8 <= r.length; j += 8) {
    pos += 1 + (r.readUInt32LE(j) % (2 * meanGap));
    if (pos >= length) break;
    const run = 64 + (r.readUInt16LE(j + 4) % 200);
    out.fill(0, pos, Math.min(length, pos + run));
    pos += run;
  }
  return out;
}

/** Splits data into consecutive source buffers of the given sizes (cycled), as fresh copies. */
export function splitAt(data: Uint8Array, sizes: number[]): Buffer[] {
  const parts: Buffer[] = [];
  let pos = 0;
  for (let i = 0; pos < data.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]);
    parts.push(Buffer.from(data.subarray(pos, Math.min(data.length, pos + n))));
    pos += n;
  }
  return parts;
}

export async function* fromParts(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}

/** Chunk lengths of a streamed file, asserting nothing; collects the chunks too. */
export async function collect(iter: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of iter) out.push(c);
  return out;
}

/**
 * The shared fixtures directory (restic-made repositories and their source tar). CAIRN_FIXTURES
 * overrides; otherwise shared/fixtures next to the repository.
 */
export function fixturesDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env.CAIRN_FIXTURES,
    resolve(here, '../../../../shared/fixtures'), // build/src/chunker → repo/.. /shared
    resolve(here, '../../../shared/fixtures'),
  ];
  for (const c of candidates) if (c && existsSync(join(c, 'restic-0.14-v2-source.tar'))) return c;
  return undefined;
}

/** Minimal tar reader: the content of one regular file (ustar names and pax `path` records). */
export function readTarEntry(tarPath: string, wanted: string): Buffer {
  const tar = readFileSync(tarPath);
  let pos = 0;
  let paxPath: string | undefined;
  while (pos + 512 <= tar.length) {
    const header = tar.subarray(pos, pos + 512);
    if (header.every((b) => b === 0)) break;
    const field = (off: number, len: number): string => {
      const raw = header.subarray(off, off + len);
      const nul = raw.indexOf(0);
      return raw.subarray(0, nul < 0 ? len : nul).toString('utf8');
    };
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1) || '0';
    const prefix = field(345, 155);
    const name = paxPath ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    const body = tar.subarray(pos + 512, pos + 512 + size);
    pos += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      // pax records: "<len> key=value\n"
      let p = 0;
      while (p < body.length) {
        const sp = body.indexOf(0x20, p);
        const len = parseInt(body.subarray(p, sp).toString('ascii'), 10);
        const rec = body.subarray(sp + 1, p + len - 1).toString('utf8');
        const eq = rec.indexOf('=');
        if (rec.slice(0, eq) === 'path') paxPath = rec.slice(eq + 1);
        p += len;
      }
      continue;
    }
    paxPath = undefined;
    if ((type === '0' || type === '\0') && name === wanted) return Buffer.from(body);
  }
  throw new Error(`${wanted} not found in ${tarPath}`);
}
