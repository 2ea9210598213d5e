import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Backend, FileHandle, FileSource, SpoolFile } from '../backend/backend.js';
import { LocalBackend } from '../backend/local.js';
import { SpoolingBackend } from '../backend/spool.js';
import { openPackSink, PackMemory } from './pack-sink.js';

async function withDir(fn: (dir: string, backend: LocalBackend) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-sink-'));
  try {
    const backend = new LocalBackend(dir);
    await backend.create();
    await fn(dir, backend);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every file under data/, relative. */
function dataFiles(dir: string): string[] {
  const out: string[] = [];
  for (const sub of readdirSync(path.join(dir, 'data'))) for (const f of readdirSync(path.join(dir, 'data', sub))) out.push(`${sub}/${f}`);
  return out.sort();
}

/** The same backend without createSpool: packs go through save() in one piece. */
function withoutSpool(b: Backend): Backend {
  return {
    location: b.location,
    create: () => b.create(),
    save: (h, d) => b.save(h, d),
    load: (h, o, l, i) => b.load(h, o, l, i),
    stat: (h) => b.stat(h),
    list: (t, s) => b.list(t, s),
    remove: (h) => b.remove(h),
    close: () => b.close(),
  };
}

// pieces that straddle the 1 MiB staging buffers in every way: tiny, exact, larger than a stage
const PIECES = [17, 1 << 20, 3, (1 << 20) - 20, 5 << 20, 4096, 123_457, 2];

for (const kind of ['spooled', 'in memory'] as const) {
  test(`${kind} pack sink: the pack is stored under the SHA-256 of exactly the appended bytes`, async () => {
    await withDir(async (dir, local) => {
      const backend = kind === 'spooled' ? local : withoutSpool(local);
      const sink = await openPackSink(backend, new PackMemory(16 << 20));
      const parts = PIECES.map((n) => randomBytes(n));
      for (const p of parts) {
        sink.append(p);
        p.fill(0); // the sink copied it: the caller may reuse its buffer at once
        await sink.ready();
      }
      const trailer = randomBytes(40);
      assert.equal(sink.size, PIECES.reduce((a, b) => a + b, 0));
      const id = await sink.finish(trailer);
      const stored = readFileSync(path.join(dir, 'data', id.slice(0, 2), id));
      assert.equal(createHash('sha256').update(stored).digest('hex'), id);
      assert.equal(stored.length, sink.size);
      assert.deepEqual(stored.subarray(stored.length - 40), trailer);
      assert.deepEqual(dataFiles(dir), [`${id.slice(0, 2)}/${id}`], 'no temporary file is left');
      assert.equal(statSync(path.join(dir, 'data', id.slice(0, 2), id)).mode & 0o777, 0o400);
      const listed: string[] = [];
      for await (const f of local.list('pack')) listed.push(f.name);
      assert.deepEqual(listed, [id]);
    });
  });
}

test('spooled pack sink: content is what was appended, byte for byte', async () => {
  await withDir(async (dir, local) => {
    const sink = await openPackSink(local, new PackMemory(16 << 20));
    const parts = PIECES.map((n) => randomBytes(n));
    for (const p of parts) sink.append(p);
    const trailer = Buffer.from('trailer');
    const id = await sink.finish(trailer);
    assert.deepEqual(readFileSync(path.join(dir, 'data', id.slice(0, 2), id)), Buffer.concat([...parts, trailer]));
  });
});

test('spooled pack sink: an unfinished pack is invisible to listings and discard removes it', async () => {
  await withDir(async (dir, local) => {
    const sink = await openPackSink(local, new PackMemory(16 << 20));
    sink.append(randomBytes(3 << 20));
    await sink.ready();
    assert.equal(dataFiles(dir).length, 1, 'the pack is being written in place');
    assert.match(dataFiles(dir)[0]!, /^[0-9a-f]{2}\/spool-[0-9a-f]{16}-tmp$/);
    const listed: string[] = [];
    for await (const f of local.list('pack')) listed.push(f.name);
    assert.deepEqual(listed, [], 'a file without an ID name is not a pack');
    await sink.discard();
    assert.deepEqual(dataFiles(dir), []);
  });
});

test('spooled pack sink: a failed write fails finish() and leaves nothing under an ID', async () => {
  await withDir(async (dir, local) => {
    // a backend whose spool files fail their second write (as a full disk would)
    const failing: Backend = Object.assign(withoutSpool(local), {
      createSpool: async (type: 'pack'): Promise<SpoolFile> => {
        const real = await local.createSpool(type);
        let writes = 0;
        return {
          write: (d, pos) => (++writes === 2 ? Promise.reject(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })) : real.write(d, pos)),
          commit: (name) => real.commit(name),
          discard: () => real.discard(),
        };
      },
    });
    const sink = await openPackSink(failing, new PackMemory(16 << 20));
    sink.append(randomBytes(4 << 20));
    await assert.rejects(sink.finish(Buffer.from('x')), /no space left/);
    assert.deepEqual(dataFiles(dir), [], 'neither the pack nor its temporary file remains');
  });
});

test('pack sink on an object store: spooled to a temporary file and uploaded from it under the SHA-256 of the appended bytes', async () => {
  const spoolDir = mkdtempSync(path.join(tmpdir(), 'cairn-sink-spool-'));
  try {
    const uploads: Array<{ h: FileHandle; data: Buffer; size: number }> = [];
    const store = {
      ...withoutSpool(new LocalBackend(spoolDir)),
      saveFile: async (h: FileHandle, src: FileSource) => {
        const parts: Buffer[] = [];
        for await (const c of src.stream()) parts.push(c as Buffer);
        uploads.push({ h, data: Buffer.concat(parts), size: src.size });
      },
    };
    const sink = await openPackSink(new SpoolingBackend(store, { dir: spoolDir }), new PackMemory(16 << 20));
    const parts = PIECES.map((n) => randomBytes(n));
    for (const p of parts) {
      sink.append(p);
      await sink.ready();
    }
    const trailer = randomBytes(40);
    const id = await sink.finish(trailer);
    const whole = Buffer.concat([...parts, trailer]);
    assert.equal(uploads.length, 1);
    assert.deepEqual(uploads[0]!.h, { type: 'pack', name: id });
    assert.equal(id, createHash('sha256').update(whole).digest('hex'));
    assert.equal(uploads[0]!.size, whole.length);
    assert.ok(uploads[0]!.data.equals(whole), 'uploaded bytes differ');
    assert.deepEqual(readdirSync(spoolDir), [], 'no temporary file is left');
    // a discarded pack uploads nothing and leaves nothing
    const other = await openPackSink(new SpoolingBackend(store, { dir: spoolDir }), new PackMemory(16 << 20));
    other.append(randomBytes(3 << 20));
    await other.discard();
    assert.equal(uploads.length, 1);
    assert.deepEqual(readdirSync(spoolDir), []);
  } finally {
    rmSync(spoolDir, { recursive: true, force: true });
  }
});
