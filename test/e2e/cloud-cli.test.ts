/**
 * End to end through the CLI on the cloud backends: `cairn init/backup/restore/check` with
 * `-r azure:<container>:/<path>` (Azurite) and `-r gs:<bucket>:/<path>` (our GCS test server),
 * credentials from the environment as restic/Velero set them, first directly and then through the
 * fault proxy (5xx bursts, 429 + Retry-After, resets, lost answers, truncated bodies). Backups must
 * complete, restores must be identical, and every stored file must still hash to its name.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { cairn, mustOk, tempDir } from '../support/env.js';
import { diffFacts, makeRichTree, snapshotFacts } from '../support/tree.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, hasAzurite, startAzurite, type Azurite } from '../support/azurite.js';
import { startGcsServer, type GcsTestServer } from '../support/gcs-server.js';
import { FaultProxy, type FaultRule } from '../support/fault-proxy.js';

if (!hasAzurite && process.env.CI) throw new Error('azurite is not installed (CI must run npm ci)');

interface Cloud {
  name: string;
  repo: string;
  /** Environment for the CLI; `via` = base URL of a proxy in front of the server. */
  env(via?: string): Record<string, string>;
  target(): { host: string; port: number };
  /** Every stored object as [key, bytes]. */
  objects(): Promise<Array<[string, Buffer]>>;
  uploadMethods: string[];
  /** `-o <scheme>.idle-timeout=…`: a body cut short must not wait out the 60 s default. */
  idleOption: string;
}

const PASSWORD = 'cloud-e2e';
// quick retries and a short idle timeout, so injected faults cost little time
const fast = (c: Cloud) => ['-o', 'retry.initial-delay=50ms', '-o', 'retry.max-attempts=20', '-o', `${c.idleOption}=3s`];

function lastJson(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

function faultRules(c: Cloud): FaultRule[] {
  const rules: FaultRule[] = [
    { fault: { kind: 'status', status: 503 }, probability: 0.06 },
    { fault: { kind: 'status', status: 500 }, probability: 0.03 },
    { fault: { kind: 'status', status: 429, retryAfter: 1 }, probability: 0.02, times: 3 },
    { fault: { kind: 'reset' }, probability: 0.03 },
    { method: 'GET', fault: { kind: 'truncate', fraction: 0.5 }, probability: 0.04 },
    { method: 'GET', fault: { kind: 'truncate', fraction: 0.5, lie: true }, probability: 0.04 },
    { method: 'GET', fault: { kind: 'reset-mid-body', fraction: 0.3 }, probability: 0.03 },
  ];
  for (const m of c.uploadMethods) rules.push({ method: m, fault: { kind: 'reset-after-forward' }, probability: 0.05 });
  return rules;
}

/** Every file but the config is named by the SHA-256 of its bytes: nothing corrupt was stored. */
async function assertStoredIntact(c: Cloud): Promise<number> {
  const objs = await c.objects();
  let n = 0;
  for (const [key, data] of objs) {
    const name = key.slice(key.lastIndexOf('/') + 1);
    if (name === 'config') continue;
    assert.equal(createHash('sha256').update(data).digest('hex'), name, `${c.name}: ${key} does not hash to its name`);
    n++;
  }
  return n;
}

function scenario(getCloud: () => Cloud): void {
  it('init, backup, restore and check directly, then again through injected faults', async () => {
    const c = getCloud();
    const d = tempDir('cairn-cloud-');
    try {
      const src = path.join(d.dir, 'data', 'src');
      makeRichTree(src, 7);
      const cwd = path.dirname(src);
      const env = { ...c.env(), RESTIC_PASSWORD: PASSWORD };
      const init = mustOk(await cairn(['init', '-r', c.repo], { env }), `${c.name} init`);
      assert.match(init.stdout + init.stderr, new RegExp(c.repo.replace(/[:/]/g, '.')));
      const again = await cairn(['init', '-r', c.repo], { env });
      assert.notEqual(again.code, 0, 'a second init must fail');

      const first = lastJson(mustOk(await cairn(['backup', '-r', c.repo, 'src', '--json'], { env, cwd }), `${c.name} backup`).stdout);
      assert.ok((first.files_new as number) > 5);
      const t1 = path.join(d.dir, 't1');
      mustOk(await cairn(['restore', '-r', c.repo, 'latest', '--target', t1], { env }), `${c.name} restore`);
      assert.deepEqual(diffFacts(snapshotFacts(src), snapshotFacts(path.join(t1, 'src'))), []);
      mustOk(await cairn(['check', '-r', c.repo, '--read-data'], { env }), `${c.name} check`);

      // through the fault proxy: new data (new packs), a backup, a restore and a check
      const proxy = await FaultProxy.start({ target: c.target(), rules: faultRules(c), seed: 11 });
      try {
        fs.writeFileSync(path.join(src, 'new-under-faults.bin'), randomBytes(3_000_000));
        fs.appendFileSync(path.join(src, 'text', 'log.txt'), 'appended under faults\n');
        const fenv = { ...c.env(proxy.url), RESTIC_PASSWORD: PASSWORD };
        const second = lastJson(mustOk(await cairn(['backup', '-r', c.repo, ...fast(c), 'src', '--json'], { env: fenv, cwd }), `${c.name} backup under faults`).stdout);
        assert.ok((second.files_new as number) >= 1);
        const t2 = path.join(d.dir, 't2');
        mustOk(await cairn(['restore', '-r', c.repo, ...fast(c), 'latest', '--target', t2], { env: fenv }), `${c.name} restore under faults`);
        assert.deepEqual(diffFacts(snapshotFacts(src), snapshotFacts(path.join(t2, 'src'))), [], 'restored identically under faults');
        mustOk(await cairn(['check', '-r', c.repo, ...fast(c), '--read-data'], { env: fenv }), `${c.name} check under faults`);
        assert.ok(proxy.totalInjected >= 10, `${c.name}: faults injected ${JSON.stringify(proxy.injected)}`);
      } finally {
        await proxy.close();
      }
      // directly again: two snapshots, and every stored file intact
      const snaps = JSON.parse(mustOk(await cairn(['snapshots', '-r', c.repo, '--json'], { env }), 'snapshots').stdout);
      assert.equal(snaps.length, 2);
      assert.ok((await assertStoredIntact(c)) > 5);
      mustOk(await cairn(['check', '-r', c.repo, '--read-data'], { env }), `${c.name} final check`);
    } finally {
      d.cleanup();
    }
  });
}

describe('CLI on Azure Blob (Azurite)', { skip: !hasAzurite && 'azurite not installed' }, () => {
  let az: Azurite;
  const container = `e2e-${randomBytes(4).toString('hex')}`;
  before(async () => {
    az = await startAzurite();
  });
  after(async () => {
    await az?.stop();
  });
  scenario(() => ({
    name: 'azure',
    repo: `azure:${container}:/velero/restic/app`,
    env: (via) => ({
      // what Velero hands restic, plus the endpoint of the emulator (or the proxy in front of it)
      AZURE_ACCOUNT_NAME: AZURITE_ACCOUNT,
      AZURE_ACCOUNT_KEY: AZURITE_KEY,
      AZURE_BLOB_ENDPOINT: via ? `${via}/${AZURITE_ACCOUNT}` : az.url,
    }),
    target: () => ({ host: '127.0.0.1', port: az.port }),
    async objects() {
      const cc = new BlobServiceClient(az.url, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)).getContainerClient(container);
      const out: Array<[string, Buffer]> = [];
      for await (const b of cc.listBlobsFlat({ prefix: 'velero/restic/app/' })) out.push([b.name, await cc.getBlobClient(b.name).downloadToBuffer()]);
      return out;
    },
    uploadMethods: ['PUT'],
    idleOption: 'azure.idle-timeout',
  }));
});

describe('CLI on Google Cloud Storage (GCS test server)', () => {
  let server: GcsTestServer;
  const bucket = `e2e-${randomBytes(4).toString('hex')}`;
  before(async () => {
    server = await startGcsServer();
  });
  after(async () => {
    await server?.stop();
  });
  scenario(() => ({
    name: 'gcs',
    repo: `gs:${bucket}:/velero/restic/app`,
    env: (via) => ({
      STORAGE_EMULATOR_HOST: via ?? server.url,
      GOOGLE_PROJECT_ID: 'cairn-test',
    }),
    target: () => ({ host: '127.0.0.1', port: server.port }),
    async objects() {
      return server
        .listObjects(bucket)
        .filter((k) => k.startsWith('velero/restic/app/'))
        .map((k) => [k, server.getObject(bucket, k)!] as [string, Buffer]);
    },
    uploadMethods: ['POST', 'PUT'],
    idleOption: 'gs.idle-timeout',
  }));
});
