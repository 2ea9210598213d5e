import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { isCairnError } from '../core/errors.js';
import { loadFallback, native } from '../native/index.js';
import type { RabinKernel } from '../native/api.js';
import { createChunker, RESTIC_RABIN } from './chunker.js';
import { isIrreducible } from './polynomial.js';
import { splitBuffer, splitChunks } from './stream.js';
import {
  collect,
  dataWithZeroRuns,
  fixturesDir,
  fromParts,
  prng,
  rabinChunkerWith,
  readTarEntry,
  referenceRabinKernel,
  splitAt,
} from './testkit.test.js';
import type { Chunker } from './types.js';

const FIXTURE_POLY = 0x2497575ac89183n;
const MiB = 1024 * 1024;

/** Every way of getting a restic Rabin chunker: the production path and the literal reference. */
type MakeChunker = (poly: bigint, sizes?: { minSize: number; maxSize: number }) => Chunker;
const variants: Array<[string, MakeChunker]> = [
  ['createChunker (native.' + native.kind + ')', (polynomial, sizes) => createChunker({ algorithm: 'rabin', ...RESTIC_RABIN, ...sizes, polynomial })],
  ['reference kernel', (polynomial, sizes) => rabinChunkerWith(referenceRabinKernel(polynomial), { ...RESTIC_RABIN, ...sizes, polynomial })],
];
// When the addon is loaded, the TypeScript fallback must give the same results too.
const fallback = loadFallback();
if (native.kind !== 'fallback') {
  variants.push([
    'createChunker (fallback kernel)',
    (polynomial, sizes) => createChunker({ algorithm: 'rabin', ...RESTIC_RABIN, ...sizes, polynomial }, { rabin: fallback.rabin }),
  ]);
}
/** Every kernel implementation under test (the reference is the oracle). */
const kernels: Array<[string, (poly: bigint) => RabinKernel]> =
  native.kind === 'fallback' ? [['fallback', native.rabin]] : [['native', native.rabin], ['fallback', fallback.rabin]];

function ids(data: Uint8Array, lengths: number[]): string[] {
  let pos = 0;
  return lengths.map((n) => {
    const id = createHash('sha256').update(data.subarray(pos, pos + n)).digest('hex');
    pos += n;
    return id;
  });
}

test('fixture random-hex.txt: restic 0.14 boundaries and blob IDs', (t) => {
  const dir = fixturesDir();
  if (dir === undefined) {
    if (process.env.CI) assert.fail('fixtures not found (set CAIRN_FIXTURES)');
    t.skip('fixtures not found');
    return;
  }
  const data = readTarEntry(join(dir, 'restic-0.14-v2-source.tar'), 'src/big/random-hex.txt');
  assert.equal(data.length, 2400060);
  for (const [name, make] of variants) {
    const lengths = splitBuffer(data, make(FIXTURE_POLY));
    assert.deepEqual(lengths, [990352, 839941, 569767], name);
    assert.deepEqual(
      ids(data, lengths),
      [
        '977983b6b7560b02538d7e61188d8fca637e0b38fa54b2b714b25b527d3a12c3',
        '443ea123fb8a4d04c074ef70a392365529a39d444bbc0d1bc9466bdc7b16de3f',
        '25369884b3a179fd31056f7fff07aa77b3d3f8e0134e7da3df8a3fe1b704af68',
      ],
      name,
    );
  }
});

test('4 MiB + 100 zero bytes: cut at every MIN', () => {
  const data = Buffer.alloc(4 * MiB + 100);
  for (const [name, make] of variants) {
    assert.deepEqual(splitBuffer(data, make(FIXTURE_POLY)), [...Array(8).fill(524288), 100], name);
  }
});

test('20 MiB + 4 of 64-byte-periodic data: forced cuts at MAX', () => {
  // Period 64 means every window holds the same 64 bytes rotated; with no rotation whose
  // fingerprint matches, only the forced 8 MiB cuts remain (spec §10.5, §17 item 12).
  const data = Buffer.allocUnsafe(20 * MiB + 4);
  for (let i = 0; i < data.length; i++) data[i] = i % 64;
  for (const [name, make] of variants) {
    assert.deepEqual(splitBuffer(data, make(FIXTURE_POLY)), [8388608, 8388608, 4194308], name);
  }
});

test('small files: empty → no chunk, ≤ MIN → one chunk, MAX boundaries', async () => {
  for (const [name, make] of variants) {
    const c = make(FIXTURE_POLY);
    assert.deepEqual(splitBuffer(new Uint8Array(0), c), [], name);
    assert.deepEqual(await collect(splitChunks(fromParts([]), c.newFile())), [], name);
    assert.deepEqual(splitBuffer(Buffer.from('hello'), c), [5], name);
    assert.deepEqual(splitBuffer(prng(1, 524288), c), [524288], name);
    const periodic = Buffer.allocUnsafe(2 * 8388608 + 1);
    for (let i = 0; i < periodic.length; i++) periodic[i] = (i * 7) % 64;
    assert.deepEqual(splitBuffer(periodic.subarray(0, 8388608), c), [8388608], name);
    assert.deepEqual(splitBuffer(periodic.subarray(0, 8388609), c), [8388608, 1], name);
    assert.deepEqual(splitBuffer(periodic, c), [8388608, 8388608, 1], name);
  }
});

/** The first irreducible polynomial of degree d at or above x^d + 1 (odd candidates). */
function irreducibleOfDegree(d: number): bigint {
  for (let p = (1n << BigInt(d)) | 1n; ; p += 2n) if (isIrreducible(p)) return p;
}

test('every kernel agrees with the reference on findCut, including resumed scans', () => {
  const polys = [FIXTURE_POLY, 0x36eefcf51308e3n, irreducibleOfDegree(40), irreducibleOfDegree(31), 0x11bn];
  fc.assert(
    fc.property(
      fc.constantFrom(...polys),
      fc.integer({ min: 1, max: 0x7fffffff }),
      fc.integer({ min: 64, max: 3000 }),
      fc.integer({ min: 0, max: 20000 }),
      fc.integer({ min: 1, max: 60000 }),
      fc.integer({ min: 0, max: 500 }),
      fc.array(fc.integer({ min: 0, max: 70000 }), { maxLength: 4 }),
      (poly, seed, minSize, extra, length, offset, stops) => {
        const maxSize = minSize + extra;
        const buf = Buffer.concat([prng(seed ^ 1, offset), dataWithZeroRuns(seed, length, 2000)]);
        const end = buf.length;
        const ref = referenceRabinKernel(poly);
        const want = ref.findCut(buf, offset, offset, end, minSize, maxSize);
        for (const [name, make] of kernels) {
          const k = make(poly);
          assert.equal(k.findCut(buf, offset, offset, end, minSize, maxSize), want, name);
          // Scan in pieces, resuming at the previous end, like RabinSplitter does.
          let scanFrom = offset;
          let got = -1;
          for (const s of [...stops.map((x) => offset + Math.min(x, length)).sort((a, b) => a - b), end]) {
            if (s < scanFrom) continue;
            got = k.findCut(buf, offset, scanFrom, s, minSize, maxSize);
            if (got > 0) break;
            scanFrom = s;
          }
          assert.equal(got, want, name);
        }
      },
    ),
    { seed: 42, numRuns: 300 },
  );
});

test('streamed lengths equal one-shot lengths, chunks reassemble, sizes within bounds', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 0x7fffffff }),
      fc.integer({ min: 0, max: 300000 }),
      fc.integer({ min: 64, max: 4096 }),
      fc.integer({ min: 0, max: 30000 }),
      fc.array(fc.integer({ min: 1, max: 70000 }), { minLength: 1, maxLength: 8 }),
      fc.boolean(),
      async (seed, length, minSize, extra, sizes, reference) => {
        const maxSize = minSize + extra;
        const data = dataWithZeroRuns(seed, length, 3000);
        const [, make] = variants[reference ? 1 : 0];
        const chunker = make(FIXTURE_POLY, { minSize, maxSize });
        const oneShot = splitBuffer(data, chunker);
        const chunks = await collect(splitChunks(fromParts(splitAt(data, sizes)), chunker.newFile()));
        assert.deepEqual(
          chunks.map((c) => c.length),
          oneShot,
        );
        assert.ok(Buffer.concat(chunks).equals(data));
        chunks.forEach((c, i) => {
          assert.ok(c.length <= maxSize);
          if (i < chunks.length - 1) assert.ok(c.length >= minSize);
        });
      },
    ),
    { seed: 4242, numRuns: 150 },
  );
});

test('restic sizes on a few MiB of random data, streamed in odd read sizes', async () => {
  const data = prng(99, 12 * MiB + 12345);
  const chunker = createChunker({ algorithm: 'rabin', ...RESTIC_RABIN, polynomial: FIXTURE_POLY });
  const oneShot = splitBuffer(data, chunker);
  assert.deepEqual(oneShot, splitBuffer(data, variants[1][1](FIXTURE_POLY)));
  assert.ok(oneShot.length >= 4, `expected several content cuts, got ${oneShot}`);
  for (const sizes of [[65536], [1000003, 77], [8 * MiB + 1], [3 * MiB, 5 * MiB, 100]]) {
    const chunks = await collect(splitChunks(fromParts(splitAt(data, sizes)), chunker.newFile()));
    assert.deepEqual(
      chunks.map((c) => c.length),
      oneShot,
      `reads ${sizes}`,
    );
    assert.ok(Buffer.concat(chunks).equals(data));
  }
});

test('the splitter only depends on the bytes from start (caller may move them between calls)', () => {
  const data = dataWithZeroRuns(7, 400000, 5000);
  const chunker = createChunker({ algorithm: 'rabin', ...RESTIC_RABIN, minSize: 1000, maxSize: 20000, polynomial: FIXTURE_POLY });
  const oneShot = splitBuffer(data, chunker);
  const rnd = prng(8, 4096);
  let r = 0;
  const splitter = chunker.newFile();
  const got: number[] = [];
  let pos = 0;
  let avail = 0;
  while (pos < data.length) {
    avail = Math.min(data.length, Math.max(avail, pos) + (rnd[r++ % rnd.length] << 4));
    // Copy the undecided region to a fresh buffer at a random offset, like a compacting caller.
    const pad = rnd[r++ % rnd.length];
    const moved = Buffer.concat([prng(r, pad), data.subarray(pos, avail)]);
    const n = splitter.next(moved, pad, moved.length, avail === data.length);
    if (n > 0) {
      got.push(n);
      pos += n;
    }
  }
  assert.deepEqual(got, oneShot);
});

test('createChunker validates rabin parameters', () => {
  const ok = { algorithm: 'rabin' as const, ...RESTIC_RABIN, polynomial: FIXTURE_POLY };
  const bad: Array<Record<string, unknown>> = [
    { polynomial: undefined },
    { polynomial: 0x2497575ac89182n }, // reducible
    { polynomial: (1n << 54n) | 0b11n },
    { polynomial: 0b111n }, // irreducible, but degree 2 < 8
    { avgSize: 2 * MiB },
    { minSize: 63 },
    { minSize: 9 * MiB },
    { maxSize: 0 },
    { minSize: 1.5 },
  ];
  for (const b of bad) {
    assert.throws(
      () => createChunker({ ...ok, ...b } as never),
      (e: unknown) => isCairnError(e, 'INVALID_ARGUMENT'),
      JSON.stringify(b, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v)),
    );
  }
  assert.equal(createChunker(ok).params.polynomial, FIXTURE_POLY);
});
