/**
 * The GCS test server checked with the real @google-cloud/storage SDK (and raw HTTP where the SDK
 * hides the protocol), so backend tests against it mean something.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { Storage, CRC32C, type Bucket } from '@google-cloud/storage';
import { startGcsServer, crc32cBase64, type GcsTestServer } from '../support/gcs-server.js';

const MiB = 1024 * 1024;

async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

function sdkCrc(b: Buffer): string {
  const c = new CRC32C();
  c.update(b);
  return c.toString();
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

async function rejectsWith(p: Promise<unknown>, status: number, reason?: string): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    // ApiError carries the status in `code`; the resumable uploader's GaxiosError in `response`.
    const err = e as { code?: unknown; status?: unknown; response?: { status?: unknown }; errors?: Array<{ reason?: string }> };
    const got = typeof err.code === 'number' ? err.code : (err.status ?? err.response?.status);
    assert.equal(got, status, `expected HTTP ${status}, got ${String(got)}: ${(e as Error).message}`);
    if (reason) assert.equal(err.errors?.[0]?.reason, reason);
    return e;
  }
  assert.fail(`expected HTTP ${status}, the call succeeded`);
}

describe('GCS test server with @google-cloud/storage', () => {
  let server: GcsTestServer;
  let storage: Storage;
  let bucket: Bucket;

  before(async () => {
    server = await startGcsServer();
    storage = new Storage({ apiEndpoint: server.url, projectId: 'test-project', retryOptions: { autoRetry: false } });
    bucket = storage.bucket('probe');
    await bucket.create();
  });
  after(async () => {
    await server.stop();
  });

  it('creates, reads and deletes buckets like the service', async () => {
    const b = storage.bucket('second-bucket');
    assert.equal((await b.exists())[0], false);
    await b.create();
    assert.equal((await b.exists())[0], true);
    const [meta] = await b.getMetadata();
    assert.equal(meta.name, 'second-bucket');
    await rejectsWith(b.create(), 409, 'conflict');
    await b.file('x').save('x', { resumable: false });
    await rejectsWith(b.delete(), 409, 'conflict');
    await b.file('x').delete();
    await b.delete();
    assert.equal((await b.exists())[0], false);
    await rejectsWith(storage.bucket('no-such-bucket').file('a').save('a', { resumable: false }), 404, 'notFound');
  });

  it('computes crc32c exactly as the SDK does', () => {
    for (const n of [0, 1, 3, 31, 1000, 65537]) {
      const d = randomBytes(n);
      assert.equal(crc32cBase64(d), sdkCrc(d));
    }
    // RFC 3720 check value
    assert.equal(crc32cBase64(Buffer.from('123456789')), Buffer.from('e3069283', 'hex').toString('base64'));
  });

  it('multipart upload: resource fields, metadata, hashes', async () => {
    const data = randomBytes(100_000);
    const f = bucket.file('dir/one');
    await f.save(data, { resumable: false, metadata: { contentType: 'application/x-test', metadata: { k: 'v' } } });
    const [meta] = await f.getMetadata();
    assert.equal(meta.kind, 'storage#object');
    assert.equal(typeof meta.size, 'string');
    assert.equal(meta.size, '100000');
    assert.equal(typeof meta.generation, 'string');
    assert.equal(meta.metageneration, '1');
    assert.equal(meta.md5Hash, createHash('md5').update(data).digest('base64'));
    assert.equal(meta.crc32c, sdkCrc(data));
    assert.equal(meta.contentType, 'application/x-test');
    assert.deepEqual(meta.metadata, { k: 'v' });
    assert.equal((await f.exists())[0], true);
    assert.equal((await bucket.file('dir/none').exists())[0], false);
    // the request really was multipart
    assert.ok(server.requests.some((r) => r.url.includes('uploadType=multipart') && r.url.includes('name=dir%2Fone')));
  });

  it('rejects an upload whose declared md5Hash does not match the data', async () => {
    const data = randomBytes(1000);
    await rejectsWith(bucket.file('bad-md5').save(data, { resumable: false, metadata: { md5Hash: createHash('md5').update('other').digest('base64') } }), 400, 'invalid');
    assert.equal(server.getObject('probe', 'bad-md5'), undefined);
  });

  it('downloads whole objects (with x-goog-hash) and ranges (206 + Content-Range)', async () => {
    const data = randomBytes(100_000);
    const f = bucket.file('ranged');
    await f.save(data, { resumable: false });
    assert.ok((await f.download())[0].equals(data));
    assert.ok((await f.download({ start: 10, end: 19 }))[0].equals(data.subarray(10, 20)));
    const tail = await new Promise<Buffer>((resolve, reject) => {
      const parts: Buffer[] = [];
      f.createReadStream({ start: 99_990 })
        .on('data', (c: Buffer) => parts.push(c))
        .on('error', reject)
        .on('end', () => resolve(Buffer.concat(parts)));
    });
    assert.ok(tail.equals(data.subarray(99_990)));
    // wire details the SDK relies on
    const whole = await fetch(`${server.url}/storage/v1/b/probe/o/ranged?alt=media`);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('x-goog-stored-content-encoding'), 'identity');
    assert.equal(whole.headers.get('x-goog-hash'), `crc32c=${crc32cBase64(data)},md5=${createHash('md5').update(data).digest('base64')}`);
    await whole.arrayBuffer();
    const part = await fetch(`${server.url}/storage/v1/b/probe/o/ranged?alt=media`, { headers: { Range: 'bytes=5-9' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 5-9/100000');
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(data.subarray(5, 10)));
    const suffix = await fetch(`${server.url}/storage/v1/b/probe/o/ranged?alt=media`, { headers: { Range: 'bytes=-16' } });
    assert.equal(suffix.status, 206);
    assert.ok(Buffer.from(await suffix.arrayBuffer()).equals(data.subarray(100_000 - 16)));
    const past = await fetch(`${server.url}/storage/v1/b/probe/o/ranged?alt=media`, { headers: { Range: 'bytes=100000-' } });
    assert.equal(past.status, 416);
    await past.arrayBuffer();
  });

  it('answers 404 with the service error body for missing objects', async () => {
    const e = (await rejectsWith(bucket.file('missing').download(), 404)) as Error;
    assert.match(e.message, /No such object: probe\/missing/);
    await rejectsWith(bucket.file('missing').getMetadata(), 404, 'notFound');
    const raw = await fetch(`${server.url}/storage/v1/b/probe/o/missing`);
    assert.equal(raw.status, 404);
    assert.deepEqual(await raw.json(), {
      error: { code: 404, message: 'No such object: probe/missing', errors: [{ message: 'No such object: probe/missing', domain: 'global', reason: 'notFound' }] },
    });
  });

  it('resumable uploads: save(), one streamed request, and 308-acknowledged chunks', async () => {
    const small = randomBytes(300_000);
    await bucket.file('res/small').save(small, { resumable: true });
    assert.ok(server.getObject('probe', 'res/small')!.equals(small));

    const big = randomBytes(20 * MiB);
    await new Promise<void>((resolve, reject) => {
      bucket.file('res/single').createWriteStream({ resumable: true }).on('error', reject).on('finish', resolve).end(big);
    });
    assert.equal(sha(server.getObject('probe', 'res/single')!), sha(big));

    const before308 = server.requests.filter((r) => r.status === 308).length;
    const chunked = randomBytes(5 * MiB + 12_345);
    await new Promise<void>((resolve, reject) => {
      bucket
        .file('res/chunked')
        .createWriteStream({ resumable: true, chunkSize: MiB, metadata: { contentLength: chunked.length } })
        .on('error', reject)
        .on('finish', resolve)
        .end(chunked);
    });
    assert.equal(sha(server.getObject('probe', 'res/chunked')!), sha(chunked));
    assert.equal(server.requests.filter((r) => r.status === 308).length - before308, 5, 'five non-final chunks answered with 308');
    const [meta] = await bucket.file('res/chunked').getMetadata();
    assert.equal(meta.crc32c, sdkCrc(chunked));
    assert.equal(server.openSessions(), 0);
  });

  it('preconditions: ifGenerationMatch 0 creates only; generation and metageneration checks give 412', async () => {
    const f = bucket.file('pre/obj');
    await f.save('first', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    await rejectsWith(f.save('second', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }), 412, 'conditionNotMet');
    await rejectsWith(f.save(randomBytes(1000), { resumable: true, preconditionOpts: { ifGenerationMatch: 0 } }), 412);
    assert.equal(server.getObject('probe', 'pre/obj')!.toString(), 'first');
    const [meta] = await f.getMetadata();
    await f.save('third', { resumable: false, preconditionOpts: { ifGenerationMatch: Number(meta.generation) } });
    await rejectsWith(f.save('fourth', { resumable: false, preconditionOpts: { ifGenerationMatch: Number(meta.generation) } }), 412);
    const [m2] = await f.getMetadata();
    await f.setMetadata({ metadata: { a: '1' } }, { ifMetagenerationMatch: Number(m2.metageneration) });
    await rejectsWith(f.setMetadata({ metadata: { a: '2' } }, { ifMetagenerationMatch: Number(m2.metageneration) }), 412);
    const [m3] = await f.getMetadata();
    assert.equal(m3.metageneration, '2');
    assert.deepEqual(m3.metadata, { a: '1' });
    assert.equal(server.getObject('probe', 'pre/obj')!.toString(), 'third');
  });

  it('precondition is checked again when a resumable session completes', async () => {
    const f = bucket.file('pre/race');
    const [uri] = await f.createResumableUpload({ preconditionOpts: { ifGenerationMatch: 0 } });
    server.putObject('probe', 'pre/race', Buffer.from('winner'));
    const r = await fetch(uri, { method: 'PUT', body: 'loser', headers: { 'Content-Range': 'bytes 0-4/5' } });
    assert.equal(r.status, 412);
    await r.arrayBuffer();
    assert.equal(server.getObject('probe', 'pre/race')!.toString(), 'winner');
  });

  it('keeps whole 256 KiB units of an interrupted request and resumes from the reported Range', async () => {
    const data = randomBytes(1 * MiB);
    const f = bucket.file('resume/obj');
    const [uri] = await f.createResumableUpload();
    // Send 600 KiB of a request announcing the whole MiB, then cut the connection.
    const u = new URL(uri);
    await new Promise<void>((resolve) => {
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'PUT', headers: { 'Content-Length': String(data.length), 'Content-Range': `bytes 0-${data.length - 1}/${data.length}` } });
      req.on('error', () => resolve());
      req.write(data.subarray(0, 600 * 1024), () => setTimeout(() => req.destroy(), 50));
      req.on('close', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 50));
    const q = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': `bytes */${data.length}` } });
    assert.equal(q.status, 308);
    assert.equal(q.headers.get('range'), `bytes=0-${512 * 1024 - 1}`);
    await q.arrayBuffer();
    const rest = await fetch(uri, { method: 'PUT', body: data.subarray(512 * 1024), headers: { 'Content-Range': `bytes ${512 * 1024}-${data.length - 1}/${data.length}` } });
    assert.equal(rest.status, 200);
    const resource = (await rest.json()) as { size: string; crc32c: string };
    assert.equal(resource.size, String(data.length));
    assert.equal(resource.crc32c, crc32cBase64(data));
    assert.ok(server.getObject('probe', 'resume/obj')!.equals(data));
    // a finished session answers queries with the object
    const done = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': 'bytes */*' } });
    assert.equal(done.status, 200);
    await done.arrayBuffer();
  });

  it('rejects a non-final chunk below 256 KiB, as the service does', async () => {
    const [uri] = await bucket.file('resume/small-chunk').createResumableUpload();
    const r = await fetch(uri, { method: 'PUT', body: randomBytes(1000), headers: { 'Content-Range': 'bytes 0-999/*' } });
    assert.equal(r.status, 400);
    await r.arrayBuffer();
  });

  it('lists with pagination, prefix, delimiter, startOffset and endOffset', async () => {
    const names = Array.from({ length: 1105 }, (_, i) => `list/data/${(i % 7).toString(16).padStart(2, '0')}/${String(i).padStart(5, '0')}`);
    await pool(names, 32, (n) => bucket.file(n).save('x', { resumable: false }));
    const [all] = await bucket.getFiles({ prefix: 'list/' });
    assert.equal(all.length, 1105);
    const seen: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const [files, next] = await bucket.getFiles({ prefix: 'list/', maxResults: 100, autoPaginate: false, pageToken });
      seen.push(...files.map((f) => f.name));
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
      pages++;
    } while (pageToken);
    assert.equal(pages, 12);
    assert.equal(new Set(seen).size, 1105);
    assert.deepEqual(seen, [...seen].sort());
    const [, , resp] = await bucket.getFiles({ prefix: 'list/data/', delimiter: '/', autoPaginate: false });
    assert.deepEqual((resp as { prefixes?: string[] }).prefixes, ['00', '01', '02', '03', '04', '05', '06'].map((p) => `list/data/${p}/`));
    assert.equal((resp as { items?: unknown[] }).items, undefined);
    const [from] = await bucket.getFiles({ prefix: 'list/', startOffset: 'list/data/06/', endOffset: 'list/data/06/00100' });
    assert.deepEqual(
      from.map((f) => f.name),
      names.filter((n) => n.startsWith('list/data/06/') && n < 'list/data/06/00100').sort(),
    );
    const [none] = await bucket.getFiles({ prefix: 'nothing-here/' });
    assert.equal(none.length, 0);
  });

  it('deletes objects (404 when missing), deleteFiles by prefix, and copies', async () => {
    await bucket.file('del/a').save('a', { resumable: false });
    await bucket.file('del/b').save('b', { resumable: false });
    await bucket.file('del/a').copy(bucket.file('del/c'));
    assert.equal(server.getObject('probe', 'del/c')!.toString(), 'a');
    await bucket.file('del/a').delete();
    await rejectsWith(bucket.file('del/a').delete(), 404, 'notFound');
    await bucket.deleteFiles({ prefix: 'del/' });
    assert.deepEqual(server.listObjects('probe').filter((n) => n.startsWith('del/')), []);
  });

  it('serves the paths STORAGE_EMULATOR_HOST clients use (no /storage/v1)', async () => {
    await bucket.file('emu/x').save('hello', { resumable: false });
    const r = await fetch(`${server.url}/b/probe/o?prefix=emu%2F`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as { items: Array<{ name: string; size: string }> };
    assert.deepEqual(body.items.map((i) => [i.name, i.size]), [['emu/x', '5']]);
    const m = await fetch(`${server.url}/b/probe/o/emu%2Fx?alt=media`);
    assert.equal(await m.text(), 'hello');
  });
});
