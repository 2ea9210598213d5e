import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CairnError } from '../core/errors.js';
import { parseRepository, parseExtendedOptions, resolveS3Config, resolveRestConfig, openBackend, displayRepository, parseSize, parseDurationMs } from './open.js';
import { regionFromAwsHost, parseSharedCredentials } from './s3/config.js';
import { stripCredentials } from './errors.js';

function code(c: string) {
  return (e: unknown) => e instanceof CairnError && e.code === c;
}

describe('repository identifiers', () => {
  it('parses S3 identifiers as Velero and restic write them', () => {
    assert.deepEqual(parseRepository('s3:http://minio.velero.svc:9000/velero/restic/app'), {
      type: 's3',
      bucket: 'velero',
      prefix: 'restic/app',
      endpoint: 'http://minio.velero.svc:9000',
    });
    assert.deepEqual(parseRepository('s3:s3-eu-west-1.amazonaws.com/backups/cl1/restic/shop'), {
      type: 's3',
      bucket: 'backups',
      prefix: 'cl1/restic/shop',
      endpoint: 'https://s3-eu-west-1.amazonaws.com',
      region: 'eu-west-1',
    });
    const aws = parseRepository('s3:s3.amazonaws.com/bucket/restic/ns');
    assert.equal(aws.type, 's3');
    assert.equal((aws as { region?: string }).region, undefined, 's3.amazonaws.com means "discover the region"');
    assert.deepEqual(parseRepository('s3:https://127.0.0.1:7480/b'), { type: 's3', bucket: 'b', prefix: '', endpoint: 'https://127.0.0.1:7480' });
    assert.deepEqual(parseRepository('s3:storage.example.com:8443/b//p/'), { type: 's3', bucket: 'b', prefix: 'p', endpoint: 'https://storage.example.com:8443' });
    assert.deepEqual(parseRepository('s3://host/b/p'), { type: 's3', bucket: 'b', prefix: 'p', endpoint: 'https://host' });
    assert.equal((parseRepository('s3:s3.us-gov-west-1.amazonaws.com/b') as { region?: string }).region, 'us-gov-west-1');
  });

  it('parses azure, gs, rest and local identifiers', () => {
    assert.deepEqual(parseRepository('azure:velero:/cl1/restic/shop'), { type: 'azure', container: 'velero', prefix: 'cl1/restic/shop' });
    assert.deepEqual(parseRepository('azure:c:/'), { type: 'azure', container: 'c', prefix: '' });
    assert.deepEqual(parseRepository('gs:velero:/cl1/restic/shop'), { type: 'gs', bucket: 'velero', prefix: 'cl1/restic/shop' });
    assert.deepEqual(parseRepository('rest:https://u:p@host:8000/repo'), { type: 'rest', url: 'https://u:p@host:8000/repo' });
    assert.deepEqual(parseRepository('/srv/repo'), { type: 'local', path: '/srv/repo' });
    assert.deepEqual(parseRepository('local:/srv/repo'), { type: 'local', path: '/srv/repo' });
  });

  it('rejects malformed identifiers with the accepted forms and without credentials', () => {
    const cases = ['s3:', 's3:host', 's3:http://host/', 'azure:container', 'gs:bucket/x', 'rest:ftp://u:hunter2@host/x', 'rest:not a url'];
    for (const c of cases) {
      assert.throws(() => parseRepository(c), (e: unknown) => {
        assert.ok(e instanceof CairnError, c);
        assert.equal(e.code, 'INVALID_ARGUMENT', c);
        assert.match(e.message, /accepted forms/);
        assert.match(e.message, /s3:http\(s\):\/\/host/);
        assert.doesNotMatch(e.message, /hunter2/);
        return true;
      });
    }
    assert.throws(() => parseRepository('b2:bucket:path'), (e: unknown) => e instanceof CairnError && e.code === 'UNSUPPORTED' && /accepted forms/.test(e.message));
    assert.throws(() => parseRepository('s3:http://user:hunter2@host/b'), (e: unknown) => e instanceof CairnError && !e.message.includes('hunter2'));
    assert.throws(() => parseRepository(''), code('INVALID_ARGUMENT'));
  });

  it('strips credentials from anything printed', () => {
    assert.equal(stripCredentials('rest:https://user:pa%40ss@host:8000/repo'), 'rest:https://host:8000/repo');
    assert.equal(displayRepository('rest:http://u:p@h/r and s3:http://h/b'), 'rest:http://h/r and s3:http://h/b');
  });

  it('knows AWS host regions', () => {
    assert.equal(regionFromAwsHost('s3-eu-west-1.amazonaws.com'), 'eu-west-1');
    assert.equal(regionFromAwsHost('s3.ap-southeast-2.amazonaws.com'), 'ap-southeast-2');
    assert.equal(regionFromAwsHost('s3.amazonaws.com'), undefined);
    assert.equal(regionFromAwsHost('s3-external-1.amazonaws.com'), 'us-east-1');
    assert.equal(regionFromAwsHost('s3.cn-north-1.amazonaws.com.cn'), 'cn-north-1');
  });
});

describe('backend options', () => {
  it('parses -o options and rejects unknown or invalid ones', () => {
    assert.deepEqual(parseExtendedOptions(['s3.region=eu-central-1', 's3.list-objects-v1', 'rest.connections=8']), {
      's3.region': 'eu-central-1',
      's3.list-objects-v1': 'true',
      'rest.connections': '8',
    });
    assert.throws(() => parseExtendedOptions(['s3.nope=1']), (e: unknown) => e instanceof CairnError && /known options/.test(e.message));
    assert.throws(() => parseExtendedOptions(['s3.connections=0']), code('INVALID_ARGUMENT'));
    assert.throws(() => parseExtendedOptions(['s3.bucket-lookup=weird']), code('INVALID_ARGUMENT'));
    assert.throws(() => parseExtendedOptions(['=x']), code('INVALID_ARGUMENT'));
    assert.equal(parseSize('16MiB'), 16 << 20);
    assert.equal(parseSize('512k'), 512 << 10);
    assert.equal(parseDurationMs('1m30s'), 90_000);
  });

  it('fills S3 settings from restic variables, -o options and explicit overrides, in that order', () => {
    const base = { bucket: 'b', prefix: 'p', endpoint: 'http://h:1' };
    const env = { AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK', AWS_SESSION_TOKEN: 'T', AWS_DEFAULT_REGION: 'eu-west-3', AWS_PROFILE: 'prof' };
    const c = resolveS3Config(base, { env, extended: { 's3.bucket-lookup': 'dns', 's3.storage-class': 'STANDARD_IA', 's3.connections': '9' }, insecureSkipTLSVerify: true, caCerts: ['PEM'] });
    assert.equal(c.accessKeyId, 'AK');
    assert.equal(c.secretAccessKey, 'SK');
    assert.equal(c.sessionToken, 'T');
    assert.equal(c.region, 'eu-west-3');
    assert.equal(c.profile, 'prof');
    assert.equal(c.bucketLookup, 'dns');
    assert.equal(c.storageClass, 'STANDARD_IA');
    assert.equal(c.connections, 9);
    assert.equal(c.insecureSkipTLSVerify, true);
    assert.deepEqual(c.caCerts, ['PEM']);
    const o = resolveS3Config(base, { env, extended: { 's3.region': 'us-west-2' }, s3: { region: 'ap-south-1', bucketLookup: 'path' } });
    assert.equal(o.region, 'ap-south-1', 'explicit (BSL) settings win');
    assert.equal(o.bucketLookup, 'path');
    assert.equal(resolveS3Config(base, { env: {} }).checksumMode, undefined, 'WHEN_REQUIRED stays the default');
    const bsl = resolveS3Config(base, { env, s3: { sharedCredentials: '[default]\naws_access_key_id=B\naws_secret_access_key=S\n' } });
    assert.equal(bsl.accessKeyId, undefined, "a BSL's own credentials win over the environment's keys");
    assert.ok(bsl.sharedCredentials);
  });

  it('takes REST credentials from the environment only when the URL has none', () => {
    const env = { RESTIC_REST_USERNAME: 'eu', RESTIC_REST_PASSWORD: 'ep' };
    assert.deepEqual(resolveRestConfig({ url: 'http://h/r' }, { env }), { url: 'http://h/r', username: 'eu', password: 'ep' });
    assert.deepEqual(resolveRestConfig({ url: 'http://a:b@h/r' }, { env }), { url: 'http://a:b@h/r' });
  });

  it('reads static keys from shared-credentials text', () => {
    const text = '[default]\naws_access_key_id = AKD\naws_secret_access_key=SKD\n\n# comment\n[profile other]\naws_access_key_id=AKO\naws_secret_access_key = SKO\naws_session_token = TO\n';
    assert.deepEqual(parseSharedCredentials(text), { accessKeyId: 'AKD', secretAccessKey: 'SKD', sessionToken: undefined });
    assert.deepEqual(parseSharedCredentials(text, 'other'), { accessKeyId: 'AKO', secretAccessKey: 'SKO', sessionToken: 'TO' });
    assert.equal(parseSharedCredentials(text, 'missing'), undefined);
  });

  it('opens every scheme without contacting anything', async () => {
    for (const id of ['s3:http://127.0.0.1:1/b/p', 'rest:http://127.0.0.1:1/r']) {
      const b = await openBackend(id, { env: {} });
      assert.ok(!b.location.includes('@'));
      await b.close();
    }
    const r = await openBackend('rest:http://user:hunter2@127.0.0.1:1/r', { env: {} });
    assert.equal(r.location, 'rest:http://127.0.0.1:1/r/');
    await r.close();
    await assert.rejects(openBackend('s3:http://h/b', { extended: { 'no.such': '1' } }), code('INVALID_ARGUMENT'));
    // azure: and gs: go to the factories of their folders (loaded on demand)
    const g = await openBackend('gs:bucket:/some/prefix', { env: {}, gs: { projectId: 'p', apiEndpoint: 'http://127.0.0.1:1' }, extended: { 'gs.connections': '7' } });
    assert.equal(g.location, 'gs:bucket:/some/prefix');
    assert.equal(g.connections, 7);
    await g.close();
    const a = await openBackend('azure:container:/x/y', {
      env: { AZURE_ACCOUNT_NAME: 'devstoreaccount1', AZURE_ACCOUNT_KEY: Buffer.from('key').toString('base64') },
      azure: { endpoint: 'http://127.0.0.1:1/devstoreaccount1' },
    });
    assert.equal(a.location, 'azure:container:/x/y');
    await a.close();
  });
});
