import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CairnError } from '../../core/errors.js';
import { REDACTED, isSecretKey, redact, redactText } from './redact.js';

test('secret keys: by name at any depth and in any spelling; references to secrets are kept', () => {
  for (const k of ['password', 'repository-password', 'repositoryPassword', 'RESTIC_PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'secretAccessKey', 'AWS_SESSION_TOKEN', 'token', 'clientSecret', 'AZURE_ACCOUNT_KEY', 'accountKey', 'credentials', 'Authorization', 'cookie', 'privateKey', 'connectionString']) {
    assert.equal(isSecretKey(k), true, k);
  }
  for (const k of ['passwordFile', 'credentialsFile', 'secretName', 'caCertRef', 'AWS_SHARED_CREDENTIALS_FILE', 'keyHint', 'snapshotID', 'name', 'node', 'tokens_total_count']) {
    assert.equal(isSecretKey(k), false, k);
  }
});

test('redact: nested objects, arrays, Maps, Kubernetes Secrets; the input is not modified', () => {
  const input = {
    repo: 's3:https://AKIA123:sup3r-secret@minio.velero.svc:9000/velero/restic/app',
    bsl: { config: { region: 'us-east-1', 'repository-password': 'static-passw0rd' }, credential: { name: 'cloud-credentials', key: 'cloud' } },
    list: [{ password: 'x1' }, 'plain'],
    object: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'velero-repo-credentials' }, data: { 'repository-password': 'c3RhdGlj', other: 'b3RoZXI=' } },
    map: new Map([['token', 'abc']]),
    emptyPassword: '',
    count: 3,
    when: new Date(0),
  };
  const before = JSON.stringify(input.bsl);
  const out = redact(input) as Record<string, any>;
  assert.equal(out.repo, `s3:https://${REDACTED}@minio.velero.svc:9000/velero/restic/app`);
  assert.equal(out.bsl.config.region, 'us-east-1');
  assert.equal(out.bsl.config['repository-password'], REDACTED);
  assert.equal(out.bsl.credential, REDACTED);
  assert.deepEqual(out.list, [{ password: REDACTED }, 'plain']);
  assert.equal(out.object.data, REDACTED);
  assert.equal(out.object.metadata.name, 'velero-repo-credentials');
  assert.deepEqual(out.map, { token: REDACTED });
  assert.equal(out.emptyPassword, '', 'an empty value says "not set" and is kept');
  assert.equal(out.count, 3);
  assert.ok(out.when instanceof Date);
  assert.equal(JSON.stringify(input.bsl), before);
  assert.doesNotMatch(JSON.stringify(out), /sup3r-secret|static-passw0rd|c3RhdGlj|x1"|abc/);
});

test('redact: errors become plain objects with scrubbed message, stack, extras and cause; cycles end', () => {
  const cause = new Error('GET https://user:pw@blob.example/c failed');
  const e = new CairnError('BACKEND', 'cannot open rest:https://admin:hunter2@rest.example/repo', { cause, object: 'config' });
  const out = redact({ err: e }) as { err: Record<string, any> };
  assert.equal(out.err.type, 'CairnError');
  assert.equal(out.err.code, 'BACKEND');
  assert.equal(out.err.object, 'config');
  assert.equal(out.err.message, `cannot open rest:https://${REDACTED}@rest.example/repo`);
  assert.doesNotMatch(out.err.stack, /hunter2/);
  assert.doesNotMatch(JSON.stringify(out.err.cause), /pw@/);
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  assert.deepEqual(redact(cyclic), { a: 1, self: '[Circular]' });
  assert.equal(redact(Buffer.alloc(5)), '[5 bytes]');
});

test('redactText: userinfo, authorization headers, connection-string secrets; ordinary text untouched', () => {
  assert.equal(redactText('https://u:p@host/x and http://v@other'), `https://${REDACTED}@host/x and http://${REDACTED}@other`);
  assert.equal(redactText('https://user:p@ss@host:9000/b'), `https://${REDACTED}@host:9000/b`, 'an @ inside the password');
  assert.equal(redactText('https://host/path?email=a@b.c'), 'https://host/path?email=a@b.c', 'an @ after the path is not userinfo');
  assert.equal(redactText('Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.abc.def'), `Authorization: Bearer ${REDACTED}`);
  assert.equal(
    redactText('DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=ZmFrZWtleQ==;EndpointSuffix=core.windows.net'),
    `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${REDACTED};EndpointSuffix=core.windows.net`,
  );
  assert.equal(redactText('RESTIC_PASSWORD=abc123 restic snapshots'), `RESTIC_PASSWORD=${REDACTED} restic snapshots`);
  const plain = 'backed up /host_pods/0b1c/volumes/kubernetes.io~csi/pvc-1/mount: 12 files, s3:s3-eu-west-1.amazonaws.com/bucket/restic/ns';
  assert.equal(redactText(plain), plain);
});
