/**
 * The compact master index against a plain Map-of-objects model: random packs (with blobs stored
 * in several packs, as data and tree, exact duplicates, sizes beyond 24 bits), queries interleaved
 * with adds across many merges (small merge threshold).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { encodeIndex, type IndexPack } from '../format/index.js';
import { decodeIndexCompact } from '../format/index-scan.js';
import { MasterIndex, type BlobLocation, type BlobType } from './master-index.js';

function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

function id(n: number, salt = ''): string {
  return createHash('sha256').update(`${salt}${n}`).digest('hex');
}

type Blob = { id: string; type: BlobType; offset: number; length: number; uncompressedLength?: number };

/** The reference: what the original Map-based index returned. */
class Model {
  readonly byKey = new Map<string, BlobLocation[]>();
  readonly packs: Array<{ packId: string; type: BlobType; blobs: Blob[] }> = [];
  readonly packIndex = new Map<string, number>();
  size = 0;

  addPack(packId: string, blobs: Blob[]): void {
    let p = this.packIndex.get(packId);
    if (p === undefined) {
      p = this.packs.push({ packId, type: 'data', blobs: [] }) - 1;
      this.packIndex.set(packId, p);
    }
    const pack = this.packs[p]!;
    for (const b of blobs) {
      const key = b.type + b.id;
      const list = this.byKey.get(key) ?? [];
      if (list.some((l) => l.packId === packId && l.offset === b.offset && l.length === b.length)) continue;
      const loc: BlobLocation = { packId, type: b.type, offset: b.offset, length: b.length };
      if (b.uncompressedLength) loc.uncompressedLength = b.uncompressedLength;
      list.push(loc);
      this.byKey.set(key, list);
      pack.type = b.type;
      pack.blobs.push(b);
      this.size++;
    }
  }
}

function sortLocs(l: BlobLocation[]): BlobLocation[] {
  return [...l].sort((a, b) => (a.packId === b.packId ? a.offset - b.offset : a.packId < b.packId ? -1 : 1));
}

describe('master index (compact)', () => {
  for (const minMerge of [1, 7, 300, 1 << 20]) {
    it(`agrees with a Map model through adds, duplicates and merges (merge threshold ${minMerge})`, () => {
      const rand = prng(minMerge * 7919 + 1);
      const idx = new MasterIndex({ minMerge });
      const model = new Model();
      const known: Array<{ id: string; type: BlobType }> = [];
      let packNo = 0;
      for (let round = 0; round < 400; round++) {
        const reuse = rand() < 0.15 && model.packs.length > 0;
        const packId = reuse ? model.packs[Math.floor(rand() * model.packs.length)]!.packId : id(packNo++, 'pack');
        const blobs: Blob[] = [];
        // a pack listed again continues after what it already holds (offsets stay unique per pack)
        const prior = reuse ? model.packs[model.packIndex.get(packId)!]!.blobs : [];
        let offset = prior.reduce((m, b) => Math.max(m, b.offset + b.length), 0);
        const n = 1 + Math.floor(rand() * 12);
        for (let i = 0; i < n; i++) {
          const r = rand();
          let b: Blob;
          if (r < 0.15 && known.length > 0) {
            // the same blob again (another pack, or a duplicate entry)
            const k = known[Math.floor(rand() * known.length)]!;
            b = { id: k.id, type: rand() < 0.2 ? (k.type === 'data' ? 'tree' : 'data') : k.type, offset, length: 100 + Math.floor(rand() * 1000) };
          } else {
            b = { id: id(Math.floor(rand() * 1e9)), type: rand() < 0.3 ? 'tree' : 'data', offset, length: 33 + Math.floor(rand() * 9_000_000) };
            known.push({ id: b.id, type: b.type });
          }
          if (rand() < 0.5) b.uncompressedLength = 1 + Math.floor(rand() * 8_000_000);
          if (rand() < 0.02) b.length = 20_000_000 + Math.floor(rand() * 1e6); // beyond 24 bits
          if (rand() < 0.02) b.uncompressedLength = 40_000_000;
          blobs.push(b);
          offset += b.length;
        }
        if (reuse && rand() < 0.5) {
          // an exact duplicate of an entry already in that pack
          const prev = model.packs[model.packIndex.get(packId)!]!.blobs;
          if (prev.length) blobs.push({ ...prev[Math.floor(rand() * prev.length)]! });
        }
        idx.addPack(packId, blobs);
        model.addPack(packId, blobs);
        if (round % 37 === 0 || round === 399) {
          assert.equal(idx.size, model.size, 'size');
          assert.equal(idx.packCount(), model.packs.length, 'packCount');
          for (const k of known.slice(-50)) {
            for (const t of ['data', 'tree'] as const) {
              const want = model.byKey.get(t + k.id) ?? [];
              assert.equal(idx.has(t, k.id), want.length > 0, `has ${t} ${k.id}`);
              assert.deepEqual(sortLocs(idx.lookup(t, k.id)), sortLocs(want), `lookup ${t} ${k.id}`);
              const w = want[0];
              if (w) {
                // blobSize: the first location (by pack order); any location of the same blob has the same plaintext size in real indexes
                const sizes = new Set(want.map((l) => l.uncompressedLength || l.length - 32));
                assert.ok(sizes.has(idx.blobSize(t, k.id)!), 'blobSize');
              } else {
                assert.equal(idx.blobSize(t, k.id), undefined);
              }
            }
          }
        }
      }
      assert.equal(idx.has('data', id(-1)), false);
      assert.equal(idx.has('data', 'not an id'), false);
      assert.deepEqual(idx.lookup('tree', 'ABC'), []);
      for (const p of model.packs) assert.ok(idx.hasPack(p.packId));
      assert.equal(idx.hasPack(id(-5, 'pack')), false);

      // packs(): every pack in order, its blobs by offset
      const packs = [...idx.packs()];
      assert.deepEqual(
        packs.map((p) => p.packId),
        model.packs.map((p) => p.packId),
      );
      for (let i = 0; i < packs.length; i++) {
        const m = model.packs[i]!;
        assert.equal(packs[i]!.type, m.type, 'pack type = type of its last added blob');
        const want = [...m.blobs].sort((a, b) => a.offset - b.offset).map((b) => b.id);
        assert.deepEqual(packs[i]!.blobIds, want, `blobs of pack ${i}`);
      }
      // entries(): the same set as the model
      const got = [...idx.entries()].map((e) => `${e.type}${e.id}@${e.packId}:${e.offset}:${e.length}:${e.uncompressedLength ?? 0}`).sort();
      const want: string[] = [];
      for (const [key, locs] of model.byKey) for (const l of locs) want.push(`${key}@${l.packId}:${l.offset}:${l.length}:${l.uncompressedLength ?? 0}`);
      assert.deepEqual(got, want.sort());
      // packExtent for every pack and type
      for (const m of model.packs) {
        for (const t of ['data', 'tree'] as const) {
          const locs = [...model.byKey.values()].flat().filter((l) => l.packId === m.packId && l.type === t);
          const ext = idx.packExtent(m.packId, t);
          if (locs.length === 0) assert.equal(ext, undefined);
          else {
            assert.deepEqual(ext, {
              start: Math.min(...locs.map((l) => l.offset)),
              end: Math.max(...locs.map((l) => l.offset + l.length)),
              blobs: locs.length,
            });
          }
        }
      }
    });
  }

  it('packExtent stays current after more packs are added', () => {
    const idx = new MasterIndex({ minMerge: 2 });
    idx.addPack(id(1, 'p'), [{ id: id(1), type: 'tree', offset: 0, length: 100 }]);
    assert.deepEqual(idx.packExtent(id(1, 'p'), 'tree'), { start: 0, end: 100, blobs: 1 });
    idx.addPack(id(1, 'p'), [{ id: id(2), type: 'tree', offset: 100, length: 50 }]);
    idx.addPack(id(2, 'p'), [{ id: id(3), type: 'data', offset: 0, length: 7 }]);
    assert.deepEqual(idx.packExtent(id(1, 'p'), 'tree'), { start: 0, end: 150, blobs: 2 });
    assert.deepEqual(idx.packExtent(id(2, 'p'), 'data'), { start: 0, end: 7, blobs: 1 });
    assert.equal(idx.packExtent(id(2, 'p'), 'tree'), undefined);
    assert.equal(idx.packExtent(id(9, 'p'), 'tree'), undefined);
  });

  for (const minMerge of [1, 50, 1 << 20]) {
    it(`addBatch (decoded index files) builds the same index as addPack (merge threshold ${minMerge})`, () => {
      const rand = prng(minMerge + 17);
      const byBatch = new MasterIndex({ minMerge });
      const byPack = new MasterIndex({ minMerge });
      const packIds: string[] = [];
      const ids: string[] = [];
      const listed = new Map<string, IndexPack['blobs']>();
      for (let file = 0; file < 30; file++) {
        const packs: IndexPack[] = [];
        const inFile = new Set<string>();
        for (let p = 0; p < 1 + Math.floor(rand() * 6); p++) {
          // packs listed by an earlier index file again (with other or the same blobs), or new ones
          const again = rand() < 0.2 && packIds.length > 0;
          const packId = again ? packIds[Math.floor(rand() * packIds.length)]! : id(packIds.length, 'bp');
          if (inFile.has(packId)) continue;
          inFile.add(packId);
          if (!again) packIds.push(packId);
          const blobs: IndexPack['blobs'] = [];
          let offset = again ? 0 : Math.floor(rand() * 100);
          for (let b = 0; b < Math.floor(rand() * 40); b++) {
            if (ids.length === 0 || rand() >= 0.2) ids.push(id(ids.length, 'bb'));
            // mostly a new blob, sometimes one indexed before (another location, or a duplicate)
            const blobId = ids[ids.length - 1 - Math.floor(rand() * Math.min(ids.length, 3))]!;
            const blob: IndexPack['blobs'][number] = { id: blobId, type: rand() < 0.3 ? 'tree' : 'data', offset, length: 40 + Math.floor(rand() * 30_000_000) };
            if (rand() < 0.5) blob.uncompressedLength = 1 + Math.floor(rand() * 20_000_000);
            blobs.push(blob);
            // offsets mostly increase; sometimes not (then each blob is checked for duplicates)
            offset = rand() < 0.1 ? Math.floor(offset / 2) : offset + blob.length;
          }
          // an exact duplicate of an entry an earlier file listed for this pack
          const before = listed.get(packId) ?? [];
          if (again && before.length > 0 && rand() < 0.5) blobs.push({ ...before[Math.floor(rand() * before.length)]! });
          listed.set(packId, [...before, ...blobs]);
          packs.push({ id: packId, blobs });
        }
        byBatch.addBatch(decodeIndexCompact(encodeIndex({ packs }), 2));
        for (const p of packs) byPack.addPack(p.id, p.blobs);
      }
      const entries = (idx: MasterIndex) => [...idx.entries()].map((e) => `${e.type}${e.id}@${e.packId}:${e.offset}:${e.length}:${e.uncompressedLength ?? 0}`).sort();
      assert.deepEqual(entries(byBatch), entries(byPack));
      assert.equal(byBatch.size, byPack.size);
      assert.deepEqual([...byBatch.packs()], [...byPack.packs()]);
      for (const blobId of ids) {
        for (const t of ['data', 'tree'] as const) {
          assert.deepEqual(sortLocs(byBatch.lookup(t, blobId)), sortLocs(byPack.lookup(t, blobId)));
          assert.equal(byBatch.blobSize(t, blobId), byPack.blobSize(t, blobId));
        }
      }
      for (const p of packIds) for (const t of ['data', 'tree'] as const) assert.deepEqual(byBatch.packExtent(p, t), byPack.packExtent(p, t));
    });
  }

  it('rejects IDs that are not 64 lower-case hex digits', () => {
    const idx = new MasterIndex();
    assert.throws(() => idx.addPack('nope', []), /invalid pack ID/);
    assert.throws(() => idx.addPack(id(1), [{ id: id(2).toUpperCase(), type: 'data', offset: 0, length: 40 }]), /invalid blob ID/);
    assert.throws(() => idx.addPack(id(1), [{ id: id(2), type: 'data', offset: -1, length: 40 }]), /invalid offset/);
  });
});
