/**
 * Per-repository random passwords: `cairn k8s backup --random-password` gives a new repository its
 * own password in Secret cairn-repo-<hash> (the installation password does not open it, the agents
 * use it); `cairn k8s repo-password` migrates an existing repository by adding a key (restic
 * `key add`), and removes the installation password's key only on request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restic, requireRestic, mustOk } from '../support/env.js';
import { writeFiles, type Obj } from '../support/agent.js';
import { parseJson, startStandalone } from '../support/k8s.js';
import { repositoryPasswordSecretName } from '../../src/agent/standalone/labels.js';

test('random per-repository passwords for new repositories, and migrating an existing one with key add', async (t) => {
  if (!requireRestic(t)) return;
  const s = await startStandalone({ velero: '1.16' });
  t.after(() => s.close());
  const a1 = s.agent('node-1');
  await a1.ready();
  const installation = s.c.password;
  const opens = async (repo: string, password: string) => (await restic(['cat', 'config', '-r', repo], { env: { RESTIC_PASSWORD: password } })).code === 0;
  const secretPassword = async (name: string) => {
    const sec = await s.http.get('v1', 'Secret', 'velero', name);
    return Buffer.from(sec.data['repository-password'], 'base64').toString();
  };

  // --- a new repository with its own password ---
  await s.namespace('vault');
  const v = await s.pod({ name: 'v-0', namespace: 'vault', node: 'node-1', annotations: { 'backup.velero.io/backup-volumes': 'd' }, volumes: [{ name: 'd', emptyDir: {} }] });
  writeFiles(v.dirs.d!, { 'k.txt': 'secret stuff\n' });
  const b = await s.k8s(['backup', '--namespace', 'vault', '--random-password', '--wait', '--json']);
  assert.equal(b.code, 0, b.stderr);
  const out = parseJson(b, 'backup');
  assert.equal(out.phase, 'Completed', JSON.stringify(out.volumes));
  assert.deepEqual(out.repositories.map((r: Obj) => [r.created, r.passwordSource]), [[true, 'repository']]);
  const secretName = repositoryPasswordSecretName(s.repo('vault'));
  const sec = await s.http.get('v1', 'Secret', 'velero', secretName);
  assert.equal(sec.metadata.labels['app.kubernetes.io/managed-by'], 'cairn');
  const own = await secretPassword(secretName);
  assert.ok(own.length >= 40 && own !== installation);
  assert.equal(await opens(s.repo('vault'), own), true);
  assert.equal(await opens(s.repo('vault'), installation), false, "the installation's well-known password does not open it");
  assert.ok(a1.logs.some((l) => l.msg === 'pod volume backup finished' && l.phase === 'Completed' && l.pod === 'vault/v-0'), 'the agent read the per-repository secret');

  // --- migrating an existing repository (made with the installation password) ---
  const w = await s.pod({ name: 'w-0', namespace: 'app', node: 'node-1', annotations: { 'backup.velero.io/backup-volumes': 'd' }, volumes: [{ name: 'd', emptyDir: {} }] });
  writeFiles(w.dirs.d!, { 'a.txt': 'before\n' });
  assert.equal((await s.k8s(['backup', '--namespace', 'app', '--name', 'before', '--wait'])).code, 0);
  const keysBefore = JSON.parse(mustOk(await restic(['key', 'list', '--json', '-r', s.repo('app')], { env: { RESTIC_PASSWORD: installation } }), 'key list').stdout) as Obj[];
  assert.equal(keysBefore.length, 1);

  const m = await s.k8s(['repo-password', '--namespace', 'app', '--json']);
  assert.equal(m.code, 0, m.stderr);
  const mig = parseJson(m, 'repo-password');
  assert.equal(mig.already, false);
  assert.equal(mig.secret, repositoryPasswordSecretName(s.repo('app')));
  const newPassword = await secretPassword(mig.secret);
  assert.equal(await opens(s.repo('app'), newPassword), true);
  assert.equal(await opens(s.repo('app'), installation), true, 'the old key stays until asked (a Velero server may still use it)');
  const keys = JSON.parse(mustOk(await restic(['key', 'list', '--json', '-r', s.repo('app')], { env: { RESTIC_PASSWORD: newPassword } }), 'key list').stdout) as Obj[];
  assert.equal(keys.length, 2);

  // backups and restores keep working through the new secret
  writeFiles(w.dirs.d!, { 'a.txt': 'after\n' });
  const after = await s.k8s(['backup', '--namespace', 'app', '--name', 'after', '--wait', '--json']);
  assert.equal(parseJson(after, 'after').repositories[0].passwordSource, 'repository');
  assert.equal(parseJson(after, 'after').phase, 'Completed');

  const again = parseJson(await s.k8s(['repo-password', '--namespace', 'app', '--remove-old-key', '--json']), 'remove old key');
  assert.equal(again.already, true);
  assert.ok(String(again.removedKeyId).startsWith(keysBefore[0]!.id), `removed ${again.removedKeyId}, the installation key was ${keysBefore[0]!.id}`);
  assert.equal(await opens(s.repo('app'), installation), false, 'the installation password no longer opens it');
  assert.equal(await opens(s.repo('app'), newPassword), true);
  const last = await s.k8s(['backup', '--namespace', 'app', '--name', 'last', '--wait', '--json']);
  assert.equal(parseJson(last, 'last').phase, 'Completed');
  mustOk(await restic(['check', '-r', s.repo('app')], { env: { RESTIC_PASSWORD: newPassword } }), 'restic check');
});
