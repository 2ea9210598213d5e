/**
 * The manifests for running without Velero: the standalone kustomization switches the agents'
 * maintenance on and grants exactly what it needs; the CronJob example runs a `cairn k8s backup`
 * whose flags exist, under RBAC that covers what the command does; the restore target opts in the
 * way `cairn k8s restore` expects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { cairnCli, repoRoot } from './support/env.js';
import { restoreWaitOf } from '../src/agent/standalone/restore.js';

const yaml = createRequire(import.meta.resolve('@kubernetes/client-node'))('js-yaml') as { loadAll(text: string): unknown[] };
type Obj = Record<string, any>;
const load = (rel: string) => yaml.loadAll(fs.readFileSync(path.join(repoRoot, 'deploy', rel), 'utf8')).filter(Boolean) as Obj[];
const find = (docs: Obj[], kind: string, name?: string) => docs.find((d) => d.kind === kind && (name === undefined || d.metadata?.name === name))!;

function allows(rules: Obj[], group: string, resource: string, verb: string): boolean {
  return rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
}

test('standalone: the agents run with --maintenance and may use Leases and delete PVBs of forgotten backups, nothing more', () => {
  const k = load('standalone/kustomization.yaml')[0]!;
  assert.ok((k.resources as string[]).includes('maintenance-rbac.yaml'));
  const patch = yaml.loadAll((k.patches as Obj[])[0]!.patch as string)[0] as Obj[];
  assert.deepEqual(patch, [{ op: 'add', path: '/spec/template/spec/containers/0/args/-', value: '--maintenance' }]);
  assert.equal((k.patches as Obj[])[0]!.target.name, 'node-agent');
  const help = spawnSync(process.execPath, [cairnCli, 'agent', '--help'], { encoding: 'utf8' }).stdout;
  assert.match(help, /--maintenance\b/);
  const docs = load('standalone/maintenance-rbac.yaml');
  const role = find(docs, 'Role');
  assert.equal(role.metadata.namespace, 'velero');
  for (const v of ['get', 'list', 'create', 'update']) assert.ok(allows(role.rules, 'coordination.k8s.io', 'leases', v), v);
  assert.ok(allows(role.rules, 'velero.io', 'podvolumebackups', 'delete'));
  assert.equal(role.rules.length, 2);
  const binding = find(docs, 'RoleBinding');
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'cairn-node-agent', namespace: 'velero' }]);
  assert.equal(binding.roleRef.name, role.metadata.name);
});

test('CronJob example: `cairn k8s backup` with flags the command accepts, and RBAC for what it does', () => {
  const docs = load('examples/backup-cronjob.yaml');
  const cj = find(docs, 'CronJob');
  const c = cj.spec.jobTemplate.spec.template.spec.containers[0];
  assert.deepEqual(c.args.slice(0, 2), ['k8s', 'backup']);
  const help = spawnSync(process.execPath, [cairnCli, 'k8s', 'backup', '--help'], { encoding: 'utf8' }).stdout;
  for (const a of c.args.slice(2) as string[]) assert.ok(help.includes(a.split('=')[0]!), `cairn k8s backup --help lists ${a}`);
  assert.equal(cj.spec.concurrencyPolicy, 'Forbid', 'one backup of a series at a time');
  assert.equal(cj.spec.jobTemplate.spec.template.spec.serviceAccountName, find(docs, 'ServiceAccount').metadata.name);
  const role = find(docs, 'Role').rules as Obj[];
  for (const [g, r, v] of [
    ['velero.io', 'podvolumebackups', 'create'],
    ['velero.io', 'podvolumebackups', 'list'],
    ['velero.io', 'podvolumebackups', 'delete'],
    ['velero.io', 'backupstoragelocations', 'list'],
    ['', 'secrets', 'get'],
    ['', 'secrets', 'create'],
    ['coordination.k8s.io', 'leases', 'update'],
  ] as const) {
    assert.ok(allows(role, g, r, v), `${v} ${r}`);
  }
  const cr = find(docs, 'ClusterRole').rules as Obj[];
  for (const [r, v] of [['pods', 'list'], ['persistentvolumeclaims', 'list'], ['persistentvolumes', 'get'], ['namespaces', 'get']] as const) assert.ok(allows(cr, '', r, v), `${v} ${r}`);
  assert.ok(!cr.some((x) => x.resources.includes('secrets')), 'no cluster-wide secrets');
});

test('restore target example: the restore-wait init container comes first, mounts what it waits for, and names a token cairn can resolve', () => {
  const dep = find(load('examples/restore-target.yaml'), 'Deployment');
  const spec = dep.spec.template.spec;
  assert.equal(spec.initContainers[0].name, 'restore-wait');
  const pod = { metadata: { uid: '0b7c6a4e-1111-2222-3333-444455556666', name: 'shop-db-abc', namespace: 'shop-restored', annotations: dep.spec.template.metadata.annotations }, spec } as k8s.V1Pod;
  const w = restoreWaitOf(pod)!;
  assert.equal(w.problem, undefined);
  assert.equal(w.token, pod.metadata!.uid);
  for (const m of w.container.volumeMounts!) assert.equal(m.mountPath, `/restores/${m.name}`);
  assert.ok(dep.spec.template.metadata.annotations['restore.cairn.io/source-pod']);
});
