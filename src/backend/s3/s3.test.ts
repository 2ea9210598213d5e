import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openS3Backend } from './index.js';
import type { S3Config } from './config.js';

interface Seen {
  method: string;
  url: string;
  region?: string;
  headers: http.IncomingHttpHeaders;
}

/** A scripted stand-in for an S3 endpoint that records the signing region of every request. */
async function fakeS3(answer: (req: Seen) => { status: number; body?: string; headers?: Record<string, string> }) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const auth = String(req.headers.authorization ?? '');
    const region = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\//.exec(auth)?.[1];
    const s: Seen = { method: req.method!, url: req.url!, region, headers: req.headers };
    seen.push(s);
    req.resume();
    req.on('end', () => {
      const a = answer(s);
      res.writeHead(a.status, { 'content-type': 'application/xml', ...a.headers });
      res.end(a.body ?? '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { seen, endpoint, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const creds = { accessKeyId: 'AK', secretAccessKey: 'SK' };
const location = (v: string) => `<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${v}</LocationConstraint>`;

async function statWith(cfg: Partial<S3Config>, answer: Parameters<typeof fakeS3>[0]) {
  const f = await fakeS3(answer);
  const b = openS3Backend({ bucket: 'bkt', prefix: 'p', endpoint: f.endpoint, ...creds, ...cfg });
  try {
    await b.stat({ type: 'config', name: 'config' });
  } finally {
    await b.close();
    await f.close();
  }
  return f.seen;
}

describe('S3 region discovery and request shape', () => {
  it('asks the bucket for its region and signs with it', async () => {
    const seen = await statWith({}, (r) => (r.url.includes('location') ? { status: 200, body: location('eu-west-2') } : { status: 200, headers: { 'content-length': '5' } }));
    assert.equal(seen.length, 2);
    assert.match(seen[0]!.url, /^\/bkt\/?\?location/);
    assert.equal(seen[0]!.region, 'us-east-1');
    assert.equal(seen[1]!.method, 'HEAD');
    assert.equal(seen[1]!.url, '/bkt/p/config', 'path-style addressing for a custom endpoint');
    assert.equal(seen[1]!.region, 'eu-west-2');
  });

  it('uses a configured region without asking, and us-east-1 for Ceph zonegroup names or failures', async () => {
    const direct = await statWith({ region: 'ap-south-1' }, () => ({ status: 200, headers: { 'content-length': '1' } }));
    assert.equal(direct.length, 1);
    assert.equal(direct[0]!.region, 'ap-south-1');
    const ceph = await statWith({}, (r) => (r.url.includes('location') ? { status: 200, body: location('default') } : { status: 200, headers: { 'content-length': '1' } }));
    assert.equal(ceph[1]!.region, 'us-east-1');
    const denied = await statWith({}, (r) => (r.url.includes('location') ? { status: 403, body: '<Error><Code>AccessDenied</Code></Error>' } : { status: 200, headers: { 'content-length': '1' } }));
    assert.equal(denied[1]!.region, 'us-east-1');
  });

  it('sends plain bodies (no aws-chunked), the content hash, If-None-Match and the storage class for packs only', async () => {
    const f = await fakeS3(() => ({ status: 200, headers: { etag: '"e"' } }));
    const b = openS3Backend({ bucket: 'bkt', prefix: '', endpoint: f.endpoint, region: 'us-east-1', storageClass: 'STANDARD_IA', ...creds });
    const id = 'ab'.repeat(32);
    await b.save({ type: 'pack', name: id }, Buffer.from('x'));
    await b.save({ type: 'config', name: 'config' }, Buffer.from('cfg'));
    await b.close();
    await f.close();
    const [pack, config] = f.seen;
    assert.equal(pack!.url.split('?')[0], `/bkt/data/ab/${id}`);
    assert.equal(pack!.headers['content-encoding'], undefined);
    assert.equal(pack!.headers['x-amz-content-sha256'], id);
    assert.equal(pack!.headers['if-none-match'], '*');
    assert.equal(pack!.headers['x-amz-storage-class'], 'STANDARD_IA');
    assert.equal(pack!.headers['content-length'], '1');
    assert.equal(config!.url.split('?')[0], '/bkt/config');
    assert.equal(config!.headers['x-amz-storage-class'], undefined);
    assert.match(String(config!.headers['x-amz-content-sha256']), /^[0-9a-f]{64}$/);
  });

  it('maps throttling to a retryable error carrying Retry-After', async () => {
    const f = await fakeS3(() => ({ status: 503, body: '<Error><Code>SlowDown</Code><Message>slow</Message></Error>', headers: { 'retry-after': '3' } }));
    const b = openS3Backend({ bucket: 'bkt', prefix: '', endpoint: f.endpoint, region: 'us-east-1', ...creds });
    await assert.rejects(b.load({ type: 'pack', name: 'ab'.repeat(32) }, 0, 10), (e: unknown) => {
      const x = e as { code: string; retryable: boolean; retryAfterMs?: number; status?: number };
      assert.equal(x.code, 'BACKEND');
      assert.equal(x.retryable, true);
      assert.equal(x.status, 503);
      assert.equal(x.retryAfterMs, 3000);
      return true;
    });
    await b.close();
    await f.close();
  });
});
