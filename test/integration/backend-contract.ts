/**
 * The one contract every Backend implementation runs (local, S3, REST, Azure, GCS, and the
 * wrappers around them). `make()` must return a backend on a fresh, empty location each time it
 * is called (e.g. a new prefix in a shared bucket) and a cleanup that removes what it made.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { Backend, FileHandle, FileInfo, FileSource, FileType, SpoolFile } from '../../src/backend/backend.js';
import { BackendError } from '../../src/backend/errors.js';
import { RetryBackend } from '../../src/backend/retry.js';
import { SPOOL_PREFIX, SpoolingBackend } from '../../src/backend/spool.js';
import { CairnError } from '../../src/core/errors.js';
import { mapLimit } from '../../src/core/semaphore.js';

export interface ContractOptions {
  /**
   * The store refuses to overwrite: saving different content under an existing config name fails
   * with REPO_EXISTS (S3 with If-None-Match, REST servers that refuse overwrites). When false or
   * absent, either outcome is accepted.
   */
  createOnly?: boolean;
  /** Size of the large-file test (default 17 MiB: above the usual single-request limits). */
  largeFileBytes?: number;
  /** Files in the listing test (default 1100: more than one page of 1000). */
  listFiles?: number;
  /**
   * The backend writes files piece by piece (createSpool, or a temporary-file spool over saveFile);
   * default true. False only where it has neither (a local disk behind the limit wrapper): the
   * spool tests are then not registered at all, and when true a backend without them fails.
   */
  spools?: boolean;
  /** The backend saves from local files (saveFile: object stores); default true. */
  savesFromFiles?: boolean;
}

type Made = {
  backend: Backend;
  cleanup(): Promise<void>;
  /**
   * Where the backend's own createSpool() puts temporary files, when they go to a temporary
   * folder (object stores opened by openBackend with spoolDir): checked to hold none of them.
   */
  spoolDir?: string;
};

/**
 * The backend's spool, as a pack writer would use it: its own createSpool(), or for a backend
 * that saves from files (an object store), a temporary-file spool in a fresh folder.
 */
function spoolOf(m: Made): { b: Backend; createSpool(t: FileType): Promise<SpoolFile>; dir?: string; cleanup(): void } | undefined {
  const b = m.backend;
  if (b.createSpool) return { b, createSpool: (t) => b.createSpool!(t), dir: m.spoolDir, cleanup: () => undefined };
  if (!b.saveFile) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-contract-spool-'));
  const sp = new SpoolingBackend(b as Backend & { saveFile: NonNullable<Backend['saveFile']> }, { dir });
  return { b: sp, createSpool: (t) => sp.createSpool(t), dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Temporary spool files visible in a folder (there should never be any: they are unlinked at once). */
function spoolFiles(dir: string | undefined): string[] {
  return dir ? readdirSync(dir).filter((n) => n.startsWith(SPOOL_PREFIX)) : [];
}

/**
 * A file source over a buffer that counts the bytes each save attempt reads, and can fail one
 * stream half way through (as a connection that drops mid-upload does, with a retryable error).
 */
export class CountingSource implements FileSource {
  streams = 0;
  bytesRead = 0;
  failStream = -1;
  /** bytesRead when the fault fired. */
  failedAt: number | undefined;
  constructor(private readonly data: Buffer) {}
  get size(): number {
    return this.data.length;
  }
  stream(start = 0, end = this.data.length): Readable {
    const fail = this.streams++ === this.failStream;
    const data = this.data;
    const count = (n: number) => (this.bytesRead += n);
    const failed = () => (this.failedAt = this.bytesRead);
    let pos = start;
    const stop = fail ? start + Math.floor((end - start) / 2) : end;
    return new Readable({
      read() {
        if (pos >= stop) {
          if (fail) {
            failed();
            setImmediate(() => this.destroy(new BackendError('injected: connection reset half way through the upload', { retryable: true })));
          }
          else this.push(null);
          return;
        }
        const c = data.subarray(pos, Math.min(stop, pos + 64 * 1024));
        pos += c.length;
        count(c.length);
        // asynchronous, like a file read: a request gets to send part of the body before the failure
        setImmediate(() => this.push(c));
      },
    });
  }
}

function idOf(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A file as the repository writes it: named by the SHA-256 of its content. */
function file(type: Exclude<FileType, 'config'>, size: number): { h: FileHandle; data: Buffer } {
  const data = randomBytes(size);
  return { h: { type, name: idOf(data) }, data };
}

async function listAll(b: Backend, type: FileType): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  for await (const f of b.list(type)) out.push(f);
  return out;
}

function isCode(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof CairnError, `expected a CairnError ${code}, got ${String(e)}`);
    assert.equal((e as CairnError).code, code, (e as Error).message);
    return true;
  };
}

export function backendContract(name: string, make: () => Promise<Made>, opts: ContractOptions = {}): void {
  const with_ = async (fn: (b: Backend) => Promise<void>) => {
    const m = await make();
    try {
      await fn(m.backend);
    } finally {
      await m.backend.close().catch(() => undefined);
      await m.cleanup();
    }
  };

  describe(`backend contract: ${name}`, () => {
    it('create makes an empty repository location, and refuses one with a config', () =>
      with_(async (b) => {
        await b.create();
        for (const t of ['config', 'key', 'snapshot', 'index', 'lock', 'pack'] as FileType[]) {
          assert.deepEqual(await listAll(b, t), [], `${t} listed after create`);
        }
        await b.save({ type: 'config', name: 'config' }, Buffer.from('config-bytes'));
        await assert.rejects(b.create(), isCode('REPO_EXISTS'));
      }));

    it('saves and loads every file type', () =>
      with_(async (b) => {
        await b.create();
        const cfg = randomBytes(155);
        await b.save({ type: 'config', name: 'config' }, cfg);
        assert.deepEqual(await b.load({ type: 'config', name: 'config' }), cfg);
        assert.deepEqual(await listAll(b, 'config'), [{ name: 'config', size: cfg.length }]);
        for (const t of ['key', 'snapshot', 'index', 'lock', 'pack'] as const) {
          const f = file(t, 1 + Math.floor(Math.random() * 5000));
          await b.save(f.h, f.data);
          const back = await b.load(f.h);
          assert.ok(Buffer.isBuffer(back), 'load returns a Buffer');
          assert.deepEqual(back, f.data, `${t} round trip`);
          assert.deepEqual(await b.stat(f.h), { name: f.h.name, size: f.data.length });
          assert.deepEqual(await listAll(b, t), [{ name: f.h.name, size: f.data.length }], `${t} listing`);
        }
      }));

    it('accepts a Uint8Array view (not a whole Buffer) as data', () =>
      with_(async (b) => {
        await b.create();
        const backing = randomBytes(4096);
        const view = new Uint8Array(backing.buffer, backing.byteOffset + 100, 3000);
        const h: FileHandle = { type: 'snapshot', name: idOf(view) };
        await b.save(h, view);
        assert.deepEqual(await b.load(h), Buffer.from(view));
      }));

    it('loads ranges: offsets, lengths, open ends, last byte', () =>
      with_(async (b) => {
        await b.create();
        const f = file('pack', 100_000);
        await b.save(f.h, f.data);
        const cases: Array<[number, number | undefined]> = [
          [0, 10],
          [0, 100_000],
          [5, 100],
          [99_999, 1],
          [65_536, 20_000],
          [12_345, undefined],
          [0, undefined],
        ];
        for (const [off, len] of cases) {
          const got = await b.load(f.h, off, len);
          assert.deepEqual(got, f.data.subarray(off, len === undefined ? undefined : off + len), `range ${off}+${len}`);
        }
        assert.equal((await b.load(f.h, 10, 0)).length, 0, 'zero-length read');
      }));

    it('never returns less than a range that goes past the end', () =>
      with_(async (b) => {
        await b.create();
        const f = file('pack', 1000);
        await b.save(f.h, f.data);
        await assert.rejects(b.load(f.h, 900, 200), (e: unknown) => {
          assert.ok(e instanceof Error);
          assert.notEqual((e as CairnError).code, 'NOT_FOUND');
          return true;
        });
        await assert.rejects(b.load(f.h, 5000, 10));
      }));

    it('reports missing files as NOT_FOUND', () =>
      with_(async (b) => {
        await b.create();
        const f = file('pack', 10);
        await assert.rejects(b.load(f.h), isCode('NOT_FOUND'));
        await assert.rejects(b.load(f.h, 0, 5), isCode('NOT_FOUND'));
        await assert.rejects(b.stat(f.h), isCode('NOT_FOUND'));
        await assert.rejects(b.load({ type: 'config', name: 'config' }), isCode('NOT_FOUND'));
        await assert.rejects(b.stat({ type: 'key', name: f.h.name }), isCode('NOT_FOUND'));
      }));

    it('removes files; removing a missing file is NOT_FOUND or a no-op', () =>
      with_(async (b) => {
        await b.create();
        const f = file('lock', 300);
        const g = file('lock', 301);
        await b.save(f.h, f.data);
        await b.save(g.h, g.data);
        await b.remove(f.h);
        await assert.rejects(b.stat(f.h), isCode('NOT_FOUND'));
        assert.deepEqual(await listAll(b, 'lock'), [{ name: g.h.name, size: 301 }]);
        try {
          await b.remove(f.h);
        } catch (e) {
          isCode('NOT_FOUND')(e);
        }
        const p = file('pack', 50);
        await b.save(p.h, p.data);
        await b.remove(p.h);
        assert.deepEqual(await listAll(b, 'pack'), []);
      }));

    it(`lists more than one page (${opts.listFiles ?? 1100} files), each once with its size`, () =>
      with_(async (b) => {
        await b.create();
        const n = opts.listFiles ?? 1100;
        // at least 16 random bytes each: equal contents would share a name and list once
        const files = Array.from({ length: n }, (_, i) => file('snapshot', 16 + (i % 97)));
        await mapLimit(files, 32, (f) => b.save(f.h, f.data));
        const listed = await listAll(b, 'snapshot');
        assert.equal(listed.length, n, 'every file listed once');
        const want = new Map(files.map((f) => [f.h.name, f.data.length]));
        for (const l of listed) assert.equal(l.size, want.get(l.name), `size of ${l.name}`);
        assert.equal(new Set(listed.map((l) => l.name)).size, n, 'no duplicates');
        assert.deepEqual(await listAll(b, 'index'), [], 'other types stay empty');
      }));

    it('lists packs across all data/XX folders', () =>
      with_(async (b) => {
        await b.create();
        const packs = Array.from({ length: 40 }, () => file('pack', 64));
        await mapLimit(packs, 16, (f) => b.save(f.h, f.data));
        const listed = (await listAll(b, 'pack')).map((f) => f.name).sort();
        assert.deepEqual(listed, packs.map((p) => p.h.name).sort());
      }));

    it('list can be aborted', () =>
      with_(async (b) => {
        await b.create();
        const files = Array.from({ length: 5 }, () => file('index', 10));
        for (const f of files) await b.save(f.h, f.data);
        const ac = new AbortController();
        ac.abort(new Error('stop'));
        await assert.rejects(async () => {
          for await (const _ of b.list('index', ac.signal)) {
            /* nothing */
          }
        });
      }));

    it('rejects names that are not IDs, and keeps repositories under different prefixes apart', async () => {
      const m1 = await make();
      const m2 = await make();
      try {
        const b1 = m1.backend;
        const b2 = m2.backend;
        await b1.create();
        await b2.create();
        for (const bad of ['../config', 'abc', 'A'.repeat(64), '0'.repeat(63), `${'0'.repeat(64)}/x`, '']) {
          await assert.rejects(b1.save({ type: 'pack', name: bad }, Buffer.from('x')), isCode('INVALID_ARGUMENT'), `name ${JSON.stringify(bad)}`);
          await assert.rejects(b1.load({ type: 'key', name: bad }), isCode('INVALID_ARGUMENT'));
        }
        const f = file('key', 123);
        await b1.save(f.h, f.data);
        await b1.save({ type: 'config', name: 'config' }, Buffer.from('one'));
        assert.deepEqual(await listAll(b2, 'key'), [], 'the other repository sees nothing');
        assert.deepEqual(await listAll(b2, 'config'), []);
        await assert.rejects(b2.stat(f.h), isCode('NOT_FOUND'));
        assert.notEqual(b1.location, b2.location);
      } finally {
        await m1.backend.close().catch(() => undefined);
        await m2.backend.close().catch(() => undefined);
        await m1.cleanup();
        await m2.cleanup();
      }
    });

    it('saves concurrently', () =>
      with_(async (b) => {
        await b.create();
        const files = Array.from({ length: 60 }, (_, i) => file(i % 2 ? 'pack' : 'index', 1000 + i * 37));
        await Promise.all(files.map((f) => b.save(f.h, f.data)));
        await mapLimit(files, 16, async (f) => assert.deepEqual(await b.load(f.h), f.data));
        assert.equal((await listAll(b, 'pack')).length, 30);
        assert.equal((await listAll(b, 'index')).length, 30);
      }));

    it('saving the same content twice is harmless (content-addressed names)', () =>
      with_(async (b) => {
        await b.create();
        const f = file('pack', 2000);
        await b.save(f.h, f.data);
        await b.save(f.h, f.data);
        assert.deepEqual(await b.load(f.h), f.data);
        const cfg = Buffer.from('the config');
        await b.save({ type: 'config', name: 'config' }, cfg);
        await b.save({ type: 'config', name: 'config' }, cfg);
        assert.deepEqual(await b.load({ type: 'config', name: 'config' }), cfg);
      }));

    it(opts.createOnly ? 'never overwrites a config with different content' : 'a second, different config either fails with REPO_EXISTS or replaces the first', () =>
      with_(async (b) => {
        await b.create();
        const first = Buffer.from('first config');
        const second = Buffer.from('second config, different');
        await b.save({ type: 'config', name: 'config' }, first);
        let replaced = true;
        try {
          await b.save({ type: 'config', name: 'config' }, second);
        } catch (e) {
          isCode('REPO_EXISTS')(e);
          replaced = false;
        }
        if (opts.createOnly) assert.equal(replaced, false, 'create-only store overwrote the config');
        assert.deepEqual(await b.load({ type: 'config', name: 'config' }), replaced ? second : first);
      }));

    it(`round-trips a large file (${((opts.largeFileBytes ?? 17 << 20) / (1 << 20)).toFixed(0)} MiB) and reads ranges across it`, () =>
      with_(async (b) => {
        await b.create();
        const f = file('pack', opts.largeFileBytes ?? 17 << 20);
        await b.save(f.h, f.data);
        assert.equal((await b.stat(f.h)).size, f.data.length);
        const back = await b.load(f.h);
        assert.ok(back.equals(f.data), 'whole file');
        const mid = Math.floor(f.data.length / 2) - 7;
        assert.ok((await b.load(f.h, mid, 1 << 20)).equals(f.data.subarray(mid, mid + (1 << 20))), 'range across the middle');
        const tail = f.data.length - 4096;
        assert.ok((await b.load(f.h, tail)).equals(f.data.subarray(tail)), 'open-ended tail');
      }));

    // ---- spooled files (pack writers): createSpool(), or a temporary-file spool over saveFile()

    const withSpool = (title: string, fn: (sp: NonNullable<ReturnType<typeof spoolOf>>) => Promise<void>) =>
      opts.spools !== false &&
      it(title, async () => {
        const m = await make();
        const sp = spoolOf(m);
        try {
          assert.ok(sp, 'the backend has createSpool or saveFile (declared with spools)');
          await sp.b.create();
          await fn(sp);
        } finally {
          sp?.cleanup();
          await m.backend.close().catch(() => undefined);
          await m.cleanup();
        }
      });

    const large = opts.largeFileBytes ?? 17 << 20;
    for (const [size, kind] of [
      [300_001, 'small'],
      [large, 'large: multipart / blocks / resumable where the backend has them'],
    ] as const) {
      withSpool(`a spooled file (${size} bytes, ${kind}) written in pieces at once is stored byte for byte under its ID, and leaves no temporary file`, async (sp) => {
        const data = randomBytes(size);
        const h: FileHandle = { type: 'pack', name: idOf(data) };
        const f = await sp.createSpool('pack');
        // 1 MiB pieces in flight at once, as the pack writer issues them (the last one shorter)
        const writes: Array<Promise<void>> = [];
        for (let off = 0; off < size; off += 1 << 20) writes.push(f.write(data.subarray(off, Math.min(size, off + (1 << 20))), off));
        await Promise.all(writes);
        assert.deepEqual(spoolFiles(sp.dir), [], 'a spooled file has no name in the temporary folder (a crash leaves nothing)');
        await f.commit(h.name);
        assert.deepEqual(await sp.b.stat(h), { name: h.name, size });
        assert.ok((await sp.b.load(h)).equals(data), 'content differs');
        assert.deepEqual(await listAll(sp.b, 'pack'), [{ name: h.name, size }]);
        assert.deepEqual(spoolFiles(sp.dir), [], 'no temporary file is left');
      });
    }

    withSpool('a discarded spool leaves nothing: no object, no temporary file', async (sp) => {
      const data = randomBytes(3 << 20);
      const f = await sp.createSpool('pack');
      await f.write(data, 0);
      await f.discard();
      assert.deepEqual(await listAll(sp.b, 'pack'), []);
      await assert.rejects(sp.b.stat({ type: 'pack', name: idOf(data) }), isCode('NOT_FOUND'));
      assert.deepEqual(spoolFiles(sp.dir), []);
    });

    for (const [size, kind] of [
      [2_000_003, 'one request'],
      [large, 'large'],
    ] as const) {
      if (opts.savesFromFiles === false) continue;
      it(`a save from a file that fails half way through the upload (${size} bytes, ${kind}) is retried and reads the whole file again`, () =>
        with_(async (b) => {
          assert.ok(b.saveFile, 'the backend saves from files (declared with savesFromFiles)');
          await b.create();
          // Retries come from RetryBackend: around this backend, or already inside it (openBackend's stack).
          const saver = new RetryBackend(b, { maxAttempts: 3, initialDelayMs: 1 });
          // A clean save of other bytes of the same size tells which stream carries the last request body.
          const probeData = randomBytes(size);
          const probe = new CountingSource(probeData);
          await saver.saveFile!({ type: 'pack', name: idOf(probeData) }, probe);
          const data = randomBytes(size);
          const h: FileHandle = { type: 'pack', name: idOf(data) };
          const src = new CountingSource(data);
          src.failStream = probe.streams - 1;
          await saver.saveFile!(h, src);
          assert.ok(src.failedAt !== undefined, 'the fault was injected');
          assert.ok(src.bytesRead - src.failedAt >= size, `after the fault only ${src.bytesRead - src.failedAt} of ${size} bytes were read again`);
          assert.ok((await b.load(h)).equals(data), 'content differs');
          assert.deepEqual((await listAll(b, 'pack')).map((f) => f.name).sort(), [idOf(probeData), h.name].sort());
        }));
    }
  });
}
