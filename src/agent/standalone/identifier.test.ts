/** Repository identifiers exactly as Velero's server computes them (contract §5.1), and label shortening. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { BackupStorageLocation } from '../velero.js';
import { repositoryIdentifier, resticDir } from './identifier.js';
import { repositoryLeaseName, shortenLabel } from './labels.js';

function bsl(provider: string, bucket: string, prefix?: string, config: Record<string, string> = {}): BackupStorageLocation {
  return { metadata: { name: 'default', namespace: 'velero' }, spec: { provider, objectStorage: { bucket, ...(prefix !== undefined ? { prefix } : {}) }, config } };
}

const noLookup = { bucketRegion: async () => { throw new Error('no lookup expected'); } };

test('the restic directory of the object store layout', () => {
  assert.equal(resticDir(undefined), 'restic/');
  assert.equal(resticDir(''), 'restic/');
  assert.equal(resticDir('cl1'), 'cl1/restic/');
  assert.equal(resticDir('cl1/'), 'cl1/restic/');
  assert.equal(resticDir('a/b'), 'a/b/restic/');
});

test('AWS: region from the config, s3Url for S3-compatible stores (scheme kept, trailing slash dropped)', async () => {
  assert.equal(await repositoryIdentifier(bsl('aws', 'backups', 'cl1', { region: 'eu-west-1' }), 'shop', noLookup), 's3:s3-eu-west-1.amazonaws.com/backups/cl1/restic/shop');
  assert.equal(await repositoryIdentifier(bsl('velero.io/aws', 'velero', undefined, { region: 'us-east-2' }), 'app', noLookup), 's3:s3-us-east-2.amazonaws.com/velero/restic/app');
  assert.equal(
    await repositoryIdentifier(bsl('aws', 'velero', undefined, { region: 'minio', s3Url: 'http://minio.velero.svc:9000/' }), 'app', noLookup),
    's3:http://minio.velero.svc:9000/velero/restic/app',
  );
  // 1.10+: any provider with an s3Url is an S3-compatible store
  assert.equal(await repositoryIdentifier(bsl('community.example/s3', 'b', 'p', { s3Url: 'https://objects.example.com' }), 'n', noLookup), 's3:https://objects.example.com/b/p/restic/n');
});

test('AWS without a region asks for the bucket region; a failed lookup is an error (1.8+)', async () => {
  const asked: string[] = [];
  const id = await repositoryIdentifier(bsl('aws', 'far-bucket'), 'ns1', { bucketRegion: async (b) => (asked.push(b), 'ap-south-1') });
  assert.equal(id, 's3:s3-ap-south-1.amazonaws.com/far-bucket/restic/ns1');
  assert.deepEqual(asked, ['far-bucket']);
  await assert.rejects(repositoryIdentifier(bsl('aws', 'x'), 'n', { bucketRegion: async () => { throw new Error('403'); } }), /failed to detect the region via bucket: x/);
});

test('Azure and GCP', async () => {
  assert.equal(await repositoryIdentifier(bsl('azure', 'velero', 'cl1'), 'shop', noLookup), 'azure:velero:/cl1/restic/shop');
  assert.equal(await repositoryIdentifier(bsl('gcp', 'velero', 'cl1'), 'shop', noLookup), 'gs:velero:/cl1/restic/shop');
  assert.equal(await repositoryIdentifier(bsl('velero.io/gcp', 'bkt'), 'a', noLookup), 'gs:bkt:/restic/a');
});

test('resticRepoPrefix wins over everything, without bucket or prefix', async () => {
  assert.equal(await repositoryIdentifier(bsl('aws', 'b', 'p', { resticRepoPrefix: 'rest:https://h:8000/repos/', region: 'x' }), 'app', noLookup), 'rest:https://h:8000/repos/app');
  assert.equal(await repositoryIdentifier(bsl('replicated.com/hostpath', 'b', '/velero', { resticRepoPrefix: '/var/velero/restic' }), 'app', noLookup), '/var/velero/restic/app');
});

test('other providers without resticRepoPrefix are refused', async () => {
  await assert.rejects(repositoryIdentifier(bsl('velero.io/fancy', 'b'), 'app', noLookup), /no restic repository layout/);
});

test("label values longer than 63 characters are shortened Velero's way", () => {
  assert.equal(shortenLabel('short-name'), 'short-name');
  const long = 'a'.repeat(40) + '-' + 'b'.repeat(40);
  const sha = createHash('sha256').update(long).digest('hex');
  assert.equal(shortenLabel(long), long.slice(0, 57) + sha.slice(0, 6));
  assert.equal(shortenLabel(long).length, 63);
  assert.equal(shortenLabel('x'.repeat(63)), 'x'.repeat(63));
});

test('per-repository object names are stable DNS names', () => {
  const n = repositoryLeaseName('s3:s3-eu-west-1.amazonaws.com/backups/restic/shop');
  assert.match(n, /^cairn-repo-[0-9a-f]{20}$/);
  assert.equal(n, repositoryLeaseName('s3:s3-eu-west-1.amazonaws.com/backups/restic/shop'));
  assert.notEqual(n, repositoryLeaseName('s3:s3-eu-west-1.amazonaws.com/backups/restic/shop2'));
});
