/** The backend contract against a real S3 server (Ceph RGW on loopback): raw backend and the full stack opened from an identifier. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { CairnError } from '../../src/core/errors.js';
import { mapLimit } from '../../src/core/semaphore.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { tempDir } from '../support/env.js';
import { makeCerts, startTlsTerminator } from '../support/tls.js';
import { recordingLogger } from '../support/logger.js';
import { openS3Backend } from '../../src/backend/s3/index.js';
import { openBackend } from '../../src/backend/open.js';
import { hasCeph, startCeph, type CephS3 } from '../support/ceph.js';
import { backendContract } from './backend-contract.js';

const skip = !hasCeph && !process.env.CI ? 'Ceph RGW not installed (apt-get install radosgw ceph-mon ceph-osd)' : false;

describe('S3 backend on Ceph RGW', { skip }, () => {
  let ceph: CephS3 | undefined;
  let n = 0;
  before(async () => {
    ceph = await startCeph();
    await ceph.createBucket('contract');
  });
  after(async () => {
    await ceph?.stop();
  });

  // Fresh prefixes nest inside each other (ct/a, ct/a/x, ...), which also checks that a repository
  // never sees the files of one living under its own prefix.
  const nextPrefix = () => `ct/a${'/x'.repeat(n++)}`;

  backendContract(
    's3 (Ceph RGW, multipart above 8 MiB)',
    async () => ({
      backend: openS3Backend({
        bucket: 'contract',
        prefix: nextPrefix(),
        endpoint: ceph!.endpoint,
        accessKeyId: ceph!.accessKey,
        secretAccessKey: ceph!.secretKey,
        multipartThreshold: 8 << 20,
        partSize: 5 << 20,
      }),
      cleanup: async () => undefined,
    }),
    { createOnly: true },
  );

  backendContract(
    's3 opened from an identifier (limit + retry, bucket created by create())',
    async () => {
      const bucket = `auto${n++}`;
      const spool = tempDir('cairn-s3-spool-');
      return {
        backend: await openBackend(`s3:${ceph!.endpoint}/${bucket}/some/prefix`, { env: ceph!.env, retry: { maxAttempts: 3, initialDelayMs: 10 }, spoolDir: spool.dir }),
        cleanup: async () => spool.cleanup(),
        spoolDir: spool.dir,
      };
    },
    { createOnly: true, listFiles: 1005, largeFileBytes: 70 << 20 },
  );

  it('discovers the region, signs with it, and reports wrong keys as PERMISSION without the secret', async () => {
    const good = await openBackend(`s3:${ceph!.endpoint}/contract/region-probe`, { env: ceph!.env });
    await good.create();
    await good.close();
    const bad = await openBackend(`s3:${ceph!.endpoint}/contract/region-probe`, {
      env: { AWS_ACCESS_KEY_ID: 'testaccess', AWS_SECRET_ACCESS_KEY: 'not-the-secret' },
      retry: { maxAttempts: 2, initialDelayMs: 1 },
    });
    await assert.rejects(bad.stat({ type: 'config', name: 'config' }), (e: unknown) => {
      assert.ok(e instanceof CairnError);
      assert.equal(e.code, 'PERMISSION');
      assert.doesNotMatch(e.message, /not-the-secret/);
      return true;
    });
    await bad.close();
  });

  it('reads keys from a shared-credentials file or its content, with a profile', async () => {
    const t = tempDir('cairn-s3-creds-');
    try {
      const file = path.join(t.dir, 'cloud');
      fs.writeFileSync(file, `[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n[velero]\naws_access_key_id=${ceph!.accessKey}\naws_secret_access_key=${ceph!.secretKey}\n`);
      for (const s3 of [{ credentialsFile: file, profile: 'velero' }, { sharedCredentials: fs.readFileSync(file), profile: 'velero' }]) {
        const b = await openBackend(`s3:${ceph!.endpoint}/contract/creds${Object.keys(s3)[0]}`, { env: {}, s3 });
        await b.create();
        await b.save({ type: 'config', name: 'config' }, Buffer.from('x'));
        await b.close();
      }
      const wrongProfile = await openBackend(`s3:${ceph!.endpoint}/contract/creds-default`, { env: {}, s3: { credentialsFile: file }, retry: false });
      await assert.rejects(wrongProfile.stat({ type: 'config', name: 'config' }), (e: unknown) => e instanceof CairnError && e.code === 'PERMISSION');
      await wrongProfile.close();
    } finally {
      t.cleanup();
    }
  });

  it('https with a private CA (caCerts) or insecureSkipTLSVerify; refused otherwise', async () => {
    const t = tempDir('cairn-s3-tls-');
    const certs = makeCerts(t.dir);
    const term = await startTlsTerminator(ceph!.port, certs);
    try {
      const id = `s3:https://127.0.0.1:${term.port}/contract/tls`;
      const plain = await openBackend(id, { env: ceph!.env, retry: { maxAttempts: 2, initialDelayMs: 1 } });
      await assert.rejects(plain.create(), /certificate|self.signed|verify/i);
      await plain.close();
      const ca = await openBackend(id, { env: ceph!.env, caCerts: [certs.caPem] });
      await ca.create();
      await ca.save({ type: 'config', name: 'config' }, Buffer.from('over tls'));
      await ca.close();
      const insecure = await openBackend(id, { env: ceph!.env, insecureSkipTLSVerify: true });
      assert.deepEqual(await insecure.load({ type: 'config', name: 'config' }), Buffer.from('over tls'));
      // ranged reads take the direct client (backend/lean-http.ts): same trust rules
      assert.deepEqual(await insecure.load({ type: 'config', name: 'config' }, 5, 3), Buffer.from('tls'));
      await insecure.close();
      const ca2 = await openBackend(id, { env: ceph!.env, caCerts: [certs.caPem] });
      assert.deepEqual(await ca2.load({ type: 'config', name: 'config' }, 0, 4), Buffer.from('over'));
      await ca2.close();
      const plain2 = await openBackend(id, { env: ceph!.env, retry: { maxAttempts: 2, initialDelayMs: 1 } });
      await assert.rejects(plain2.load({ type: 'config', name: 'config' }, 0, 4), /certificate|self.signed|verify/i);
      await plain2.close();
    } finally {
      await term.close();
      t.cleanup();
    }
  });

  it('ranged reads: direct client and SDK give the same bytes; a missing file is NOT_FOUND either way', async () => {
    const data = randomBytes(3 << 20);
    const h = { type: 'pack' as const, name: createHash('sha256').update(data).digest('hex') };
    const logger = recordingLogger();
    const cfg = { bucket: 'contract', prefix: 'ranged', endpoint: ceph!.endpoint, accessKeyId: ceph!.accessKey, secretAccessKey: ceph!.secretKey };
    const direct = openS3Backend(cfg, { logger });
    const sdk = openS3Backend({ ...cfg, directRequests: false });
    try {
      await direct.save(h, data);
      for (const [off, len] of [[0, data.length], [1, 1], [12345, 2 << 20], [data.length - 10, 10]] as const) {
        const into = Buffer.alloc(len + 5);
        const a = await direct.load(h, off, len, into);
        assert.ok(a.equals(data.subarray(off, off + len)));
        assert.equal(a.buffer, into.buffer, 'read into the given buffer');
        assert.ok((await sdk.load(h, off, len)).equals(a));
      }
      assert.ok(logger.lines.some((l) => l.msg === 's3 data requests' && l.fields?.via === 'direct'));
      const missing = { type: 'pack' as const, name: 'f'.repeat(64) };
      for (const b of [direct, sdk]) await assert.rejects(b.load(missing, 0, 10), (e: unknown) => e instanceof CairnError && e.code === 'NOT_FOUND');
    } finally {
      await direct.close();
      await sdk.close();
    }
  });

  it('falls back to plain writes when the store answers 501 to If-None-Match', async () => {
    const proxy = await FaultProxy.start({
      target: { host: '127.0.0.1', port: ceph!.port },
      rules: [{ method: 'PUT', headers: { 'if-none-match': /\*/ }, fault: { kind: 'status', status: 501, body: '<Error><Code>NotImplemented</Code></Error>' } }],
    });
    try {
      const b = openS3Backend({ bucket: 'contract', prefix: 'no-conditional', endpoint: proxy.url, accessKeyId: ceph!.accessKey, secretAccessKey: ceph!.secretKey });
      await b.create();
      const files = [0, 1, 2].map((i) => Buffer.from(`s${i}`));
      for (const f of files) await b.save({ type: 'snapshot', name: createHash('sha256').update(f).digest('hex') }, f);
      assert.equal(proxy.injected.status, 1, 'only the first write tried If-None-Match');
      assert.equal((await b.stat({ type: 'snapshot', name: createHash('sha256').update(files[2]!).digest('hex') })).size, 2);
      // a body that does not match its name is refused by the store, not stored
      await assert.rejects(b.save({ type: 'index', name: createHash('sha256').update('other').digest('hex') }, Buffer.from('this')), (e: unknown) => e instanceof CairnError && e.code === 'CORRUPT');
      await b.close();
      // the same through saveFile, whose PUTs go by the direct client: 501 -> plain writes, a file
      // already there (412) is checked and accepted, a body that does not match its name is CORRUPT
      const source = (d: Buffer) => ({ size: d.length, stream: (start = 0, end = d.length) => Readable.from([d.subarray(start, end)]) });
      const d = openS3Backend({ bucket: 'contract', prefix: 'no-conditional-direct', endpoint: proxy.url, accessKeyId: ceph!.accessKey, secretAccessKey: ceph!.secretKey });
      const pack = randomBytes(100_000);
      const ph = { type: 'pack' as const, name: createHash('sha256').update(pack).digest('hex') };
      await d.saveFile!(ph, source(pack));
      assert.equal(proxy.injected.status, 2, 'the direct PUT tried If-None-Match once');
      assert.ok((await d.load(ph, 10, 1000)).equals(pack.subarray(10, 1010)));
      await assert.rejects(d.saveFile!({ type: 'pack', name: createHash('sha256').update('other').digest('hex') }, source(pack)), (e: unknown) => e instanceof CairnError && e.code === 'CORRUPT');
      await d.close();
      const c = openS3Backend({ bucket: 'contract', prefix: 'no-conditional-direct', endpoint: ceph!.endpoint, accessKeyId: ceph!.accessKey, secretAccessKey: ceph!.secretKey });
      await c.saveFile!(ph, source(pack)); // 412: already there with the same size
      await c.close();
    } finally {
      await proxy.close();
    }
  });

  it('a pack spooled to a temporary file survives a connection reset mid-upload (single PUT and multipart): the retry sends the whole file again', async () => {
    const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: ceph!.port } });
    const spool = tempDir('cairn-s3-spool-reset-');
    try {
      const b = await openBackend(`s3:${proxy.url}/contract/spool-reset`, {
        env: ceph!.env,
        retry: { maxAttempts: 3, initialDelayMs: 10 },
        extended: { 's3.multipart-threshold': '8MiB', 's3.part-size': '5MiB' },
        spoolDir: spool.dir,
      });
      await b.create();
      for (const size of [3 << 20, 21 << 20]) {
        const data = randomBytes(size);
        const name = createHash('sha256').update(data).digest('hex');
        // the connection is reset once the upload has started (the first PUT of this file: the whole object, or a part)
        proxy.resetCounts();
        proxy.setRules([{ method: 'PUT', path: /spool-reset\/data\//, fault: { kind: 'reset' }, times: 1 }]);
        const f = await b.createSpool!('pack');
        for (let off = 0; off < size; off += 1 << 20) await f.write(data.subarray(off, off + (1 << 20)), off);
        await f.commit(name);
        assert.equal(proxy.injected.reset, 1, `the fault was injected (${size} bytes)`);
        assert.ok((await b.load({ type: 'pack', name })).equals(data), `content after the retry (${size} bytes)`);
        assert.deepEqual(fs.readdirSync(spool.dir), [], 'no temporary file is left');
      }
      await b.close();
    } finally {
      await proxy.close();
      spool.cleanup();
    }
  });

  it('lists more than a page with ListObjects v1 (s3.list-objects-v1) and with a storage class set', async () => {
    const b = await openBackend(`s3:${ceph!.endpoint}/contract/v1-listing`, { env: ceph!.env, extended: { 's3.list-objects-v1': 'true', 's3.storage-class': 'STANDARD' } });
    await b.create();
    const bodies = Array.from({ length: 1003 }, (_, i) => Buffer.from(String(i)));
    const names = bodies.map((d) => createHash('sha256').update(d).digest('hex'));
    await mapLimit(bodies, 32, (d, i) => b.save({ type: 'pack', name: names[i]! }, d));
    const listed: string[] = [];
    for await (const f of b.list('pack')) listed.push(f.name);
    assert.deepEqual(listed.sort(), [...names].sort());
    await b.close();
  });
});
