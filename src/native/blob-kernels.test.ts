/**
 * The blob kernels (seal, open, sha256) for both implementations: identical bytes for the same
 * IV, checked against independent references (node:crypto AES, the BigInt Poly1305 of the RFC,
 * zstd-napi, and the repository's own Sealer), identical errors for damaged blobs.
 */
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import binding from 'zstd-napi/binding.js';
import { Sealer } from '../crypto/seal.js';
import { zstdDecompress } from '../format/zstd.js';
import type { NativeApi, SealKey } from './api.js';
import { implementations, poly1305Reference, prng, randomBytes } from './testkit.test.js';

const { impls, missing } = implementations();
const KiB = 1024;
const MiB = 1024 * KiB;

const rand = prng(20261122);
const KEY = { encrypt: randomBytes(rand, 32), macK: randomBytes(rand, 16), macR: randomBytes(rand, 16) };
const IV = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex');

function keyFor(api: NativeApi): SealKey {
  return api.sealKey(KEY.encrypt, KEY.macK, KEY.macR);
}

/** Log-like text: compressible, but not trivially. */
function text(n: number, seed: number): Buffer {
  const r = prng(seed);
  const words = ['GET', '/api/v1/items', '200', 'user=', 'latency_ms=', 'INFO', 'WARN', 'pod', 'kube-system', 'restarted'];
  const parts: string[] = [];
  let len = 0;
  while (len < n) {
    const line = `${1700000000 + (r() % 100000)} ${words[r() % words.length]} ${words[r() % words.length]} ${r() % 1000}\n`;
    parts.push(line);
    len += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

/** Inputs that take every path: empty, tiny, below/at the sample threshold, incompressible, mixed. */
function inputs(): Array<[string, Uint8Array]> {
  const r = prng(7);
  const mixed = Buffer.concat([randomBytes(r, 512 * KiB), text(512 * KiB, 3)]);
  const view = Buffer.concat([Buffer.alloc(3), text(200 * KiB, 4)]).subarray(3);
  return [
    ['empty', Buffer.alloc(0)],
    ['1 byte', Buffer.from([0x42])],
    ['100 B text', text(100, 1)],
    ['16 KiB text', text(16 * KiB, 2)],
    ['64 KiB − 1 random (no sample, not smaller)', randomBytes(r, 64 * KiB - 1)],
    ['64 KiB text (sampled)', text(64 * KiB, 5)],
    ['1 MiB random (sample says no)', randomBytes(r, MiB)],
    ['1 MiB text', text(MiB, 6)],
    ['1 MiB random then text (sample from the middle)', mixed],
    ['3 MiB + 7 zero bytes', Buffer.alloc(3 * MiB + 7)],
    ['unaligned plain Uint8Array view', new Uint8Array(view.buffer, view.byteOffset, view.length)],
  ];
}

/** Opens a sealed blob with independent primitives (node:crypto, BigInt Poly1305, zstd-napi). */
function referenceOpen(sealed: Buffer, ulen: number): Buffer {
  const iv = sealed.subarray(0, 16);
  const ct = sealed.subarray(16, sealed.length - 16);
  const ecb = createCipheriv('aes-128-ecb', KEY.macK, null);
  ecb.setAutoPadding(false);
  const s = ecb.update(iv);
  const tag = poly1305Reference(Buffer.concat([KEY.macR, s]), ct);
  assert.equal(tag.toString('hex'), sealed.subarray(sealed.length - 16).toString('hex'), 'MAC (reference)');
  const d = createCipheriv('aes-256-ctr', KEY.encrypt, iv);
  const payload = Buffer.concat([d.update(ct), d.final()]);
  return ulen > 0 ? zstdDecompress(payload, ulen) : payload;
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('blob kernels: implementations under test', () => {
  it('lists them and says which runs the blob kernels', (t) => {
    if (missing !== undefined) t.diagnostic(`only the fallback is tested: ${missing}`);
    for (const impl of impls) t.diagnostic(`${impl.name}: blob kernels ${impl.api.blobKernels} (${impl.api.blobKernelsInfo})`);
    assert.equal(impls[0].api.blobKernels, 'fallback');
    if (impls.length > 1 && process.env.CAIRN_REQUIRE_NATIVE === '1') assert.equal(impls[1].api.blobKernels, 'native');
  });
});

describe('seal: identical bytes, checked against references', () => {
  for (const [label, data] of inputs()) {
    for (const compress of [false, true]) {
      it(`${label}, compress ${compress}`, async () => {
        const results = [];
        for (const impl of impls) {
          const key = keyFor(impl.api);
          const opts = { compress, level: 3, hash: true, iv: IV };
          const sync = impl.api.sealSync(key, data, opts);
          const async = await impl.api.seal(key, data, opts);
          assert.equal(async.sealed.toString('hex'), sync.sealed.toString('hex'), `${impl.name}: seal and sealSync agree`);
          assert.equal(async.uncompressedLength, sync.uncompressedLength);
          assert.equal(sync.id, sha(data), `${impl.name}: id`);
          results.push({ name: impl.name, r: sync });
        }
        const first = results[0]!.r;
        for (const { name, r } of results.slice(1)) {
          assert.equal(r.uncompressedLength, first.uncompressedLength, `${name}: uncompressedLength`);
          assert.equal(r.sealed.toString('hex'), first.sealed.toString('hex'), `${name}: sealed bytes differ from the fallback's`);
        }
        assert.equal(first.sealed.subarray(0, 16).toString('hex'), IV.toString('hex'), 'IV first');
        if (!compress) assert.equal(first.uncompressedLength, 0);
        if (first.uncompressedLength > 0) {
          assert.equal(first.uncompressedLength, data.length);
          assert.ok(first.sealed.length - 32 < data.length, 'stored compressed only when smaller');
        } else {
          assert.equal(first.sealed.length, data.length + 32);
        }
        assert.ok(referenceOpen(first.sealed, first.uncompressedLength).equals(Buffer.from(data)), 'reference open gives the data back');
        // The repository's own Sealer (node:crypto + the loaded Poly1305) accepts it too.
        const plain = new Sealer(KEY).open(first.sealed);
        assert.ok((first.uncompressedLength ? zstdDecompress(plain, data.length) : plain).equals(Buffer.from(data)));
      });
    }
  }

  it('compression decisions: text compressed, random stored raw, the sample decides for large blobs', () => {
    for (const impl of impls) {
      const key = keyFor(impl.api);
      const c = (d: Uint8Array) => impl.api.sealSync(key, d, { compress: true, level: 3, iv: IV }).uncompressedLength;
      assert.equal(c(text(MiB, 9)), MiB, `${impl.name}: text`);
      assert.equal(c(randomBytes(prng(3), MiB)), 0, `${impl.name}: random`);
      // Compressible at both ends but random in the middle: the sample says "not worth it".
      const sandwich = Buffer.concat([Buffer.alloc(400 * KiB), randomBytes(prng(4), 64 * KiB), Buffer.alloc(400 * KiB)]);
      assert.equal(c(sandwich), 0, `${impl.name}: sample from the middle`);
    }
  });

  it('levels 1 and 19 give identical frames in both implementations', () => {
    const data = text(300 * KiB, 11);
    for (const level of [1, 19, -5]) {
      const out = impls.map((impl) => impl.api.sealSync(keyFor(impl.api), data, { compress: true, level, iv: IV }).sealed.toString('hex'));
      for (const o of out.slice(1)) assert.equal(o, out[0], `level ${level}`);
    }
  });

  it('random IVs: fresh per call, never all zero, and the blob still opens', async () => {
    for (const impl of impls) {
      const key = keyFor(impl.api);
      const data = text(5000, 12);
      const a = await impl.api.seal(key, data, { compress: true, level: 3 });
      const b = impl.api.sealSync(key, data, { compress: true, level: 3 });
      assert.notEqual(a.sealed.subarray(0, 16).toString('hex'), b.sealed.subarray(0, 16).toString('hex'));
      assert.ok(!a.sealed.subarray(0, 16).every((x) => x === 0));
      assert.equal(a.id, undefined, 'no id unless asked');
      assert.ok(impl.api.openSync(key, a.sealed, { uncompressedLength: a.uncompressedLength, maxSize: MiB, id: sha(data) }).equals(data));
    }
  });

  it('many concurrent seals (thread pool) are all correct', async () => {
    for (const impl of impls) {
      const key = keyFor(impl.api);
      const blobs = Array.from({ length: 48 }, (_, i) => (i % 3 === 0 ? randomBytes(prng(i), 70 * KiB + i) : text(70 * KiB + i * 100, i)));
      const sealed = await Promise.all(blobs.map((b) => impl.api.seal(key, b, { compress: true, level: 3, hash: true })));
      for (let i = 0; i < blobs.length; i++) {
        assert.equal(sealed[i]!.id, sha(blobs[i]!));
        assert.ok(referenceOpen(sealed[i]!.sealed, sealed[i]!.uncompressedLength).equals(blobs[i]!), `${impl.name}: blob ${i}`);
      }
    }
  });
});

describe('seal/open into caller-provided buffers (out)', () => {
  it('seal writes into out and returns a view of it, with the same bytes as without', async () => {
    for (const [label, data] of inputs()) {
      for (const impl of impls) {
        const key = keyFor(impl.api);
        const plain = impl.api.sealSync(key, data, { compress: true, level: 3, iv: IV });
        const backing = Buffer.alloc(data.length + 32 + 9, 0xee);
        const out = backing.subarray(5, 5 + data.length + 32);
        const a = impl.api.sealSync(key, data, { compress: true, level: 3, iv: IV, out });
        assert.ok(Buffer.isBuffer(a.sealed), `${impl.name} ${label}: a Buffer`);
        assert.equal(a.sealed.buffer, backing.buffer, `${impl.name} ${label}: a view of out`);
        assert.equal(a.sealed.byteOffset, out.byteOffset);
        assert.equal(a.sealed.toString('hex'), plain.sealed.toString('hex'), `${impl.name} ${label}`);
        const b = await impl.api.seal(key, data, { compress: true, level: 3, iv: IV, out: new Uint8Array(data.length + 32) });
        assert.ok(Buffer.isBuffer(b.sealed));
        assert.equal(b.sealed.toString('hex'), plain.sealed.toString('hex'), `${impl.name} ${label} (async, Uint8Array out)`);
        assert.equal(backing[4], 0xee, 'nothing written before out');
      }
    }
  });

  it('open writes the plaintext into out', async () => {
    for (const [label, data] of inputs()) {
      const s = impls[0]!.api.sealSync(keyFor(impls[0]!.api), data, { compress: true, level: 3 });
      for (const impl of impls) {
        const key = keyFor(impl.api);
        const out = Buffer.alloc(data.length + 3);
        const o = { uncompressedLength: s.uncompressedLength, maxSize: 64 * MiB, id: sha(data), out };
        const got = impl.api.openSync(key, s.sealed, o);
        assert.equal(got.buffer, out.buffer, `${impl.name} ${label}: a view of out`);
        assert.ok(got.equals(Buffer.from(data)), `${impl.name} ${label}`);
        const again = await impl.api.open(key, s.sealed, { ...o, out: new Uint8Array(data.length) });
        assert.ok(again.equals(Buffer.from(data)), `${impl.name} ${label} (async)`);
      }
    }
  });

  it('too small a destination is a RangeError before any work', async () => {
    const data = text(5000, 3);
    for (const impl of impls) {
      const key = keyFor(impl.api);
      assert.throws(() => impl.api.sealSync(key, data, { compress: true, level: 3, out: Buffer.alloc(data.length + 31) }), RangeError);
      await assert.rejects(impl.api.seal(key, data, { compress: true, level: 3, out: Buffer.alloc(10) }), RangeError);
      const s = impl.api.sealSync(key, data, { compress: true, level: 3 });
      const o = { uncompressedLength: s.uncompressedLength, maxSize: MiB };
      assert.throws(() => impl.api.openSync(key, s.sealed, { ...o, out: Buffer.alloc(data.length - 1) }), RangeError);
      await assert.rejects(impl.api.open(key, s.sealed, { ...o, out: Buffer.alloc(1) }), RangeError);
    }
  });
});

describe('open: round trips across implementations', () => {
  it('what one seals the other opens, with and without the ID check', async () => {
    for (const [label, data] of inputs()) {
      for (const sealer of impls) {
        const s = sealer.api.sealSync(keyFor(sealer.api), data, { compress: true, level: 3 });
        for (const opener of impls) {
          const key = keyFor(opener.api);
          const o = { uncompressedLength: s.uncompressedLength, maxSize: 64 * MiB };
          const what = `${label}: ${sealer.name} → ${opener.name}`;
          assert.ok(opener.api.openSync(key, s.sealed, o).equals(Buffer.from(data)), what);
          assert.ok((await opener.api.open(key, s.sealed, { ...o, id: sha(data) })).equals(Buffer.from(data)), what);
          assert.ok(opener.api.openSync(key, s.sealed, { ...o, id: Buffer.from(sha(data), 'hex') }).equals(Buffer.from(data)), what);
        }
      }
    }
  });

  it('opens a frame without a content size (as restic writes small blobs) and an unaligned view', async () => {
    const data = text(3000, 21);
    const cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.contentSizeFlag, 0);
    const frame = Buffer.alloc(binding.compressBound(data.length));
    const n = cctx.compress2(frame, data);
    assert.equal(binding.getFrameContentSize(frame.subarray(0, n)), null);
    const sealed = new Sealer(KEY).seal(frame.subarray(0, n));
    const view = Buffer.concat([Buffer.alloc(5), sealed]).subarray(5);
    for (const impl of impls) {
      const got = await impl.api.open(keyFor(impl.api), view, { uncompressedLength: data.length, maxSize: MiB, id: sha(data) });
      assert.ok(got.equals(data), impl.name);
    }
  });
});

/** Runs open in both forms for every implementation; all must fail with the same code and reason. */
async function expectCorrupt(sealed: Uint8Array, opts: { uncompressedLength: number; maxSize: number; id?: string }, reason: string): Promise<void> {
  for (const impl of impls) {
    const key = keyFor(impl.api);
    const check = (e: unknown) => {
      const err = e as { code?: string; reason?: string; message?: string };
      assert.equal(err.code, 'ERR_CAIRN_CORRUPT', `${impl.name}: ${err.message}`);
      assert.equal(err.reason, reason, `${impl.name}: ${err.message}`);
      return true;
    };
    assert.throws(() => impl.api.openSync(key, sealed, opts), check);
    await assert.rejects(impl.api.open(key, sealed, opts), check);
    await assert.rejects(impl.api.verify(key, sealed, { ...opts, id: opts.id ?? '00'.repeat(32) }), check);
  }
}

describe('open: damaged blobs fail alike', () => {
  const data = text(100 * KiB, 31);
  const s = impls[0]!.api.sealSync(keyFor(impls[0]!.api), data, { compress: true, level: 3, iv: IV });
  const ok = { uncompressedLength: s.uncompressedLength, maxSize: 64 * MiB };

  it('too short', async () => {
    await expectCorrupt(Buffer.alloc(31), { uncompressedLength: 0, maxSize: MiB }, 'short');
  });

  it('any flipped bit (IV, ciphertext, MAC) fails the MAC', async () => {
    for (const at of [0, 15, 16, 100, s.sealed.length - 17, s.sealed.length - 1]) {
      const bad = Buffer.from(s.sealed);
      bad[at]! ^= 0x01;
      await expectCorrupt(bad, ok, 'mac');
    }
  });

  it('a raw blob claimed to be compressed is not a zstd frame', async () => {
    const raw = impls[0]!.api.sealSync(keyFor(impls[0]!.api), randomBytes(prng(5), 1000), { compress: false, level: 3, iv: IV });
    await expectCorrupt(raw.sealed, { uncompressedLength: 1000, maxSize: MiB }, 'zstd');
  });

  it('a wrong uncompressed length is a size mismatch', async () => {
    await expectCorrupt(s.sealed, { ...ok, uncompressedLength: s.uncompressedLength + 1 }, 'size');
    await expectCorrupt(s.sealed, { ...ok, uncompressedLength: s.uncompressedLength - 1 }, 'size');
  });

  it('a blob larger than maxSize is refused before decompressing', async () => {
    await expectCorrupt(s.sealed, { ...ok, maxSize: s.uncompressedLength - 1 }, 'zstd');
  });

  it('two frames, or bytes after the frame, are refused', async () => {
    const src = text(2000, 1);
    const dst = Buffer.alloc(binding.compressBound(src.length));
    const f = Buffer.from(dst.subarray(0, new binding.CCtx().compress(dst, src, 3)));
    for (const payload of [Buffer.concat([f, f]), Buffer.concat([f, Buffer.from([0])])]) {
      const sealed = new Sealer(KEY).seal(payload);
      await expectCorrupt(sealed, { uncompressedLength: 2000, maxSize: MiB }, 'zstd');
    }
  });

  it('content that does not match the ID', async () => {
    await expectCorrupt(s.sealed, { ...ok, id: sha(Buffer.from('something else')) }, 'hash');
  });

  it('a different key fails the MAC', async () => {
    for (const impl of impls) {
      const other = impl.api.sealKey(KEY.encrypt, KEY.macK, Buffer.alloc(16, 7));
      assert.throws(() => impl.api.openSync(other, s.sealed, ok), (e: { reason?: string }) => e.reason === 'mac');
    }
  });
});

describe('verify', () => {
  it('resolves to the plaintext length of every kind of blob, in either implementation', async () => {
    const extra: Array<[string, Uint8Array]> = [
      ['exactly two slices of text', text(512 * KiB, 9)],
      ['2 MiB + 1 text', text(2 * MiB + 1, 10)],
      ['5 MiB random', randomBytes(prng(11), 5 * MiB)],
    ];
    for (const [name, data] of [...inputs(), ...extra]) {
      for (const compress of [false, true]) {
        const s = impls[0]!.api.sealSync(keyFor(impls[0]!.api), data, { compress, level: 3, iv: IV });
        for (const impl of impls) {
          const o = { uncompressedLength: s.uncompressedLength, maxSize: 64 * MiB, id: sha(data) };
          assert.equal(await impl.api.verify(keyFor(impl.api), s.sealed, o), data.length, `${impl.name}: ${name}, compress ${compress}`);
        }
      }
    }
  });

  it('checks a frame whose content size is not declared, and one cut short', async () => {
    const data = text(700 * KiB, 12);
    const cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.contentSizeFlag, 0);
    const frame = Buffer.alloc(binding.compressBound(data.length));
    const n = cctx.compress2(frame, data);
    const whole = new Sealer(KEY).seal(frame.subarray(0, n));
    const cut = new Sealer(KEY).seal(frame.subarray(0, n - 3));
    for (const impl of impls) {
      const o = { uncompressedLength: data.length, maxSize: MiB, id: sha(data) };
      assert.equal(await impl.api.verify(keyFor(impl.api), whole, o), data.length, impl.name);
    }
    await expectCorrupt(cut, { uncompressedLength: data.length, maxSize: MiB, id: sha(data) }, 'zstd');
  });

  it('requires the ID', async () => {
    for (const impl of impls.filter((i) => i.name === 'native')) {
      const s = impl.api.sealSync(keyFor(impl.api), text(100, 1), { compress: false, level: 3, iv: IV });
      await assert.rejects(async () => impl.api.verify(keyFor(impl.api), s.sealed, { uncompressedLength: 0, maxSize: MiB } as never), TypeError);
    }
  });
});

describe('sha256 kernel', () => {
  it('hashes a buffer or the concatenation of parts, like node:crypto', async () => {
    const data = randomBytes(prng(8), 3 * MiB + 5);
    for (const impl of impls) {
      assert.equal(await impl.api.sha256(data), sha(data), impl.name);
      assert.equal(await impl.api.sha256([data.subarray(0, 7), data.subarray(7, MiB), data.subarray(MiB)]), sha(data), impl.name);
      assert.equal(await impl.api.sha256([]), sha(Buffer.alloc(0)), impl.name);
      assert.equal(await impl.api.sha256(new Uint8Array(0)), sha(Buffer.alloc(0)), impl.name);
    }
  });

  it('refuses more than 4096 parts and non-bytes', async () => {
    for (const impl of impls) {
      await assert.rejects(impl.api.sha256(Array.from({ length: 4097 }, () => Buffer.alloc(1))), RangeError);
      await assert.rejects(impl.api.sha256(['x' as unknown as Uint8Array]), TypeError);
    }
  });
});

describe('sha256 streams', () => {
  it('hash the concatenation of the updates, like node:crypto, in both implementations', async () => {
    const rand = prng(9);
    for (const sizes of [[], [0], [1], [MiB, 7, 0, 3 * MiB + 1], Array.from({ length: 50 }, (_, i) => (i * 7919) % 70_000)]) {
      const parts = sizes.map((n) => randomBytes(rand, n));
      for (const impl of impls) {
        const s = impl.api.sha256Stream();
        for (const p of parts) await s.update(p);
        assert.equal(s.digest(), sha(Buffer.concat(parts)), `${impl.name} ${sizes.length} parts`);
      }
    }
  });

  it('refuse use after digest and non-bytes alike', async () => {
    for (const impl of impls) {
      const s = impl.api.sha256Stream();
      await assert.rejects(s.update('x' as unknown as Uint8Array), TypeError, impl.name);
      await s.update(Buffer.from('abc'));
      assert.equal(s.digest(), sha(Buffer.from('abc')));
      assert.throws(() => s.digest(), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_STATE', impl.name);
      await assert.rejects(s.update(Buffer.from('x')), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_STATE', impl.name);
    }
  });
});

describe('blob kernels: argument checks (both throw alike)', () => {
  it('keys: sizes, and keys of the other implementation', () => {
    for (const impl of impls) {
      assert.throws(() => impl.api.sealKey(Buffer.alloc(31), KEY.macK, KEY.macR), RangeError);
      assert.throws(() => impl.api.sealKey(KEY.encrypt, 'x' as unknown as Uint8Array, KEY.macR), TypeError);
      assert.throws(() => impl.api.sealSync({} as SealKey, Buffer.alloc(1), { compress: false, level: 3 }), TypeError);
      for (const other of impls) {
        if (other === impl) continue;
        assert.throws(() => impl.api.sealSync(keyFor(other.api), Buffer.alloc(1), { compress: false, level: 3 }), TypeError);
      }
    }
  });

  it('options: level range and type, IV length, data type, lengths', async () => {
    for (const impl of impls) {
      const key = keyFor(impl.api);
      assert.throws(() => impl.api.sealSync(key, Buffer.alloc(1), { compress: true, level: 99 }), RangeError);
      assert.throws(() => impl.api.sealSync(key, Buffer.alloc(1), { compress: true, level: 2.5 }), TypeError);
      assert.throws(() => impl.api.sealSync(key, Buffer.alloc(1), { compress: true, level: 3, iv: Buffer.alloc(15) }), RangeError);
      assert.throws(() => impl.api.sealSync(key, 'data' as unknown as Uint8Array, { compress: true, level: 3 }), TypeError);
      await assert.rejects(impl.api.seal(key, Buffer.alloc(1), { compress: true, level: 99 }), RangeError);
      assert.throws(() => impl.api.openSync(key, Buffer.alloc(40), { uncompressedLength: -1, maxSize: 1 }), RangeError);
      assert.throws(() => impl.api.openSync(key, Buffer.alloc(40), { uncompressedLength: 0, maxSize: 1, id: 'abc' }), RangeError);
    }
  });
});
