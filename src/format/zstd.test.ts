import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { isCairnError } from '../core/errors.js';
import * as fx from './testing/fixtures.js';
import { zstdCompress, zstdCompressBound, zstdCompressInto, zstdDecompress } from './zstd.js';

/** Frame header descriptor bit 2 = content checksum flag. */
const hasChecksum = (frame: Buffer) => (frame[4] & 0x04) !== 0;

test('compress: one standard frame without checksum, round-trips', () => {
  for (const data of [Buffer.alloc(0), Buffer.from('x'), Buffer.from('hello '.repeat(1000)), randomBytes(300_000)]) {
    const z = zstdCompress(data);
    assert.equal(z.readUInt32LE(0), 0xfd2fb528);
    assert.equal(hasChecksum(z), false);
    assert.deepEqual(zstdDecompress(z), data);
  }
  assert.ok(zstdCompress(Buffer.alloc(100_000)).length < 100);
  assert.deepEqual(zstdDecompress(zstdCompress(Buffer.from('abc'), 19)), Buffer.from('abc'));
  assert.throws(() => zstdCompress(Buffer.from('a'), 99), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});

test('zstdCompressInto: same frame into a caller-owned buffer', () => {
  const data = Buffer.from('into a scratch buffer '.repeat(200));
  const dst = Buffer.alloc(zstdCompressBound(data.length));
  const n = zstdCompressInto(data, dst);
  assert.deepEqual(dst.subarray(0, n), zstdCompress(data));
  assert.equal(hasChecksum(dst), false);
  assert.deepEqual(zstdDecompress(dst.subarray(0, n)), data);
  assert.throws(() => zstdCompressInto(randomBytes(1000), Buffer.alloc(10)), (e) => isCairnError(e, 'INTERNAL'));
  // the shared context survives the failure
  assert.deepEqual(zstdDecompress(zstdCompress(data)), data);
});

test('decompress: restic\'s frames from the v2 fixture (incl. frames without content size)', () => {
  const f = fx.openFixture('restic-0.14-v2');
  let noSize = 0;
  for (const b of fx.readAllBlobs(f)) {
    assert.equal(fx.sha256Hex(b.plain), b.id);
    assert.equal(b.plain.length, b.uncompressedLength);
    // the raw frame: decrypt again without decompressing
    const pack = fx.readRepoFile(f, `data/${b.packId.slice(0, 2)}/${b.packId}`);
    const frame = fx.decrypt(pack.subarray(b.offset, b.offset + b.length), f.key.encrypt);
    if ((frame[4] & 0xc0) === 0 && (frame[4] & 0x20) === 0) noSize++;
  }
  assert.ok(noSize > 0, 'fixture has frames without content size');
});

test('decompress: frames made by the zstd CLI (with checksum) decode', (t) => {
  let cli: Buffer;
  try {
    cli = execFileSync('zstd', ['-q', '-c', '-3'], { input: Buffer.from('from the zstd cli\n'.repeat(50)) });
  } catch {
    t.skip('zstd CLI not installed');
    return;
  }
  assert.equal(hasChecksum(cli), true);
  assert.equal(zstdDecompress(cli).toString(), 'from the zstd cli\n'.repeat(50));
});

/** Hand-made frame of raw blocks without content size (like spec §4's last-resort writer, streamed). */
function rawFrame(data: Buffer, declareSize: boolean): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd])];
  if (declareSize) {
    const h = Buffer.alloc(9);
    h[0] = 0xe0; // FCS 8 bytes, single segment
    h.writeBigUInt64LE(BigInt(data.length), 1);
    parts.push(h);
  } else {
    parts.push(Buffer.from([0x00, 0x58])); // no FCS, window descriptor: 2^(10+11) = 2 MiB
  }
  for (let off = 0; off < data.length || off === 0; off += 128 * 1024) {
    const chunk = data.subarray(off, off + 128 * 1024);
    const last = off + 128 * 1024 >= data.length ? 1 : 0;
    const bh = Buffer.alloc(3);
    bh.writeUIntLE(last | (chunk.length << 3), 0, 3);
    parts.push(bh, chunk);
    if (last) break;
  }
  return Buffer.concat(parts);
}

test('decompress: hand-made raw-block frames, with and without content size', () => {
  const data = randomBytes(300_000);
  assert.deepEqual(zstdDecompress(rawFrame(data, true)), data);
  assert.deepEqual(zstdDecompress(rawFrame(data, false)), data);
  assert.deepEqual(zstdDecompress(rawFrame(Buffer.alloc(0), false)), Buffer.alloc(0));
});

test('decompress: size limit, before allocating and while streaming', () => {
  const big = Buffer.alloc(5_000_000, 1);
  const z = zstdCompress(big);
  assert.ok(z.length < 1000);
  assert.throws(() => zstdDecompress(z, 4_999_999), (e) => isCairnError(e, 'CORRUPT') && /allowed/.test((e as Error).message));
  assert.equal(zstdDecompress(z, 5_000_000).length, 5_000_000);
  // no content size in the header: the bound is enforced incrementally
  const streamed = rawFrame(Buffer.alloc(1_000_000, 2), false);
  assert.throws(() => zstdDecompress(streamed, 500_000), (e) => isCairnError(e, 'CORRUPT'));
  assert.equal(zstdDecompress(streamed, 1_000_000).length, 1_000_000);
});

test('decompress: not exactly one valid frame → CORRUPT', () => {
  const z = zstdCompress(Buffer.from('some data some data some data'));
  const bad: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from('{"json":1}'),
    z.subarray(0, z.length - 1), // truncated
    Buffer.concat([z, z]), // two frames
    Buffer.concat([z, Buffer.from([0])]), // trailing garbage
    Buffer.from([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]), // skippable frame
    rawFrame(Buffer.from('abc'), false).subarray(0, 8), // truncated stream
  ];
  const flipped = Buffer.from(zstdCompress(Buffer.from('abcdefgh'.repeat(100))));
  flipped[flipped.length - 3] ^= 0xff;
  bad.push(flipped);
  for (const b of bad) assert.throws(() => zstdDecompress(b), (e) => isCairnError(e, 'CORRUPT'), b.toString('hex').slice(0, 40));
  // the shared context still works after errors
  assert.equal(zstdDecompress(z).toString(), 'some data some data some data');
});

test('property: zstdDecompress(zstdCompress(x)) == x', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 5000 }), fc.integer({ min: 1, max: 9 }), (arr, level) => {
      const data = Buffer.from(arr);
      assert.deepEqual(zstdDecompress(zstdCompress(data, level), data.length), data);
    }),
    { seed: 42, numRuns: 300 },
  );
});

test('speed: compress 1 MiB text / random', (t) => {
  let text = '';
  for (let i = 0; text.length < 1 << 20; i++) text += fx.sha256Hex(Buffer.from(String(i))) + '\n';
  const inputs = { text: Buffer.from(text.slice(0, 1 << 20)), random: randomBytes(1 << 20) };
  for (const [name, data] of Object.entries(inputs)) {
    zstdCompress(data);
    const rounds = 10;
    let t0 = performance.now();
    let z: Buffer = Buffer.alloc(0);
    for (let i = 0; i < rounds; i++) z = zstdCompress(data);
    const c = (performance.now() - t0) / rounds;
    t0 = performance.now();
    for (let i = 0; i < rounds; i++) zstdDecompress(z);
    const d = (performance.now() - t0) / rounds;
    t.diagnostic(`1 MiB ${name}: compress ${c.toFixed(1)} ms (${(1 / (c / 1000)).toFixed(0)} MiB/s, ratio ${(z.length / data.length).toFixed(3)}), decompress ${d.toFixed(1)} ms`);
  }
});
