/**
 * One contract suite for the kernels: every test runs against the TypeScript fallback and the
 * N-API addon (when built) and demands identical bytes/offsets, plus agreement with independent
 * references (RFC 8439 vectors, a BigInt Poly1305, the closed-form Rabin fingerprint, and chunk
 * boundaries verified against restic 0.14 — spec §17 item 12).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { RabinKernel } from './api.js';
import {
  type Impl,
  implementations,
  isCutReference,
  poly1305Reference,
  prng,
  randomBytes,
  readFixtureSourceFile,
} from './testkit.test.js';

const { impls, missing } = implementations();
const RESTIC_POLY = 0x2497575ac89183n; // the fixtures' chunker_polynomial
const MIN = 524288;
const MAX = 8388608;
const MiB = 1 << 20;

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

const IETF_TEXT = Buffer.from(
  'Any submission to the IETF intended by the Contributor for publication as all or part of an IETF ' +
    'Internet-Draft or RFC and any statement made within the context of an IETF activity is considered ' +
    'an "IETF Contribution". Such statements include oral statements in IETF sessions, as well as ' +
    'written and electronic communications made at any time or place, which are addressed to',
);
const JABBERWOCKY = Buffer.from(
  "'Twas brillig, and the slithy toves\nDid gyre and gimble in the wabe:\n" +
    'All mimsy were the borogoves,\nAnd the mome raths outgrabe.',
);

/** RFC 8439 §2.5.2 and Appendix A.3 (#1–#11): [name, key, message, tag]. */
const POLY1305_VECTORS: Array<[string, Buffer, Buffer, Buffer]> = [
  [
    '§2.5.2',
    hex('85d6be7857556d337f4452fe42d506a8 0103808afb0db2fd4abff6af4149f51b'),
    Buffer.from('Cryptographic Forum Research Group'),
    hex('a8061dc1305136c6c22b8baf0c0127a9'),
  ],
  ['A.3 #1', Buffer.alloc(32), Buffer.alloc(64), Buffer.alloc(16)],
  ['A.3 #2', hex('00000000000000000000000000000000 36e5f6b5c5e06070f0efca96227a863e'), IETF_TEXT, hex('36e5f6b5c5e06070f0efca96227a863e')],
  ['A.3 #3', hex('36e5f6b5c5e06070f0efca96227a863e 00000000000000000000000000000000'), IETF_TEXT, hex('f3477e7cd95417af89a6b8794c310cf0')],
  ['A.3 #4', hex('1c9240a5eb55d38af333888604f6b5f0 473917c1402b80099dca5cbc207075c0'), JABBERWOCKY, hex('4541669a7eaaee61e708dc7cbcc5eb62')],
  ['A.3 #5', hex('02' + '00'.repeat(31)), hex('ff'.repeat(16)), hex('03' + '00'.repeat(15))],
  ['A.3 #6', hex('02' + '00'.repeat(15) + 'ff'.repeat(16)), hex('02' + '00'.repeat(15)), hex('03' + '00'.repeat(15))],
  [
    'A.3 #7',
    hex('01' + '00'.repeat(31)),
    hex('ffffffffffffffffffffffffffffffff f0ffffffffffffffffffffffffffffff 11000000000000000000000000000000'),
    hex('05' + '00'.repeat(15)),
  ],
  [
    'A.3 #8',
    hex('01' + '00'.repeat(31)),
    hex('ffffffffffffffffffffffffffffffff fbfefefefefefefefefefefefefefefe 01010101010101010101010101010101'),
    Buffer.alloc(16),
  ],
  ['A.3 #9', hex('02' + '00'.repeat(31)), hex('fdffffffffffffffffffffffffffffff'), hex('faffffffffffffffffffffffffffffff')],
  [
    'A.3 #10',
    hex('01000000000000000400000000000000 00000000000000000000000000000000'),
    hex(
      'e33594d7505e43b90000000000000000 3394d7505e4379cd0100000000000000 ' +
        '00000000000000000000000000000000 01000000000000000000000000000000',
    ),
    hex('14000000000000005500000000000000'),
  ],
  [
    'A.3 #11',
    hex('01000000000000000400000000000000 00000000000000000000000000000000'),
    hex('e33594d7505e43b90000000000000000 3394d7505e4379cd0100000000000000 00000000000000000000000000000000'),
    hex('13000000000000000000000000000000'),
  ],
];

/** Runs fn for every implementation and asserts they all return the same bytes; returns them. */
function sameBytes(fn: (impl: Impl) => Uint8Array, what: string): Buffer {
  const results = impls.map((impl) => ({ name: impl.name, out: Buffer.from(fn(impl)) }));
  for (const r of results.slice(1)) {
    assert.equal(r.out.toString('hex'), results[0].out.toString('hex'), `${what}: ${r.name} differs from ${results[0].name}`);
  }
  return results[0].out;
}

describe('native kernels: implementations under test', () => {
  it('lists the implementations', (t) => {
    if (missing !== undefined) t.diagnostic(`only the fallback is tested: ${missing}`);
    assert.ok(impls.length >= 1);
    assert.equal(impls[0].api.kind, 'fallback');
    if (impls.length > 1) assert.equal(impls[1].api.kind, 'native');
  });
});

describe('poly1305', () => {
  for (const [name, key, msg, tag] of POLY1305_VECTORS) {
    it(`RFC 8439 ${name}`, () => {
      for (const impl of impls) {
        assert.equal(impl.api.poly1305(key, msg).toString('hex'), tag.toString('hex'), impl.name);
      }
      assert.equal(poly1305Reference(key, msg).toString('hex'), tag.toString('hex'), 'reference');
    });
  }

  it('matches the BigInt reference on seeded random inputs of many lengths', () => {
    const rand = prng(1305);
    const lengths = [0, 1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 79, 80, 127, 128, 129, 255, 256, 257, 1000, 1023, 1024, 1025, 4096, 65539];
    for (const len of lengths) {
      for (let round = 0; round < 4; round++) {
        const key = randomBytes(rand, 32);
        const msg = randomBytes(rand, len);
        // Extremes exercise the carries and the final reduction.
        if (round === 1) key.fill(0xff);
        if (round === 2) msg.fill(0xff);
        if (round === 3) {
          key.fill(0xff);
          msg.fill(0xff);
        }
        const out = sameBytes((impl) => impl.api.poly1305(key, msg), `len ${len} round ${round}`);
        assert.equal(out.toString('hex'), poly1305Reference(key, msg).toString('hex'), `len ${len} round ${round}`);
      }
    }
  });

  it('1 MiB + 3 bytes, unaligned view, plain Uint8Array', () => {
    const rand = prng(7);
    const backing = randomBytes(rand, MiB + 3 + 5);
    const msg = new Uint8Array(backing.buffer, backing.byteOffset + 5, MiB + 3); // not a Buffer, odd offset
    const key = new Uint8Array(randomBytes(rand, 32));
    const out = sameBytes((impl) => impl.api.poly1305(key, msg), '1 MiB + 3');
    assert.equal(out.toString('hex'), poly1305Reference(key, msg).toString('hex'));
    // The key is clamped inside and not modified.
    const keyCopy = Buffer.from(key);
    for (const impl of impls) impl.api.poly1305(key, msg);
    assert.deepEqual(Buffer.from(key), keyCopy);
  });

  it('the addon gives the same tags with its own code for every length (CAIRN_POLY1305_OPENSSL=0)', (t) => {
    const addon = impls.find((i) => i.api.kind === 'native');
    if (addon === undefined) return t.skip('addon not built');
    // Long messages normally go to OpenSSL's Poly1305 (native/src/poly1305.c): run the addon's own
    // code for them in a child process and hold both to the reference.
    assert.match(addon.api.blobKernelsInfo, /Poly1305 (from OpenSSL|own)/);
    const lengths = [1023, 1024, 1025, 4096, 65539, MiB + 3];
    const rand = prng(2305);
    const cases = lengths.map((len) => ({ key: randomBytes(rand, 32), msg: randomBytes(rand, len) }));
    const script = `
      const { loadAddon } = await import(${JSON.stringify(new URL('./index.js', import.meta.url).href)});
      const native = loadAddon();
      const cases = JSON.parse((await import('node:fs')).readFileSync(0, 'utf8'));
      const tags = cases.map((c) => native.poly1305(Buffer.from(c.key, 'hex'), Buffer.from(c.msg, 'hex')).toString('hex'));
      process.stdout.write(JSON.stringify({ info: native.blobKernelsInfo, tags }));`;
    const arg = JSON.stringify(cases.map((c) => ({ key: c.key.toString('hex'), msg: c.msg.toString('hex') })));
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      input: arg,
      env: { ...process.env, CAIRN_POLY1305_OPENSSL: '0' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { info: string; tags: string[] };
    assert.match(out.info, /Poly1305 own/);
    cases.forEach((c, k) => {
      const want = poly1305Reference(c.key, c.msg).toString('hex');
      assert.equal(out.tags[k], want, `own code, len ${lengths[k]}`);
      assert.equal(addon.api.poly1305(c.key, c.msg).toString('hex'), want, `default, len ${lengths[k]}`);
    });
  });

  it('property: identical tags for random keys and messages (fast-check, fixed seed)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 600 }), (key, msg) => {
        const out = sameBytes((impl) => impl.api.poly1305(key, msg), 'property');
        assert.equal(out.toString('hex'), poly1305Reference(key, msg).toString('hex'));
      }),
      { seed: 20240601, numRuns: 300 },
    );
  });

  it('returns a fresh 16-byte Buffer and rejects bad keys alike', () => {
    for (const impl of impls) {
      const a = impl.api.poly1305(Buffer.alloc(32, 1), Buffer.from('x'));
      const b = impl.api.poly1305(Buffer.alloc(32, 1), Buffer.from('x'));
      assert.ok(Buffer.isBuffer(a), impl.name);
      assert.equal(a.length, 16);
      assert.notEqual(a, b);
      assert.throws(() => impl.api.poly1305(Buffer.alloc(31), Buffer.alloc(1)), RangeError, impl.name);
      assert.throws(() => impl.api.poly1305(Buffer.alloc(33), Buffer.alloc(1)), RangeError, impl.name);
    }
  });
});

/** Full chunking with findCut plus the caller's forced cuts (maxSize, end of data). */
function chunkLengths(k: RabinKernel, data: Uint8Array, min = MIN, max = MAX): number[] {
  const out: number[] = [];
  for (let s = 0; s < data.length; ) {
    let n = k.findCut(data, s, s, data.length, min, max);
    if (n < 0) n = Math.min(max, data.length - s);
    out.push(n);
    s += n;
  }
  return out;
}

/**
 * Same chunking, but the data arrives in pieces: findCut is called again after every append with
 * scanFrom = the previous end, as a streaming chunker does.
 */
function chunkLengthsIncremental(k: RabinKernel, data: Uint8Array, steps: number[], min = MIN, max = MAX): number[] {
  const out: number[] = [];
  let s = 0;
  let end = 0;
  let scanFrom = 0;
  let step = 0;
  while (s < data.length) {
    if (end < data.length && (end - s < max || end === s)) {
      end = Math.min(data.length, end + steps[step++ % steps.length]);
    }
    const n = k.findCut(data, s, Math.max(s, scanFrom), end, min, max);
    if (n >= 0) {
      out.push(n);
      s += n;
      scanFrom = s;
      continue;
    }
    if (end - s >= max) {
      out.push(max);
      s += max;
      scanFrom = s;
    } else if (end === data.length) {
      out.push(end - s);
      s = end;
    } else {
      scanFrom = end;
    }
  }
  return out;
}

function eachKernel(polynomial: bigint, fn: (k: RabinKernel, impl: Impl) => void): void {
  for (const impl of impls) fn(impl.api.rabin(polynomial), impl);
}

describe('rabin: boundaries verified against restic 0.14', () => {
  it('fixture src/big/random-hex.txt under 0x2497575ac89183: 990352, 839941, 569767', (t) => {
    const data = readFixtureSourceFile('src/big/random-hex.txt');
    if (data === undefined) {
      if (process.env.CI) assert.fail('fixtures not found (set CAIRN_FIXTURES)');
      t.skip('fixtures not found (set CAIRN_FIXTURES)');
      return;
    }
    eachKernel(RESTIC_POLY, (k, impl) => {
      assert.deepEqual(chunkLengths(k, data), [990352, 839941, 569767], impl.name);
      assert.deepEqual(chunkLengthsIncremental(k, data, [65536, 1000, 333333]), [990352, 839941, 569767], impl.name);
    });
  });

  it('4 MiB + 100 zero bytes: a cut every 524288', () => {
    const data = Buffer.alloc(4 * MiB + 100);
    const want = [...Array<number>(8).fill(524288), 100];
    eachKernel(RESTIC_POLY, (k, impl) => {
      assert.deepEqual(chunkLengths(k, data), want, impl.name);
      assert.equal(k.findCut(data, 0, 0, data.length, MIN, MAX), MIN, impl.name);
    });
  });

  it('20 MiB + 4 of 64-byte-periodic data: no content cut, forced at 8 MiB', () => {
    const data = Buffer.alloc(20 * MiB + 4);
    for (let i = 0; i < data.length; i++) data[i] = ((i % 64) * 37 + 11) & 0xff;
    eachKernel(RESTIC_POLY, (k, impl) => {
      assert.equal(k.findCut(data, 0, 0, data.length, MIN, MAX), -1, impl.name);
      assert.deepEqual(chunkLengths(k, data), [8388608, 8388608, 4194308], impl.name);
    });
  });
});

describe('rabin: equivalence on seeded random data', () => {
  const rand = prng(53);
  const data = randomBytes(rand, 12 * MiB);
  // Planted all-zero windows make cuts at chosen places (fp of 64 zero bytes is 0).
  const planted = Buffer.from(data);
  for (const end of [700_000, 720_001, 1_100_000, 1_100_064, 3_000_000, 3_065_536, 3_065_537, 9_999_999]) {
    planted.fill(0, end - 64, end);
  }
  const polys = [RESTIC_POLY, 0x36eefcf51308e3n, 0x289e08e5790585n];

  for (const [label, buf] of [
    ['random', data],
    ['random with planted cuts', planted],
  ] as const) {
    it(`${label}: same chunk lists, every cut checked against the closed-form fingerprint`, () => {
      for (const poly of polys) {
        for (const [min, max] of [
          [MIN, MAX],
          [64, 1 << 30],
          [4096, 65536],
          [100, 2 * MiB],
        ]) {
          const lists = impls.map((impl) => chunkLengths(impl.api.rabin(poly), buf, min, max));
          for (let i = 1; i < lists.length; i++) assert.deepEqual(lists[i], lists[0], `poly ${poly.toString(16)} min ${min}`);
          // Content-defined cuts (not forced, not the tail) must be cuts by definition.
          let s = 0;
          let checked = 0;
          for (const n of lists[0]) {
            if (n !== max && s + n !== buf.length && checked < 40) {
              assert.ok(isCutReference(buf, s, n, poly), `cut at ${s}+${n} (poly ${poly.toString(16)})`);
              checked++;
            }
            s += n;
          }
          assert.equal(s, buf.length);
        }
      }
    });
  }

  it('no missed cut: sampled positions before each found cut are not cuts', () => {
    const r = prng(99);
    for (const impl of impls) {
      const k = impl.api.rabin(RESTIC_POLY);
      const n = k.findCut(data, 1000, 1000, data.length, 64, 1 << 30);
      assert.ok(n > 64, impl.name);
      for (let i = 0; i < 300; i++) {
        const m = 64 + (r() % (n - 64));
        assert.equal(isCutReference(data, 1000, m, RESTIC_POLY), false, `${impl.name}: ${m} < ${n} is a cut`);
      }
    }
  });

  it('incremental calls with growing end give the same cuts as one call', () => {
    for (const buf of [data.subarray(0, 4 * MiB), planted.subarray(0, 4 * MiB)]) {
      const want = chunkLengths(impls[0].api.rabin(RESTIC_POLY), buf, 4096, 1 << 30);
      for (const steps of [[997], [63, 64, 65], [4096], [65536, 1, 100_000], [3 * MiB]]) {
        for (const impl of impls) {
          const k = impl.api.rabin(RESTIC_POLY);
          assert.deepEqual(chunkLengthsIncremental(k, buf, steps, 4096, 1 << 30), want, `${impl.name} steps ${steps.join(',')}`);
        }
      }
    }
  });

  it('chunkStart, scanFrom and end at arbitrary places (fast-check, fixed seed)', () => {
    const kernels = impls.map((impl) => impl.api.rabin(RESTIC_POLY));
    const len = 3 * MiB;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: len }),
        fc.integer({ min: 0, max: 400_000 }),
        fc.integer({ min: 0, max: 2 * MiB }),
        fc.integer({ min: 64, max: 300_000 }),
        fc.integer({ min: 0, max: 3 * MiB }),
        fc.boolean(),
        (chunkStart, scanOff, endOff, minSize, maxSize, usePlanted) => {
          const buf = usePlanted ? planted : data;
          const scanFrom = Math.min(len, chunkStart + scanOff);
          const end = Math.min(len, scanFrom + endOff);
          const results = kernels.map((k) => k.findCut(buf, chunkStart, scanFrom, end, minSize, maxSize));
          for (const r of results) assert.equal(r, results[0]);
          const lo = Math.max(minSize, scanFrom - chunkStart);
          const hi = Math.min(maxSize, end - chunkStart);
          if (results[0] >= 0) {
            assert.ok(results[0] >= lo && results[0] <= hi);
            assert.ok(isCutReference(buf, chunkStart, results[0], RESTIC_POLY));
          }
        },
      ),
      { seed: 42, numRuns: 150 },
    );
  });

  it('planted cuts around the addon’s lane boundaries (lo + multiples of 16384)', () => {
    // The addon scans rounds of 4 lanes × 16384 candidates; plant cuts so that a later lane hits
    // first in time while an earlier lane has a later (but smaller-offset) cut, and vice versa.
    const base = randomBytes(prng(5), 600_000);
    const lo = 64;
    const L = 16384;
    const offsets = [
      [lo + L + 10, lo + 100],
      [lo + 3 * L + 1, lo + L - 1],
      [lo + 2 * L, lo + L - 1],
      [lo + 4 * L + 5, lo + 5 * L + 4],
      [lo + L - 1, lo + L],
      [lo + 4 * L - 1, lo + 4 * L],
      [lo + 3 * L, lo + 3 * L + 1],
      [lo, 70_000],
    ];
    for (const pair of offsets) {
      const buf = Buffer.from(base);
      for (const n of pair) buf.fill(0, n - 64, n);
      const want = Math.min(...pair);
      for (const impl of impls) {
        const k = impl.api.rabin(RESTIC_POLY);
        const got = k.findCut(buf, 0, 0, buf.length, lo, 1 << 30);
        // A natural cut may come first; it must then be the same in both and be a real cut.
        assert.ok(got >= lo && got <= want, `${impl.name} ${pair.join('/')}: ${got}`);
        if (got !== want) assert.ok(isCutReference(buf, 0, got, RESTIC_POLY));
        assert.equal(got, impls[0].api.rabin(RESTIC_POLY).findCut(buf, 0, 0, buf.length, lo, 1 << 30));
      }
    }
  });

  it('polynomials of lower degree (the straddling top-byte path)', () => {
    const small = randomBytes(prng(8), 2 * MiB);
    for (const poly of [0x100000000000bn /* deg 44 */, 0xc96c5795d7870f42n >> 25n /* deg 38 */, 0x80000057n /* deg 31 */, 0x11dn /* deg 8 */]) {
      const lists = impls.map((impl) => chunkLengths(impl.api.rabin(poly), small, 64, 1 << 30));
      for (let i = 1; i < lists.length; i++) assert.deepEqual(lists[i], lists[0], `poly ${poly.toString(16)}`);
      let s = 0;
      for (const n of lists[0].slice(0, 20)) {
        if (s + n < small.length) assert.ok(isCutReference(small, s, n, poly), `poly ${poly.toString(16)} cut ${s}+${n}`);
        s += n;
      }
    }
  });

  it('edge ranges: empty, minSize beyond end, maxSize below minSize', () => {
    for (const impl of impls) {
      const k = impl.api.rabin(RESTIC_POLY);
      const z = Buffer.alloc(1000);
      assert.equal(k.findCut(z, 0, 0, 0, 64, 100), -1);
      assert.equal(k.findCut(z, 0, 0, 63, 64, 100), -1);
      assert.equal(k.findCut(z, 0, 0, 64, 64, 100), 64);
      assert.equal(k.findCut(z, 10, 10, 1000, 64, 63), -1);
      assert.equal(k.findCut(z, 10, 500, 1000, 64, 1000), 490);
      assert.equal(k.findCut(z, 936, 936, 1000, 64, 64), 64);
      assert.equal(k.findCut(z, 937, 937, 1000, 64, 64), -1);
    }
  });
});

describe('rabin: argument checks (both throw alike)', () => {
  it('rejects bad polynomials', () => {
    for (const impl of impls) {
      assert.throws(() => impl.api.rabin(0n), RangeError, impl.name);
      assert.throws(() => impl.api.rabin(0xffn), RangeError, impl.name); // degree 7
      assert.throws(() => impl.api.rabin(1n << 54n), RangeError, impl.name);
      assert.throws(() => impl.api.rabin(-5n), RangeError, impl.name);
      assert.throws(() => impl.api.rabin(5 as unknown as bigint), TypeError, impl.name);
    }
  });

  it('rejects out-of-range offsets and non-integers', () => {
    const buf = Buffer.alloc(100);
    for (const impl of impls) {
      const k = impl.api.rabin(RESTIC_POLY);
      assert.throws(() => k.findCut(buf, 0, 0, 101, 64, 100), RangeError, impl.name);
      assert.throws(() => k.findCut(buf, 10, 5, 100, 64, 100), RangeError, impl.name);
      assert.throws(() => k.findCut(buf, 0, 50, 40, 64, 100), RangeError, impl.name);
      assert.throws(() => k.findCut(buf, -1, 0, 100, 64, 100), RangeError, impl.name);
      assert.throws(() => k.findCut(buf, 0, 0, 100, 63, 100), RangeError, impl.name);
      assert.throws(() => k.findCut(buf, 0.5, 1, 100, 64, 100), TypeError, impl.name);
      assert.throws(() => k.findCut([] as unknown as Uint8Array, 0, 0, 0, 64, 100), TypeError, impl.name);
    }
  });
});
