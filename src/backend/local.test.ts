import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { native } from '../native/index.js';
import { LocalBackend } from './local.js';

const MiB = 1 << 20;

/** Bytes from native.alignedBuffer when the addon is there (what the pack writer uses), else plain. */
function aligned(n: number): Buffer {
  const b = native.alignedBuffer?.(n) ?? Buffer.allocUnsafeSlow(n);
  randomBytes(n).copy(b);
  return b;
}

function plain(n: number, misalign: number): Buffer {
  // a view starting `misalign` bytes into its memory: never aligned for O_DIRECT when misalign is odd
  return randomBytes(n + misalign).subarray(misalign);
}

for (const directIo of [true, false]) {
  test(`local spool file (direct I/O ${directIo ? 'on' : 'off'}): aligned, unaligned and misaligned writes in flight at once give exactly the bytes written`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cairn-local-spool-'));
    try {
      const backend = new LocalBackend(dir, { directIo });
      await backend.create();
      const spool = await backend.createSpool('pack');
      // aligned MiBs (the direct path), one from misaligned memory (EINVAL → buffered), and an unaligned tail
      const pieces = [aligned(MiB), aligned(MiB), plain(MiB, 1), aligned(2 * MiB), aligned(MiB), plain(12_345, 0)];
      let pos = 0;
      const writes: Array<Promise<void>> = [];
      for (const p of pieces) {
        writes.push(spool.write(p, pos));
        pos += p.length;
      }
      await Promise.all(writes);
      const whole = Buffer.concat(pieces);
      const id = createHash('sha256').update(whole).digest('hex');
      await spool.commit(id);
      const stored = readFileSync(path.join(dir, 'data', id.slice(0, 2), id));
      assert.equal(stored.length, whole.length);
      assert.ok(stored.equals(whole), 'content differs');
      assert.deepEqual(readdirSync(path.join(dir, 'data', id.slice(0, 2))), [id], 'no temporary file is left');
      // the next spool file of the same backend still works (direct I/O may have been switched off)
      const next = await backend.createSpool('pack');
      const more = aligned(MiB);
      await next.write(more, 0);
      const id2 = createHash('sha256').update(more).digest('hex');
      await next.commit(id2);
      assert.ok(readFileSync(path.join(dir, 'data', id2.slice(0, 2), id2)).equals(more));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
