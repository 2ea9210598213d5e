/**
 * The blob kernels in TypeScript: the same seal/open as native/src/blob.c, on the calling thread,
 * with node:crypto (AES-256-CTR, AES-128-ECB, SHA-256), zstd-napi (zstd) and a Poly1305 passed
 * in (the addon's when it is loaded without its blob kernels, else ./poly1305.ts).
 *
 * Every decision is made exactly as the C code makes it — the 16 KiB level-1 sample from the
 * middle of blobs of at least 64 KiB, "worth it" below 97 %, the blob stored compressed only when
 * the frame is smaller than the plaintext, the same zstd frame parameters — so that both
 * implementations produce identical bytes for the same IV (src/native/kernels.test.ts checks it).
 */
import { createCipheriv, createHash, randomFillSync, type Cipher } from 'node:crypto';
import { constants as C, promises as fsp } from 'node:fs';
import binding from 'zstd-napi/binding.js';
import { zstdCompressBound, zstdCompressInto, zstdDecompress } from '../../format/zstd.js';
import type { BlobKernels, CorruptReason, NativePath, OpenOptions, ReadFileOptions, ReadFileResult, SealedBlob, SealKey, SealOptions, Sha256Stream } from '../api.js';
import { bool, codedError, int, rangeError, typeError } from './args.js';

const IV_LEN = 16;
const OVERHEAD = 32;
const SAMPLE = 16 * 1024;
const SAMPLE_MIN_INPUT = 4 * SAMPLE;
const SAMPLE_PERCENT = 97;
const ZSTD_MAGIC = 0xfd2fb528;
const MAX_HASH_PARTS = 4096;
const R_MASK = Buffer.from('ffffff0ffcffff0ffcffff0ffcffff0f', 'hex');

/** The fallback's key object (the addon's is a different, tagged object). */
class FallbackSealKey {
  readonly encrypt: Buffer;
  readonly macK: Buffer;
  /** r clamped, followed by room for s: the Poly1305 key is assembled in place per call. */
  readonly polyKey = Buffer.alloc(32);
  readonly ecb: Cipher;

  constructor(encrypt: Uint8Array, macK: Uint8Array, macR: Uint8Array) {
    this.encrypt = Buffer.from(encrypt);
    this.macK = Buffer.from(macK);
    for (let i = 0; i < 16; i++) this.polyKey[i] = macR[i]! & R_MASK[i]!;
    this.ecb = createCipheriv('aes-128-ecb', this.macK, null);
    this.ecb.setAutoPadding(false);
  }
}

function exactBytes(v: unknown, what: string, len: number): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw typeError(`${what} must be a Uint8Array`);
  if (v.length !== len) throw rangeError(`${what} must be ${len} bytes`);
}

function toKey(k: SealKey): FallbackSealKey {
  if (!(k instanceof FallbackSealKey)) throw typeError('key must be a SealKey (from sealKey())');
  return k;
}

function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw typeError(`${what} must be a Uint8Array`);
  return v;
}

/** The error the kernels report for damaged data (same shape as the addon's). */
export function corruptError(reason: CorruptReason, message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_CAIRN_CORRUPT', reason });
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

let scratch: Buffer | undefined;

function scratchFor(bound: number): Buffer {
  if (!scratch || scratch.length < bound) scratch = Buffer.allocUnsafeSlow(Math.max(bound, 1 << 20));
  return scratch;
}

function worthCompressing(data: Uint8Array): boolean {
  if (data.length < SAMPLE_MIN_INPUT) return true;
  const start = (data.length >>> 1) - (SAMPLE >>> 1);
  const n = zstdCompressInto(data.subarray(start, start + SAMPLE), scratchFor(zstdCompressBound(SAMPLE)), 1);
  return n * 100 < SAMPLE * SAMPLE_PERCENT;
}

function mac(k: FallbackSealKey, poly1305: (key: Uint8Array, msg: Uint8Array) => Buffer, iv: Uint8Array, ct: Uint8Array): Buffer {
  k.ecb.update(iv).copy(k.polyKey, 16);
  return poly1305(k.polyKey, ct);
}

function ctr(k: FallbackSealKey, iv: Uint8Array, input: Uint8Array, out: Buffer, at: number): void {
  const c = createCipheriv('aes-256-ctr', k.encrypt, iv);
  const a = c.update(input);
  a.copy(out, at);
  const b = c.final();
  if (b.length) b.copy(out, at + a.length);
}

function hexOf(id: Uint8Array | string, what: string): string {
  if (typeof id === 'string') {
    if (!/^[0-9a-fA-F]{64}$/.test(id)) throw rangeError(`${what} must be 64 hex digits`);
    return id.toLowerCase();
  }
  exactBytes(id, what, 32);
  return asBuffer(id).toString('hex');
}

/** Blob kernels running on the calling thread, with the given Poly1305 implementation. */
export function makeBlobKernels(poly1305: (key: Uint8Array, msg: Uint8Array) => Buffer, info: string): BlobKernels {
  const sealSync = (key: SealKey, data: Uint8Array, opts: SealOptions): SealedBlob => {
    const k = toKey(key);
    bytes(data, 'data');
    const compress = bool(opts.compress, 'compress');
    const level = int(opts.level, 'level', binding.minCLevel(), binding.maxCLevel());
    const hash = bool(opts.hash ?? false, 'hash');
    if (opts.iv !== undefined && opts.iv !== null) exactBytes(opts.iv, 'iv', IV_LEN);
    if (opts.out !== undefined && opts.out !== null && bytes(opts.out, 'out').length < data.length + OVERHEAD) {
      throw rangeError(`out must have room for ${data.length + OVERHEAD} bytes, has ${opts.out.length}`);
    }
    let id: string | undefined;
    if (hash) id = createHash('sha256').update(data).digest('hex');
    let payload = data;
    let uncompressedLength = 0;
    if (compress && data.length > 0 && worthCompressing(data)) {
      const dst = scratchFor(zstdCompressBound(data.length));
      const n = zstdCompressInto(data, dst, level);
      if (n < data.length) {
        payload = dst.subarray(0, n);
        uncompressedLength = data.length;
      }
    }
    let out: Buffer;
    if (opts.out !== undefined && opts.out !== null) {
      const o = bytes(opts.out, 'out');
      if (o.length < data.length + OVERHEAD) throw rangeError(`out must have room for ${data.length + OVERHEAD} bytes, has ${o.length}`);
      out = Buffer.from(o.buffer, o.byteOffset, payload.length + OVERHEAD);
    } else {
      out = Buffer.allocUnsafeSlow(payload.length + OVERHEAD);
    }
    const iv = out.subarray(0, IV_LEN);
    if (opts.iv) iv.set(opts.iv);
    else {
      do randomFillSync(iv);
      while (iv.every((b) => b === 0)); // restic refuses an all-zero nonce
    }
    ctr(k, iv, payload, out, IV_LEN);
    const ctEnd = IV_LEN + payload.length;
    mac(k, poly1305, iv, out.subarray(IV_LEN, ctEnd)).copy(out, ctEnd);
    const result: SealedBlob = { sealed: out, uncompressedLength };
    if (id !== undefined) result.id = id;
    return result;
  };

  const openSync = (key: SealKey, sealedIn: Uint8Array, opts: OpenOptions): Buffer => {
    const k = toKey(key);
    const sealed = asBuffer(bytes(sealedIn, 'sealed'));
    const ulen = int(opts.uncompressedLength, 'uncompressedLength', 0, Number.MAX_SAFE_INTEGER);
    const maxSize = int(opts.maxSize, 'maxSize', 0, Number.MAX_SAFE_INTEGER);
    const wantId = opts.id === undefined || opts.id === null ? undefined : hexOf(opts.id, 'id');
    const out = opts.out === undefined || opts.out === null ? undefined : bytes(opts.out, 'out');
    const need = ulen > 0 ? ulen : Math.max(0, sealed.length - OVERHEAD);
    if (out !== undefined && sealed.length >= OVERHEAD && ulen <= maxSize && out.length < need) {
      throw rangeError(`out must have room for ${need} bytes, has ${out.length}`);
    }
    if (sealed.length < OVERHEAD) throw corruptError('short', 'too short to be encrypted data');
    const iv = sealed.subarray(0, IV_LEN);
    const ct = sealed.subarray(IV_LEN, sealed.length - 16);
    if (!mac(k, poly1305, iv, ct).equals(sealed.subarray(sealed.length - 16))) {
      throw corruptError('mac', 'ciphertext verification failed');
    }
    let plain: Buffer = ulen === 0 && out !== undefined ? Buffer.from(out.buffer, out.byteOffset, ct.length) : Buffer.allocUnsafeSlow(ct.length);
    ctr(k, iv, ct, plain, 0);
    if (ulen > 0) {
      const frame = plain;
      if (ulen > maxSize) throw corruptError('zstd', `zstd: blob would decompress to ${ulen} bytes, more than the allowed ${maxSize}`);
      if (frame.length < 4 || frame.readUInt32LE(0) !== ZSTD_MAGIC) throw corruptError('zstd', 'zstd: not a zstd frame');
      let frameLen: number;
      let declared: number | null;
      try {
        frameLen = binding.findFrameCompressedSize(frame);
        declared = binding.getFrameContentSize(frame);
      } catch (e) {
        throw corruptError('zstd', `zstd: invalid frame: ${(e as Error).message}`);
      }
      if (frameLen !== frame.length) throw corruptError('zstd', `zstd: ${frame.length - frameLen} bytes after the frame`);
      if (declared !== null && declared !== ulen) throw corruptError('size', `decompressed to ${declared} bytes, index says ${ulen}`);
      try {
        plain = zstdDecompress(frame, ulen);
      } catch (e) {
        const msg = (e as Error).message;
        if (/more than the allowed/.test(msg)) throw corruptError('size', `decompressed to more than the ${ulen} bytes the index says`);
        throw corruptError('zstd', msg.startsWith('zstd:') ? msg : `zstd: ${msg}`);
      }
      if (plain.length !== ulen) throw corruptError('size', `decompressed to ${plain.length} bytes, index says ${ulen}`);
    }
    if (wantId !== undefined && createHash('sha256').update(plain).digest('hex') !== wantId) {
      throw corruptError('hash', 'content does not match its ID');
    }
    if (out !== undefined && ulen > 0) {
      out.set(plain);
      return Buffer.from(out.buffer, out.byteOffset, plain.length);
    }
    return plain;
  };

  const sha256Sync = (data: Uint8Array | readonly Uint8Array[]): string => {
    const h = createHash('sha256');
    if (Array.isArray(data)) {
      if (data.length > MAX_HASH_PARTS) throw rangeError(`sha256: at most ${MAX_HASH_PARTS} parts`);
      for (const part of data as readonly Uint8Array[]) h.update(bytes(part, 'data'));
    } else {
      h.update(bytes(data, 'data'));
    }
    return h.digest('hex');
  };

  return {
    blobKernels: 'fallback',
    blobKernelsInfo: info,
    sealKey: (encrypt, macK, macR) => {
      exactBytes(encrypt, 'encrypt', 32);
      exactBytes(macK, 'macK', 16);
      exactBytes(macR, 'macR', 16);
      return new FallbackSealKey(encrypt, macK, macR) as unknown as SealKey;
    },
    seal: (key, data, opts) => settle(() => sealSync(key, data, opts)),
    sealSync,
    open: (key, sealed, opts) => settle(() => openSync(key, sealed, opts)),
    openSync,
    verify: (key, sealed, opts) => settle(() => openSync(key, sealed, opts).length),
    sha256: (data) => settle(() => sha256Sync(data)),
    sha256Stream: () => new FallbackSha256Stream(),
    readFile: (path, out, o) => readFileWith(sealSync, path, out, o),
  };
}

/** Sha256Stream on the calling thread (updates settle at once, so one is never in flight). */
class FallbackSha256Stream implements Sha256Stream {
  private readonly h = createHash('sha256');
  private done = false;

  update(data: Uint8Array): Promise<void> {
    return settle(() => {
      this.live();
      this.h.update(bytes(data, 'data'));
    });
  }

  digest(): string {
    this.live();
    this.done = true;
    return this.h.digest('hex');
  }

  private live(): void {
    if (this.done) throw Object.assign(new Error('sha256 stream already finished'), { code: 'ERR_INVALID_STATE' });
  }
}

const O_NOATIME = C.O_NOATIME ?? 0;
const READ_FLAGS = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;

/** readFile() with node:fs (several thread-pool round trips instead of one); sealing with `seal`. */
async function readFileWith(
  sealSync: BlobKernels['sealSync'],
  path: NativePath,
  out: Uint8Array,
  o: ReadFileOptions = {},
): Promise<ReadFileResult> {
  let p: string | Buffer;
  if (typeof path === 'string') {
    if (path.includes('\0')) throw typeError('path must be a string without null bytes');
    p = path;
  } else {
    p = asBuffer(bytes(path, 'path'));
    if (p.includes(0)) throw typeError('path must be a path without null bytes');
  }
  bytes(out, 'out');
  if (out.length === 0) throw rangeError('out must not be empty');
  if (o.seal) {
    toKey(o.seal.key);
    bool(o.seal.compress, 'compress');
    int(o.seal.level, 'level', binding.minCLevel(), binding.maxCLevel());
    bytes(o.seal.out, 'sealOut');
  }
  const checkIdentity = o.dev !== undefined || o.ino !== undefined;
  if (checkIdentity && (typeof o.dev !== 'bigint' || typeof o.ino !== 'bigint')) throw typeError('dev and ino must be bigints');
  const shown = typeof p === 'string' ? p : p.toString('utf8');
  let h: fsp.FileHandle;
  try {
    h = await fsp.open(p, READ_FLAGS | O_NOATIME);
  } catch (e) {
    if (O_NOATIME === 0 || (e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    h = await fsp.open(p, READ_FLAGS);
  }
  try {
    const st = await h.stat({ bigint: true });
    if (!st.isFile()) throw codedError('ERR_CAIRN_NOT_REGULAR', 'is no longer a regular file', shown);
    if (checkIdentity && (st.dev !== o.dev || st.ino !== o.ino)) throw codedError('ERR_CAIRN_REPLACED', 'was replaced by another file', shown);
    let length = 0;
    let complete = false;
    while (length < out.length) {
      const { bytesRead } = await h.read(out, length, out.length - length, length);
      if (bytesRead === 0) {
        complete = true;
        break;
      }
      length += bytesRead;
    }
    const r: ReadFileResult = { length, size: Number(st.size), complete };
    const data = out.subarray(0, length);
    if (o.hash && complete) r.id = createHash('sha256').update(data).digest('hex');
    const sl = o.seal;
    if (sl && complete && length + OVERHEAD <= sl.out.length) {
      r.sealed = sealSync(sl.key, data, { compress: sl.compress, level: sl.level, out: sl.out });
    }
    return r;
  } finally {
    await h.close();
  }
}

/** Runs fn now and returns its result as a promise (a throw becomes a rejection). */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}
