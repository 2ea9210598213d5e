import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { encodeIndex, type IndexFile } from '../format/index.js';
import { decodeIndexCompact } from '../format/index-scan.js';
import { isCairnError } from '../core/errors.js';
import { CompactIndex } from './compact-index.js';

const rid = () => randomBytes(32).toString('hex');

function sample(packs: number, perPack: number, compressed: boolean): IndexFile {
  return {
    supersedes: [rid()],
    packs: Array.from({ length: packs }, () => {
      let offset = 0;
      return {
        id: rid(),
        blobs: Array.from({ length: perPack }, (_, i) => {
          const length = 100 + i;
          const b = { id: rid(), type: i % 3 === 0 ? ('tree' as const) : ('data' as const), offset, length, uncompressedLength: compressed && i % 2 ? 500 : undefined };
          offset += length;
          return b;
        }),
      };
    }),
  };
}

function flatten(idx: IndexFile) {
  return idx.packs.flatMap((p) => p.blobs.map((b) => [p.id, b.id, b.type, b.offset, b.length, b.uncompressedLength ?? 0].join(':')));
}

function flattenBatch(json: Buffer) {
  const b = decodeIndexCompact(json, 2);
  const out: string[] = [];
  for (let p = 0; p < b.packIds.length; p++) {
    for (let i = b.packStart[p]!; i < b.packStart[p + 1]!; i++) {
      out.push([b.packIds[p], b.ids.toString('hex', i * 32, i * 32 + 32), b.types[i] ? 'tree' : 'data', b.offsets[i], b.lengths[i], b.ulens[i]].join(':'));
    }
  }
  return { out, batch: b };
}

test('compact index decoding: canonical fast path and generic fallback agree', () => {
  const idx = sample(7, 50, true);
  const json = encodeIndex(idx);
  const fast = flattenBatch(json);
  assert.deepEqual(fast.out, flatten(idx));
  assert.deepEqual(fast.batch.supersedes, idx.supersedes);
  // the same document pretty-printed (not canonical) takes the general decoder
  const pretty = Buffer.from(JSON.stringify(JSON.parse(json.toString()), null, 2));
  assert.deepEqual(flattenBatch(pretty).out, flatten(idx));
  // the ancient array format
  const old = Buffer.from(JSON.stringify(JSON.parse(json.toString()).packs));
  const oldBatch = decodeIndexCompact(old, 2);
  assert.equal(oldBatch.oldFormat, true);
  assert.equal(oldBatch.count, 350);
  // empty index
  assert.equal(decodeIndexCompact(Buffer.from('{"packs":[]}\n'), 2).count, 0);
  // v1 rejects compressed entries on both paths
  assert.throws(() => decodeIndexCompact(json, 1), (e) => isCairnError(e, 'CORRUPT'));
  assert.throws(() => decodeIndexCompact(pretty, 1), (e) => isCairnError(e, 'CORRUPT'));
  // garbage
  assert.throws(() => decodeIndexCompact(Buffer.from('{"packs":[{"id":"zz"'), 2), (e) => isCairnError(e, 'CORRUPT'));
});

test('compact index: lookups, several locations per blob, exact duplicates dropped, sizes per pack', () => {
  const idx = sample(20, 200, true);
  const ci = new CompactIndex();
  ci.addBatch(decodeIndexCompact(encodeIndex(idx), 2), rid());
  // the first pack again in a second index file: duplicates are dropped, the pack is flagged
  const again = { packs: [idx.packs[0]!] };
  ci.addBatch(decodeIndexCompact(encodeIndex(again), 2), rid());
  assert.equal(ci.entryCount, 4000);
  assert.equal(ci.handleCount, 4000);
  assert.equal(ci.packsInSeveralIndexes().length, 1);
  for (const p of idx.packs) {
    for (const b of p.blobs) {
      const h = ci.find(b.type, b.id);
      assert.ok(h >= 0);
      assert.equal(ci.handleId(h), b.id);
      assert.equal(ci.find(b.type === 'data' ? 'tree' : 'data', b.id), -1);
      const loc = ci.location(ci.firstEntry(h));
      assert.deepEqual(loc, { packId: p.id, type: b.type, offset: b.offset, length: b.length, ...(b.uncompressedLength ? { uncompressedLength: b.uncompressedLength } : {}) });
    }
  }
  // the same blob stored in another pack: a second location
  const b0 = idx.packs[3]!.blobs[1]!;
  ci.addPack(rid(), [{ ...b0, offset: 0 }]);
  assert.equal(ci.entriesOf(ci.find(b0.type, b0.id)).length, 2);
  const sizes = ci.packSizes();
  const p0 = ci.packNumber(idx.packs[0]!.id)!;
  const expected = idx.packs[0]!.blobs.reduce((s, b) => s + b.length + (b.uncompressedLength ? 41 : 37), 36);
  assert.equal(sizes[p0], expected);
  assert.equal(ci.isMixedPack(p0), true);
  const { start, order } = ci.byPack();
  assert.equal(start[p0 + 1]! - start[p0]!, 200);
  assert.ok([...order.subarray(start[p0]!, start[p0 + 1]!)].every((e) => ci.entryPack(e) === p0));
  assert.equal(ci.find('data', 'not an id'), -1);
});

test('IndexJsonWriter writes the same bytes as encodeIndex', async () => {
  const { IndexJsonWriter } = await import('../format/index-scan.js');
  const idx = sample(5, 30, true);
  for (const sup of [[], idx.supersedes!]) {
    const w = new IndexJsonWriter(sup);
    for (const p of idx.packs) {
      w.beginPack(p.id);
      for (const b of p.blobs) w.blob(Buffer.from(b.id, 'hex'), 0, b.type === 'tree' ? 1 : 0, b.offset, b.length, b.uncompressedLength ?? 0);
    }
    assert.deepEqual(w.finish(), encodeIndex({ supersedes: sup, packs: idx.packs }));
  }
  assert.deepEqual(new IndexJsonWriter([]).finish(), encodeIndex({ packs: [] }));
});

// ---- the frozen layout: rows, overflow entries, late handles ---------------------------------

type Loc = { pack: string; type: 'data' | 'tree'; offset: number; length: number; ulen: number };
type Blob = { id: string; type: 'data' | 'tree'; offset: number; length: number; uncompressedLength?: number };

/** What the index must answer: per (type, ID) its locations in load order, exact duplicates dropped. */
class Model {
  readonly handles = new Map<string, Loc[]>();
  add(pack: string, blobs: Blob[]): void {
    for (const b of blobs) {
      const key = `${b.type}:${b.id}`;
      const locs = this.handles.get(key) ?? [];
      if (!this.handles.has(key)) this.handles.set(key, locs);
      if (locs.some((l) => l.pack === pack && l.offset === b.offset && l.length === b.length)) continue;
      locs.push({ pack, type: b.type, offset: b.offset, length: b.length, ulen: b.uncompressedLength ?? 0 });
    }
  }
}

function locOf(ci: CompactIndex, e: number): Loc {
  const l = ci.location(e);
  assert.equal(ci.entryPack(e), ci.packNumber(l.packId));
  assert.equal(ci.entryOffset(e), l.offset);
  assert.equal(ci.entryLength(e), l.length);
  assert.equal(ci.entryUlen(e), l.uncompressedLength ?? 0);
  assert.equal(ci.entryHeaderSize(e), l.uncompressedLength ? 41 : 37);
  return { pack: l.packId, type: l.type, offset: l.offset, length: l.length, ulen: l.uncompressedLength ?? 0 };
}

/** Every query of the index against the model. */
function assertMatches(ci: CompactIndex, m: Model): void {
  assert.equal(ci.handleCount, m.handles.size);
  let entries = 0;
  const seenHandles = new Set<number>();
  const sizes = new Map<string, number>();
  for (const [key, locs] of m.handles) {
    const [type, id] = key.split(':') as ['data' | 'tree', string];
    const h = ci.find(type, id);
    assert.ok(h >= 0 && h < ci.handleCount, `${key} found`);
    assert.ok(!seenHandles.has(h));
    seenHandles.add(h);
    assert.equal(ci.find(type, id.toUpperCase()), h);
    assert.equal(ci.findBytes(type === 'tree' ? 1 : 0, Buffer.concat([Buffer.alloc(3), Buffer.from(id, 'hex')]), 3), h);
    assert.equal(ci.handleId(h), id);
    assert.equal(ci.handleIdBytes(h).toString('hex'), id);
    assert.equal(ci.handleType(h), type === 'tree' ? 1 : 0);
    const es = ci.entriesOf(h);
    assert.deepEqual(es.map((e) => locOf(ci, e)), locs);
    assert.equal(ci.firstEntry(h), es[0]);
    for (const e of es) assert.equal(ci.entryHandle(e), h);
    assert.equal(ci.plainSize(h), locs[0]!.ulen || locs[0]!.length - 32);
    assert.equal(ci.blobSize(type, id), locs[0]!.ulen || locs[0]!.length - 32);
    entries += locs.length;
    for (const l of locs) sizes.set(l.pack, (sizes.get(l.pack) ?? 36) + l.length + (l.ulen ? 41 : 37));
  }
  assert.equal(ci.entryCount, entries);
  // every entry number belongs to exactly one handle's chain
  const reached = new Uint8Array(ci.entryCount);
  for (let h = 0; h < ci.handleCount; h++) for (let e = ci.firstEntry(h); e >= 0; e = ci.nextEntry(e)) reached[e]!++;
  assert.ok(reached.every((x) => x === 1));
  const packSizes = ci.packSizes();
  for (const [pack, size] of sizes) assert.equal(packSizes[ci.packNumber(pack)!], size);
  // byPack: each pack's entries, by offset (ties by entry number)
  const { start, order } = ci.byPack();
  assert.equal(start[ci.packCount], ci.entryCount);
  assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: ci.entryCount }, (_, e) => e));
  for (let p = 0; p < ci.packCount; p++) {
    const es = [...order.subarray(start[p]!, start[p + 1]!)];
    assert.ok(es.every((e) => ci.entryPack(e) === p));
    for (let i = 1; i < es.length; i++) {
      const [a, b] = [es[i - 1]!, es[i]!];
      assert.ok(ci.entryOffset(a) < ci.entryOffset(b) || (ci.entryOffset(a) === ci.entryOffset(b) && a < b), `pack ${p} by offset`);
    }
  }
}

/** A deterministic generator (tests must not depend on luck). */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

test('compact index: matches a naive model with duplicates across packs and index files, before and after later additions', () => {
  const r = rng(7);
  const ids = Array.from({ length: 3000 }, () => rid());
  // IDs that share their first 4, 8 or 16 bytes (one shard, bucket and k0) with another one
  for (const keep of [4, 8, 16, 31]) ids.push(ids[0]!.slice(0, keep * 2) + rid().slice(keep * 2));
  const m = new Model();
  const ci = new CompactIndex();
  const packs: string[] = [];
  const makePack = (n: number): { id: string; blobs: Blob[] } => {
    let offset = 0;
    const blobs: Blob[] = [];
    for (let i = 0; i < n; i++) {
      const length = 40 + r(5000);
      blobs.push({ id: ids[r(ids.length)]!, type: r(4) === 0 ? 'tree' : 'data', offset, length, uncompressedLength: r(2) ? length * 3 : undefined });
      offset += length;
    }
    return { id: rid(), blobs };
  };
  for (let f = 0; f < 12; f++) {
    const file = { packs: Array.from({ length: 1 + r(20) }, () => makePack(1 + r(40))) };
    // some packs again in a later file (the same entries: exact duplicates)
    if (f > 0 && r(2)) file.packs.push({ id: packs[r(packs.length)]!, blobs: [] });
    for (const p of file.packs) {
      if (p.blobs.length === 0) continue;
      packs.push(p.id);
      m.add(p.id, p.blobs);
    }
    const json = encodeIndex({ packs: file.packs.filter((p) => p.blobs.length > 0) });
    ci.addBatch(decodeIndexCompact(json, 2), rid());
  }
  // a pack listed twice with the same blobs: dropped as exact duplicates
  const again = makePack(30);
  m.add(again.id, again.blobs);
  ci.addPack(again.id, again.blobs);
  ci.addPack(again.id, again.blobs);
  const counts = [...m.handles.values()].map((locs) => locs.length);
  assert.ok(counts.filter((c) => c >= 3).length > 10, 'the data has blobs stored in three packs and more');
  assertMatches(ci, m);

  // after the first query numbers are fixed: record them, add more, and check nothing moved
  const before = { handles: ci.handleCount, entries: ci.entryCount, ids: [] as string[], locs: [] as Loc[] };
  for (let h = 0; h < before.handles; h++) before.ids.push(ci.handleId(h));
  for (let e = 0; e < before.entries; e++) before.locs.push(locOf(ci, e));
  for (let k = 0; k < 5; k++) {
    const p = makePack(25);
    // known blobs in a new pack, new blobs, and an exact duplicate of a known entry
    p.blobs.push({ id: rid(), type: 'tree', offset: 1 << 30, length: 99 });
    p.blobs.push({ id: rid(), type: 'data', offset: (1 << 30) + 99, length: 20 << 20, uncompressedLength: 30 << 20 });
    m.add(p.id, p.blobs);
    ci.addPack(p.id, p.blobs);
    const old = before.locs[r(before.locs.length)]!;
    const h = ci.find(old.type, before.ids[ci.entryHandle(before.locs.indexOf(old))]!);
    const n = ci.entryCount;
    ci.addPack(old.pack, [{ id: ci.handleId(h), type: old.type, offset: old.offset, length: old.length }]);
    assert.equal(ci.entryCount, n, 'exact duplicate dropped after freezing');
  }
  assertMatches(ci, m);
  assert.ok(ci.handleCount > before.handles && ci.entryCount > before.entries);
  for (let h = 0; h < before.handles; h++) assert.equal(ci.handleId(h), before.ids[h]);
  for (let e = 0; e < before.entries; e++) assert.deepEqual(locOf(ci, e), before.locs[e]);
});

test('compact index: tree and data blobs with the same ID are two handles', () => {
  const ci = new CompactIndex();
  const id = rid();
  const [p1, p2] = [rid(), rid()];
  ci.addPack(p1, [{ id, type: 'tree', offset: 0, length: 500, uncompressedLength: 900 }]);
  ci.addPack(p2, [{ id, type: 'data', offset: 10, length: 300 }]);
  const t = ci.find('tree', id);
  const d = ci.find('data', id);
  assert.ok(t >= 0 && d >= 0 && t !== d);
  assert.equal(ci.handleCount, 2);
  assert.equal(ci.handleType(t), 1);
  assert.equal(ci.handleType(d), 0);
  assert.deepEqual(ci.location(ci.firstEntry(t)), { packId: p1, type: 'tree', offset: 0, length: 500, uncompressedLength: 900 });
  assert.deepEqual(ci.location(ci.firstEntry(d)), { packId: p2, type: 'data', offset: 10, length: 300 });
  assert.equal(ci.nextEntry(ci.firstEntry(t)), -1);
  assert.equal(ci.packType(ci.packNumber(p1)!), 1);
  assert.equal(ci.packType(ci.packNumber(p2)!), 0);
  assert.equal(ci.isMixedPack(ci.packNumber(p1)!), false);
});

test('compact index: sizes of 16 MiB and more, as rows and as later entries', () => {
  const ci = new CompactIndex();
  const pack = rid();
  const cases: Blob[] = [
    { id: rid(), type: 'data', offset: 0, length: 0xfffffe, uncompressedLength: 0xfffffe }, // the largest packed
    { id: rid(), type: 'data', offset: 1, length: 0xffffff },
    { id: rid(), type: 'data', offset: 2, length: 100, uncompressedLength: 0xffffff },
    { id: rid(), type: 'data', offset: 3, length: 0xffffffff, uncompressedLength: 0xffffffff },
    { id: rid(), type: 'tree', offset: 0xffffffff, length: 64 << 20 },
    { id: rid(), type: 'data', offset: 4, length: 40, uncompressedLength: 20 << 20 },
  ];
  const m = new Model();
  m.add(pack, cases);
  ci.addPack(pack, cases);
  assertMatches(ci, m);
  // the same blobs in another pack after freezing: overflow entries keep full sizes too
  const later = rid();
  const moved = cases.map((b, i) => ({ ...b, offset: i * 7 }));
  m.add(later, moved);
  ci.addPack(later, moved);
  assertMatches(ci, m);
  assert.equal(ci.blobSize('data', cases[3]!.id), 0xffffffff);
  assert.equal(ci.blobSize('tree', cases[4]!.id), (64 << 20) - 32);
  assert.throws(() => ci.addPack(rid(), [{ id: rid(), type: 'data', offset: 2 ** 32, length: 1 }]), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => ci.addPack(rid(), [{ id: rid(), type: 'data', offset: 0, length: -1 }]), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});

test('compact index: lookups of missing and malformed IDs', () => {
  const ci = new CompactIndex();
  assert.equal(ci.find('data', rid()), -1, 'empty index');
  assert.equal(ci.handleCount, 0);
  assert.equal(ci.entryCount, 0);
  assert.deepEqual(ci.byPack().order.length, 0);
  const ci2 = new CompactIndex();
  const blobs = Array.from({ length: 500 }, (_, i) => ({ id: rid(), type: 'data' as const, offset: i * 100, length: 100 }));
  const pack = rid();
  ci2.addPack(pack, blobs);
  for (const b of blobs.slice(0, 50)) {
    // neighbours in sort order: the same ID with a different last byte, or a different first byte
    const last = (parseInt(b.id.slice(62), 16) + 1) % 256;
    assert.equal(ci2.find('data', b.id.slice(0, 62) + last.toString(16).padStart(2, '0')), -1);
    const first = (parseInt(b.id.slice(0, 2), 16) + 1) % 256;
    assert.equal(ci2.find('data', first.toString(16).padStart(2, '0') + b.id.slice(2)), -1);
    assert.equal(ci2.find('tree', b.id), -1);
    assert.equal(ci2.has('tree', b.id), false);
    assert.equal(ci2.blobSize('tree', b.id), undefined);
    assert.equal(ci2.findBytes(1, Buffer.from(b.id, 'hex')), -1);
  }
  for (const bad of ['', 'xyz', blobs[0]!.id.slice(1), blobs[0]!.id + '0', 'g' + blobs[0]!.id.slice(1), 'İ' + blobs[0]!.id.slice(1)]) {
    assert.equal(ci2.find('data', bad), -1, JSON.stringify(bad));
    assert.equal(ci2.packNumber(bad), undefined);
  }
  assert.equal(ci2.packNumber(rid()), undefined);
  assert.equal(ci2.packNumber(pack), 0);
  assert.equal(ci2.packNumber(pack.toUpperCase()), 0);
  assert.equal(ci2.packId(0), pack);
  assert.throws(() => ci2.addPack('not a pack', []), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => ci2.addPack(rid(), [{ id: 'nope', type: 'data', offset: 0, length: 1 }]), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});

test('compact index: byPack orders each pack by offset, also packs listed out of order and large ones', () => {
  const ci = new CompactIndex();
  const m = new Model();
  const big = rid();
  // 3000 blobs listed in reverse, some sharing an offset (a damaged index): ties by entry number
  const blobs: Blob[] = Array.from({ length: 3000 }, (_, i) => ({ id: rid(), type: 'data', offset: (3000 - i) * 10 - (i % 7 === 0 ? 10 : 0), length: 10 }));
  m.add(big, blobs);
  ci.addPack(big, blobs);
  const small = rid();
  const few: Blob[] = [5, 1, 3, 2, 4].map((k) => ({ id: rid(), type: 'tree', offset: k * 100, length: 100 }));
  m.add(small, few);
  ci.addPack(small, few);
  assertMatches(ci, m);
  const { start, order } = ci.byPack();
  const p = ci.packNumber(small)!;
  assert.deepEqual([...order.subarray(start[p]!, start[p + 1]!)].map((e) => ci.entryOffset(e)), [100, 200, 300, 400, 500]);
});

test('compact index: packs listed by several index files, also after addPack', () => {
  const ci = new CompactIndex();
  const [i1, i2, i3] = [rid(), rid(), rid()];
  const idx = sample(3, 4, false);
  ci.addBatch(decodeIndexCompact(encodeIndex(idx), 2), i1);
  // a pack written by prune (no index file yet), then listed by an index file, then by another
  const own = rid();
  ci.addPack(own, [{ id: rid(), type: 'data', offset: 0, length: 50 }]);
  const ownIndex = { packs: [{ id: own, blobs: [{ id: rid(), type: 'data' as const, offset: 50, length: 50 }] }] };
  ci.addBatch(decodeIndexCompact(encodeIndex(ownIndex), 2), i2);
  assert.deepEqual(ci.packsInSeveralIndexes(), []);
  ci.addBatch(decodeIndexCompact(encodeIndex({ packs: [idx.packs[1]!, ownIndex.packs[0]!] }), 2), i3);
  const multi = ci.packsInSeveralIndexes().map((x) => ({ pack: ci.packId(x.pack), indexes: x.indexes })).sort((a, b) => (a.pack < b.pack ? -1 : 1));
  const want = [{ pack: idx.packs[1]!.id, indexes: [i1, i3] }, { pack: own, indexes: [i2, i3] }].sort((a, b) => (a.pack < b.pack ? -1 : 1));
  assert.deepEqual(multi, want);
  assert.deepEqual(ci.indexIds, [i1, i2, i3]);
  assert.equal(ci.entryCount, 14);
});

test('compact index: pack numbers beyond 16 bits', () => {
  const ci = new CompactIndex();
  const m = new Model();
  const shared = rid();
  const packs = 70000;
  let last: Blob | undefined;
  for (let p = 0; p < packs; p++) {
    const pack = rid();
    // every 10000th pack holds the same blob: a handle with several locations
    const blobs: Blob[] = p % 10000 === 0 ? [{ id: shared, type: 'data', offset: 0, length: 100 }] : [{ id: rid(), type: p % 3 ? 'data' : 'tree', offset: 0, length: 100 + (p % 50) }];
    m.add(pack, blobs);
    ci.addPack(pack, blobs);
    last = blobs[0];
  }
  assert.equal(ci.packCount, packs);
  assertMatches(ci, m);
  assert.equal(ci.entryPack(ci.firstEntry(ci.find(last!.type, last!.id))), packs - 1);
  assert.equal(ci.entriesOf(ci.find('data', shared)).length, 7);
});
