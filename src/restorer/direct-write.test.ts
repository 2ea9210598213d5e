import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { native } from '../native/index.js';
import { DIRECT_ALIGN, DirectWriter } from './direct-write.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function scratch(base = os.tmpdir()): string {
  const d = fs.mkdtempSync(path.join(base, 'cairn-direct-'));
  dirs.push(d);
  return d;
}

/** Writes `pieces` (offset, length) of `content` with the writer, in a shuffled order, concurrently. */
async function writePieces(w: DirectWriter, file: string, content: Buffer, pieces: Array<[number, number]>): Promise<{ direct: boolean }> {
  const h = await openFile(file, 'w');
  const d = await w.reopen(h);
  try {
    const alloc = w.allocator() ?? Buffer.allocUnsafeSlow;
    await Promise.all(
      pieces.map(async ([off, len]) => {
        const phase = DirectWriter.phase(off);
        const base = alloc(len + phase + DIRECT_ALIGN);
        const view = base.subarray(phase, phase + len);
        content.copy(view, 0, off, off + len);
        await w.write(h, d, view, off, base);
      }),
    );
  } finally {
    await d?.close();
    await h.close();
  }
  return { direct: d !== undefined };
}

/** Cuts [0, size) into pieces of varied, unaligned sizes, shuffled. */
function piecesOf(size: number, seed: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let x = seed;
  for (let off = 0; off < size; ) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const len = Math.min(size - off, 1 + (x % (300 * 1024)));
    out.push([off, len]);
    off += len;
  }
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('DirectWriter', () => {
  it('unaligned pieces in any order give the exact bytes (direct middles, buffered ends)', async (t) => {
    const dir = scratch();
    const w = new DirectWriter(true, dir);
    if (!w.enabled) t.diagnostic(`direct writes not available here (addon: ${native.kind}, file system of ${os.tmpdir()}); buffered path only`);
    const content = randomBytes(5 * 1024 * 1024 + 1234);
    const file = path.join(dir, 'f');
    const r = await writePieces(w, file, content, piecesOf(content.length, 7));
    if (w.enabled && !r.direct) t.diagnostic('the temp file system refused O_DIRECT');
    assert.ok(fs.readFileSync(file).equals(content));
  });

  it('a view at the wrong phase, or of another buffer, is written through the page cache, correctly', async () => {
    const dir = scratch();
    const w = new DirectWriter(true, dir);
    const content = randomBytes(1024 * 1024);
    const file = path.join(dir, 'g');
    const h = await openFile(file, 'w');
    const d = await w.reopen(h);
    try {
      const alloc = w.allocator() ?? Buffer.allocUnsafeSlow;
      const base = alloc(content.length + 2 * DIRECT_ALIGN);
      const view = base.subarray(100, 100 + content.length); // phase 100, file offset 4096·k + 7
      content.copy(view);
      await w.write(h, d, view, 7, base);
      await w.write(h, d, content, 7 + content.length, Buffer.alloc(16));
    } finally {
      await d?.close();
      await h.close();
    }
    const got = fs.readFileSync(file);
    assert.equal(got.length, 7 + 2 * content.length);
    assert.ok(got.subarray(7, 7 + content.length).equals(content));
    assert.ok(got.subarray(7 + content.length).equals(content));
  });

  it('memory the device will not take directly: written through the page cache, and direct writes stop', async (t) => {
    const dir = scratch();
    const w = new DirectWriter(true, dir);
    if (!w.enabled) return t.skip('direct writes not available here');
    const content = randomBytes(1024 * 1024);
    const file = path.join(dir, 'h');
    const h = await openFile(file, 'w');
    const d = await w.reopen(h);
    if (d === undefined) {
      await h.close();
      return t.skip('the temp file system refused O_DIRECT');
    }
    try {
      // claims to be aligned, is 8 bytes off: a device that needs more than 8-byte alignment refuses (EINVAL)
      const real = w.allocator()!(content.length + 2 * DIRECT_ALIGN);
      const fake = real.subarray(8);
      const view = fake.subarray(0, content.length);
      content.copy(view);
      await w.write(h, d, view, 0, fake);
    } finally {
      await d.close();
      await h.close();
    }
    if (w.enabled) t.diagnostic('this device accepts 8-byte aligned direct I/O: only the bytes are checked');
    assert.ok(fs.readFileSync(file).equals(content));
  });

  it('only on local block file systems (ext4, XFS): not on tmpfs', (t) => {
    if (!fs.existsSync('/dev/shm')) return t.skip('no /dev/shm here');
    assert.equal(new DirectWriter(true, '/dev/shm').enabled, false);
    assert.equal(new DirectWriter(true, path.join(scratch(), 'missing')).enabled, false, 'a target that cannot be inspected: page cache');
  });

  it('disabled: no direct descriptor, plain buffers', async () => {
    const w = new DirectWriter(false, os.tmpdir());
    assert.equal(w.enabled, false);
    assert.equal(w.allocator(), undefined);
    const content = randomBytes(2 * 1024 * 1024);
    const file = path.join(scratch(), 'i');
    const r = await writePieces(w, file, content, piecesOf(content.length, 3));
    assert.equal(r.direct, false);
    assert.ok(fs.readFileSync(file).equals(content));
  });
});
