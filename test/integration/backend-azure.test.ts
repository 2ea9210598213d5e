/**
 * The Azure Blob backend against Azurite (a real Azure Storage emulator), directly and through the
 * fault proxy; credential sources as restic and Velero hand them over.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import * as http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  BlobServiceClient,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
} from '@azure/storage-blob';
import { openAzureBackend, azureOptionsFromEnv, endpointSuffixForCloud, type AzureOptions } from '../../src/backend/azure/index.js';
import { openBackend } from '../../src/backend/open.js';
import { CairnError } from '../../src/core/errors.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, hasAzurite, startAzurite, type Azurite } from '../support/azurite.js';
import { objectStoreChecks, type OpenTuning } from './object-store-checks.js';
import { backendContract } from './backend-contract.js';

if (!hasAzurite && process.env.CI) throw new Error('azurite is not installed (CI must run npm ci)');

describe('Azure Blob backend on Azurite', { skip: !hasAzurite && 'azurite not installed' }, () => {
  let az: Azurite;
  let service: BlobServiceClient;
  let n = 0;

  before(async () => {
    az = await startAzurite();
    service = new BlobServiceClient(az.url, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY));
  });
  after(async () => {
    await az?.stop();
  });

  const creds = (endpoint?: string): AzureOptions => ({ accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, endpoint: endpoint ?? az.url });

  async function open(t: OpenTuning = {}) {
    const container = `c${++n}-${randomBytes(4).toString('hex')}`;
    if (!t.fresh) await service.getContainerClient(container).create();
    const backend = openAzureBackend(
      { container, prefix: t.prefix ?? '' },
      {
        ...creds(t.proxy ? `${t.proxy.url}/${AZURITE_ACCOUNT}` : az.url),
        singlePutLimit: t.smallParts ? 1024 * 1024 : undefined,
        blockSize: t.smallParts ? 256 * 1024 : undefined,
        listPageSize: t.listPageSize,
        stallTimeoutMs: t.stallTimeoutMs,
      },
    );
    return { backend, container };
  }

  const dropContainer = (name: string) => async () => {
    await service.getContainerClient(name).deleteIfExists();
  };

  backendContract(
    'azure (Azurite, staged blocks above 4 MiB)',
    async () => {
      const container = `ct${++n}-${randomBytes(4).toString('hex')}`;
      return {
        backend: openAzureBackend({ container, prefix: 'a/b' }, { ...creds(), singlePutLimit: 4 << 20, blockSize: 1 << 20 }),
        cleanup: dropContainer(container),
      };
    },
    { createOnly: true },
  );

  backendContract(
    'azure opened from an identifier (limit + retry, container created by create())',
    async () => {
      const container = `id${++n}-${randomBytes(4).toString('hex')}`;
      const env = { AZURE_ACCOUNT_NAME: AZURITE_ACCOUNT, AZURE_ACCOUNT_KEY: AZURITE_KEY, AZURE_BLOB_ENDPOINT: az.url };
      const spoolDir = mkdtempSync(path.join(tmpdir(), 'cairn-azure-spool-'));
      return {
        backend: await openBackend(`azure:${container}:/velero/restic/ns`, { env, retry: { maxAttempts: 3, initialDelayMs: 10 }, spoolDir }),
        cleanup: async () => {
          await dropContainer(container)();
          rmSync(spoolDir, { recursive: true, force: true });
        },
        spoolDir,
      };
    },
    { createOnly: true, listFiles: 1005, largeFileBytes: 70 << 20 },
  );

  objectStoreChecks({
    name: 'azure',
    target: () => ({ host: '127.0.0.1', port: az.port }),
    open,
    async keys(container) {
      const out: string[] = [];
      for await (const b of service.getContainerClient(container).listBlobsFlat()) out.push(b.name);
      return out.sort();
    },
    async putRaw(container, key, data) {
      await service.getContainerClient(container).getBlockBlobClient(key).uploadData(data);
    },
    // blob paths: /account/container/blob… (a listing is /account/container?restype=…)
    paths: { upload: /^\/devstoreaccount1\/[^/?]+\/[^?]+/, download: /^\/devstoreaccount1\/[^/?]+\/[^?]+/, any: /./ },
    uploadMethods: ['PUT'],
  });

  it('large files are committed as staged blocks with a stored MD5', async () => {
    const { backend, container } = await open({ smallParts: true, prefix: 'blocks' });
    const data = randomBytes(1024 * 1024 + 300_000);
    const name = createHash('sha256').update(data).digest('hex');
    await backend.save({ type: 'pack', name }, data);
    const blob = service.getContainerClient(container).getBlockBlobClient(`blocks/data/${name.slice(0, 2)}/${name}`);
    const list = await blob.getBlockList('committed');
    assert.equal(list.committedBlocks?.length, 6, '1.29 MiB in 256 KiB blocks');
    const props = await blob.getProperties();
    assert.ok(Buffer.from(props.contentMD5!).equals(createHash('md5').update(data).digest()));
    // small files are one Put Blob
    const small = randomBytes(1000);
    const sname = createHash('sha256').update(small).digest('hex');
    await backend.save({ type: 'index', name: sname }, small);
    const sprops = await service.getContainerClient(container).getBlockBlobClient(`blocks/index/${sname}`).getProperties();
    assert.ok(Buffer.from(sprops.contentMD5!).equals(createHash('md5').update(small).digest()));
  });

  it('authenticates with a connection string and with a SAS token', async () => {
    const container = `auth-${randomBytes(4).toString('hex')}`;
    const viaCs = openAzureBackend({ container, prefix: 'p' }, { connectionString: az.connectionString });
    await viaCs.create();
    const data = randomBytes(500);
    const name = createHash('sha256').update(data).digest('hex');
    await viaCs.save({ type: 'key', name }, data);
    const sas = generateAccountSASQueryParameters(
      {
        expiresOn: new Date(Date.now() + 3_600_000),
        permissions: AccountSASPermissions.parse('rwdlac'),
        resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
        services: AccountSASServices.parse('b').toString(),
      },
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
    ).toString();
    const viaSas = openAzureBackend({ container, prefix: 'p' }, { accountName: AZURITE_ACCOUNT, sasToken: `?${sas}`, endpoint: az.url });
    assert.ok((await viaSas.load({ type: 'key', name })).equals(data));
    const names: string[] = [];
    for await (const f of viaSas.list('key')) names.push(f.name);
    assert.deepEqual(names, [name]);
    // a wrong key is a permission error, not something to retry
    const bad = openAzureBackend({ container, prefix: 'p' }, { accountName: AZURITE_ACCOUNT, accountKey: Buffer.from('wrong key').toString('base64'), endpoint: az.url });
    await assert.rejects(bad.load({ type: 'key', name }), (e: unknown) => e instanceof CairnError && e.code === 'PERMISSION' && !e.retryable);
  });

  it("Velero's default: the key is listed through Resource Manager with a service principal, workload or managed identity", async () => {
    // a stand-in for Azure AD and Resource Manager: token endpoints, listKeys, the metadata service
    const seen: Array<{ path: string; form?: URLSearchParams; auth?: string; metadata?: string }> = [];
    const fake = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const u = new URL(req.url ?? '/', 'http://x');
        const entry = { path: u.pathname, form: new URLSearchParams(body), auth: req.headers.authorization, metadata: req.headers.metadata as string | undefined };
        seen.push(entry);
        const json = (status: number, v: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
        if (u.pathname === '/tenant-1/oauth2/v2.0/token') {
          const f = entry.form;
          const ok =
            f.get('grant_type') === 'client_credentials' &&
            f.get('client_id') === 'app-1' &&
            f.get('scope') === `http://127.0.0.1:${(fake.address() as { port: number }).port}/arm/.default` &&
            (f.get('client_secret') === 'sp-secret' || f.get('client_assertion') === 'federated-jwt');
          return ok ? json(200, { token_type: 'Bearer', access_token: 'aad-token', expires_in: 3600 }) : json(401, { error: 'invalid_client', error_description: 'bad secret' });
        }
        if (u.pathname === '/imds') {
          return entry.metadata === 'true' ? json(200, { access_token: 'msi-token' }) : json(400, { error: 'no metadata header' });
        }
        if (u.pathname === '/arm/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Storage/storageAccounts/devstoreaccount1/listKeys') {
          if (req.method !== 'POST' || !/^Bearer (aad|msi)-token$/.test(req.headers.authorization ?? '')) return json(403, { error: { code: 'AuthorizationFailed', message: 'no' } });
          return json(200, { keys: [{ keyName: 'key1', value: 'cmVhZG9ubHk=', permissions: 'READ' }, { keyName: 'key2', value: AZURITE_KEY, permissions: 'Full' }] });
        }
        json(404, { error: { code: 'NotFound', message: u.pathname } });
      });
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
    const dir = mkdtempSync(path.join(tmpdir(), 'cairn-azsp-'));
    try {
      // a Velero credentials file for a service principal (no storage key in it)
      const cred = path.join(dir, 'cloud');
      writeFileSync(cred, ['AZURE_SUBSCRIPTION_ID=sub-1', 'AZURE_TENANT_ID=tenant-1', 'AZURE_CLIENT_ID=app-1', 'AZURE_CLIENT_SECRET=sp-secret', 'AZURE_RESOURCE_GROUP=rg-1', 'AZURE_CLOUD_NAME=AzurePublicCloud', ''].join('\n'));
      const env = { AZURE_CREDENTIALS_FILE: cred, AZURE_AUTHORITY_HOST: base, AZURE_RESOURCE_MANAGER_ENDPOINT: `${base}/arm`, AZURE_BLOB_ENDPOINT: az.url };
      const container = `sp-${randomBytes(4).toString('hex')}`;
      const b = await openBackend(`azure:${container}:/velero/restic/ns`, { env, azure: { bsl: { storageAccount: AZURITE_ACCOUNT } } });
      await b.create();
      const data = randomBytes(300);
      const name = createHash('sha256').update(data).digest('hex');
      await b.save({ type: 'index', name }, data);
      assert.ok((await b.load({ type: 'index', name })).equals(data));
      assert.equal(seen.filter((s) => s.path.endsWith('/listKeys')).length, 1, 'the key is listed once per backend');
      assert.equal(seen.find((s) => s.path.endsWith('/token'))!.form!.get('client_secret'), 'sp-secret');

      // a BSL naming the resource group and subscription itself; workload identity
      writeFileSync(path.join(dir, 'token'), 'federated-jwt\n');
      const wi = azureOptionsFromEnv(
        { AZURE_TENANT_ID: 'tenant-1', AZURE_CLIENT_ID: 'app-1', AZURE_FEDERATED_TOKEN_FILE: path.join(dir, 'token'), AZURE_RESOURCE_MANAGER_ENDPOINT: `${base}/arm`, AZURE_BLOB_ENDPOINT: az.url },
        { storageAccount: AZURITE_ACCOUNT, resourceGroup: 'rg-1', subscriptionId: 'sub-1', activeDirectoryAuthorityURI: base },
      );
      const wib = openAzureBackend({ container, prefix: 'velero/restic/ns' }, wi);
      assert.ok((await wib.load({ type: 'index', name })).equals(data));
      assert.equal(seen.filter((s) => s.form?.get('client_assertion') === 'federated-jwt').length, 1);

      // managed identity: no secret, no token file
      const mi = azureOptionsFromEnv({ AZURE_SUBSCRIPTION_ID: 'sub-1', AZURE_RESOURCE_GROUP: 'rg-1', AZURE_RESOURCE_MANAGER_ENDPOINT: `${base}/arm`, AZURE_BLOB_ENDPOINT: az.url }, { storageAccount: AZURITE_ACCOUNT });
      const mib = openAzureBackend({ container, prefix: 'velero/restic/ns' }, { ...mi, listKeys: { ...mi.listKeys!, imdsEndpoint: `${base}/imds` } });
      assert.ok((await mib.load({ type: 'index', name })).equals(data));

      // a wrong secret is a permission error (not retried), and its text never shows the secret
      const bad = openAzureBackend({ container, prefix: '' }, { ...mi, listKeys: { ...mi.listKeys!, tenantId: 'tenant-1', clientId: 'app-1', clientSecret: 'wrong', authorityHost: base } });
      await assert.rejects(bad.stat({ type: 'config', name: 'config' }), (e: unknown) => e instanceof CairnError && e.code === 'PERMISSION' && !/wrong/.test(e.message));
    } finally {
      fake.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('opens through openBackend("azure:container:/path") with restic variables', async () => {
    const container = `open-${randomBytes(4).toString('hex')}`;
    const env = { AZURE_ACCOUNT_NAME: AZURITE_ACCOUNT, AZURE_ACCOUNT_KEY: AZURITE_KEY, AZURE_BLOB_ENDPOINT: az.url };
    const b = await openBackend(`azure:${container}:/cl1/restic/shop`, { env });
    assert.equal(b.location, `azure:${container}:/cl1/restic/shop`);
    await b.create();
    const data = randomBytes(64);
    await b.save({ type: 'config', name: 'config' }, data);
    const blob = service.getContainerClient(container).getBlockBlobClient('cl1/restic/shop/config');
    assert.equal((await blob.getProperties()).contentLength, 64);
    await b.close();
  });
});

describe('Azure options from the environment (restic, Azure CLI, Velero)', () => {
  it("restic's variables", () => {
    const o = azureOptionsFromEnv({ AZURE_ACCOUNT_NAME: 'acct', AZURE_ACCOUNT_KEY: 'a2V5', AZURE_ENDPOINT_SUFFIX: 'core.example.net' });
    assert.equal(o.accountName, 'acct');
    assert.equal(o.accountKey, 'a2V5');
    assert.equal(o.endpointSuffix, 'core.example.net');
    assert.equal(azureOptionsFromEnv({ AZURE_ACCOUNT_NAME: 'a', AZURE_ACCOUNT_SAS: '?sv=1&sig=x' }).sasToken, '?sv=1&sig=x');
  });

  it('Azure CLI style names and a connection string', () => {
    const o = azureOptionsFromEnv({ AZURE_STORAGE_ACCOUNT: 'acct', AZURE_STORAGE_KEY: 'k', AZURE_STORAGE_CONNECTION_STRING: 'cs' });
    assert.deepEqual([o.accountName, o.accountKey, o.connectionString], ['acct', 'k', 'cs']);
  });

  it("Velero's credentials file, storageAccountKeyEnvVar and AZURE_CLOUD_NAME", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cairn-azcred-'));
    try {
      const file = path.join(dir, 'cloud');
      writeFileSync(
        file,
        [
          '# velero azure credentials',
          'AZURE_SUBSCRIPTION_ID=sub',
          'AZURE_RESOURCE_GROUP=rg',
          'AZURE_CLOUD_NAME=AzureChinaCloud',
          'AZURE_STORAGE_ACCOUNT_ID=fromfile',
          'AZURE_STORAGE_ACCOUNT_ACCESS_KEY="c2VjcmV0"',
          'MY_KEY_VAR=bXlrZXk=',
          '',
        ].join('\n'),
      );
      const viaEnv = azureOptionsFromEnv({ AZURE_CREDENTIALS_FILE: file });
      assert.equal(viaEnv.accountName, 'fromfile');
      assert.equal(viaEnv.accountKey, 'c2VjcmV0');
      assert.equal(viaEnv.endpointSuffix, 'core.chinacloudapi.cn');
      // a BSL: storageAccount from config, the key from the variable it names, its own credential file
      const bsl = azureOptionsFromEnv({ AZURE_ACCOUNT_KEY: 'ignored' }, { storageAccount: 'bslacct', storageAccountKeyEnvVar: 'MY_KEY_VAR', credentialsFile: file });
      assert.equal(bsl.accountName, 'bslacct');
      assert.equal(bsl.accountKey, 'bXlrZXk=');
      assert.throws(() => azureOptionsFromEnv({}, { storageAccountKeyEnvVar: 'MISSING', credentialsFile: file }), /MISSING/);
      assert.throws(() => azureOptionsFromEnv({ AZURE_CREDENTIALS_FILE: path.join(dir, 'nope') }), /cannot read Azure credentials file/);
      // the process environment wins over the file
      assert.equal(azureOptionsFromEnv({ AZURE_CREDENTIALS_FILE: file, AZURE_ACCOUNT_NAME: 'env' }).accountName, 'env');
      // storageAccountURI (a BSL's endpoint) becomes the service URL
      assert.equal(azureOptionsFromEnv({}, { storageAccountURI: 'https://x.privatelink.example' }).endpoint, 'https://x.privatelink.example');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('cloud names map to endpoint suffixes; unknown names are refused', () => {
    assert.equal(endpointSuffixForCloud(undefined), 'core.windows.net');
    assert.equal(endpointSuffixForCloud('AzurePublicCloud'), 'core.windows.net');
    assert.equal(endpointSuffixForCloud('AzureUSGovernmentCloud'), 'core.usgovcloudapi.net');
    assert.equal(endpointSuffixForCloud('azurechinacloud'), 'core.chinacloudapi.cn');
    assert.equal(endpointSuffixForCloud('AzureGermanCloud'), 'core.cloudapi.de');
    assert.throws(() => endpointSuffixForCloud('Mars'), /unknown AZURE_CLOUD_NAME/);
  });

  it('no credentials: a clear error naming the variables', () => {
    assert.throws(
      () => openAzureBackend({ container: 'c', prefix: '' }, {}),
      (e: unknown) => e instanceof CairnError && e.code === 'INVALID_ARGUMENT' && /AZURE_ACCOUNT_KEY/.test(e.message),
    );
  });
});
