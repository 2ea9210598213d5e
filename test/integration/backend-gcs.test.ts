/**
 * The GCS backend against our GCS JSON-API test server (checked against the real SDK in
 * gcs-server.test.ts), directly and through the fault proxy.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openGcsBackend, gcsOptionsFromEnv } from '../../src/backend/gcs/index.js';
import { openBackend } from '../../src/backend/open.js';
import { CairnError } from '../../src/core/errors.js';
import { startGcsServer, type GcsTestServer } from '../support/gcs-server.js';
import { objectStoreChecks, type OpenTuning } from './object-store-checks.js';
import { backendContract } from './backend-contract.js';

const sha = (d: Uint8Array) => createHash('sha256').update(d).digest('hex');

describe('GCS backend on the GCS test server', () => {
  let server: GcsTestServer;
  let n = 0;

  before(async () => {
    server = await startGcsServer();
  });
  after(async () => {
    await server.stop();
  });

  async function open(t: OpenTuning = {}) {
    const bucket = `b${++n}-${randomBytes(4).toString('hex')}`;
    if (!t.fresh) server.createBucket(bucket);
    const backend = openGcsBackend(
      { bucket, prefix: t.prefix ?? '' },
      {
        apiEndpoint: t.proxy?.url ?? server.url,
        projectId: 'test-project',
        resumableThreshold: t.smallParts ? 1024 * 1024 : undefined,
        chunkSize: t.smallParts ? 256 * 1024 : undefined,
        listPageSize: t.listPageSize,
        stallTimeoutMs: t.stallTimeoutMs,
        retryDelayMs: 100,
      },
    );
    return { backend, container: bucket };
  }

  backendContract(
    'gcs (test server, chunked resumable sessions above 4 MiB)',
    async () => {
      const bucket = `ct${++n}-${randomBytes(4).toString('hex')}`;
      server.createBucket(bucket);
      return {
        backend: openGcsBackend({ bucket, prefix: 'a/b' }, { apiEndpoint: server.url, projectId: 'test-project', resumableThreshold: 4 << 20, chunkSize: 1 << 20 }),
        cleanup: async () => server.dropBucket(bucket),
      };
    },
    { createOnly: true },
  );

  backendContract(
    'gcs opened from an identifier (limit + retry, bucket created by create())',
    async () => {
      const bucket = `id${++n}-${randomBytes(4).toString('hex')}`;
      const spoolDir = mkdtempSync(path.join(tmpdir(), 'cairn-gcs-spool-'));
      return {
        backend: await openBackend(`gs:${bucket}:/velero/restic/ns`, {
          env: { STORAGE_EMULATOR_HOST: server.url, GOOGLE_PROJECT_ID: 'test-project' },
          retry: { maxAttempts: 3, initialDelayMs: 10 },
          spoolDir,
        }),
        cleanup: async () => {
          server.dropBucket(bucket);
          rmSync(spoolDir, { recursive: true, force: true });
        },
        spoolDir,
      };
    },
    { createOnly: true, listFiles: 1005, largeFileBytes: 70 << 20 },
  );

  objectStoreChecks({
    name: 'gcs',
    target: () => ({ host: '127.0.0.1', port: server.port }),
    open,
    async keys(bucket) {
      return server.listObjects(bucket);
    },
    async putRaw(bucket, key, data) {
      server.putObject(bucket, key, data);
    },
    paths: { upload: /^\/upload\/storage\/v1\//, download: /[?&]alt=media/, any: /./ },
    uploadMethods: ['POST', 'PUT'],
  });

  it('small files are one multipart request; large ones a resumable session of 308-acknowledged chunks', async () => {
    const { backend, container } = await open({ smallParts: true, prefix: 'paths' });
    const small = randomBytes(5000);
    const from = server.requests.length;
    await backend.save({ type: 'index', name: sha(small) }, small);
    const smallReqs = server.requests.slice(from);
    assert.equal(smallReqs.length, 1);
    assert.match(smallReqs[0]!.url, /uploadType=multipart.*ifGenerationMatch=0|ifGenerationMatch=0.*uploadType=multipart/);
    const big = randomBytes(1024 * 1024 + 100_000);
    const openBefore = server.openSessions();
    const from2 = server.requests.length;
    await backend.save({ type: 'pack', name: sha(big) }, big);
    const reqs = server.requests.slice(from2);
    assert.ok(reqs.some((r) => r.method === 'POST' && /uploadType=resumable/.test(r.url) && /ifGenerationMatch=0/.test(r.url)));
    assert.equal(reqs.filter((r) => r.status === 308).length, 4, 'five 256 KiB-or-larger chunks, four answered 308');
    assert.equal(reqs.length, 6, 'session start and five chunks, nothing else');
    assert.equal(sha(server.getObject(container, `paths/data/${sha(big).slice(0, 2)}/${sha(big)}`)!), sha(big));
    assert.equal(server.openSessions(), openBefore, 'the session was completed');
  });

  it('a missing bucket is created with the project from the key file; without a project create() says what to set', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cairn-gcskey-'));
    try {
      const keyFile = path.join(dir, 'key.json');
      writeFileSync(
        keyFile,
        JSON.stringify({ type: 'service_account', project_id: 'from-keyfile', client_email: 'x@from-keyfile.iam.gserviceaccount.com', private_key: 'not used against a test endpoint' }),
      );
      const bucket = `kf-${randomBytes(4).toString('hex')}`;
      const b = openGcsBackend({ bucket, prefix: 'r' }, { apiEndpoint: server.url, keyFilename: keyFile });
      const from = server.requests.length;
      await b.create();
      assert.ok(server.requests.slice(from).some((r) => r.method === 'POST' && r.url === '/storage/v1/b?project=from-keyfile'));
      const data = randomBytes(10);
      await b.save({ type: 'config', name: 'config' }, data);
      assert.ok(server.getObject(bucket, 'r/config')!.equals(data));

      const noProject = openGcsBackend({ bucket: `np-${randomBytes(4).toString('hex')}`, prefix: '' }, { apiEndpoint: server.url });
      await assert.rejects(noProject.create(), (e: unknown) => e instanceof CairnError && e.code === 'INVALID_ARGUMENT' && /GOOGLE_PROJECT_ID/.test(e.message));
      assert.throws(
        () => openGcsBackend({ bucket: 'x', prefix: '' }, { keyFilename: path.join(dir, 'missing.json') }),
        (e: unknown) => e instanceof CairnError && e.code === 'INVALID_ARGUMENT',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('opens through openBackend("gs:bucket:/path") with the environment', async () => {
    const bucket = `open-${randomBytes(4).toString('hex')}`;
    const b = await openBackend(`gs:${bucket}:/cl1/restic/shop`, { env: { STORAGE_EMULATOR_HOST: server.url, GOOGLE_PROJECT_ID: 'p1' } });
    assert.equal(b.location, `gs:${bucket}:/cl1/restic/shop`);
    await b.create();
    const data = randomBytes(64);
    await b.save({ type: 'config', name: 'config' }, data);
    assert.ok(server.getObject(bucket, 'cl1/restic/shop/config')!.equals(data));
    await b.close();
  });

  it('options from the environment', () => {
    assert.deepEqual(gcsOptionsFromEnv({ GOOGLE_APPLICATION_CREDENTIALS: '/credentials/cloud', GOOGLE_PROJECT_ID: 'p' }), {
      keyFilename: '/credentials/cloud',
      projectId: 'p',
      apiEndpoint: undefined,
    });
    assert.equal(gcsOptionsFromEnv({ GOOGLE_CLOUD_PROJECT: 'q' }).projectId, 'q');
    // a BSL's own credential file wins over the DaemonSet-wide one
    assert.equal(gcsOptionsFromEnv({ GOOGLE_APPLICATION_CREDENTIALS: '/credentials/cloud' }, { credentialsFile: '/tmp/credentials/velero/bsl-cloud' }).keyFilename, '/tmp/credentials/velero/bsl-cloud');
    assert.throws(() => openGcsBackend({ bucket: 'b', prefix: '' }, { chunkSize: 1000 }), /multiple of 256 KiB/);
  });
});
