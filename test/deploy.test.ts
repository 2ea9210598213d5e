/**
 * Checks the Kubernetes manifests under deploy/: they parse, core objects contain no field the
 * Kubernetes API does not know (typo guard via client-node's typed models), the kustomizations
 * are complete, and the facts Velero's server and the contract depend on hold (DaemonSet name and
 * labels, mount propagation, probes, least-privilege RBAC, CRD schemas without status
 * subresource and with the 1.10–1.16 phase enums).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { parseListenAddress } from '../src/agent/observability/server.js';
import { cairnCli, repoRoot } from './support/env.js';

// js-yaml comes with @kubernetes/client-node (a dependency); resolve it from there so hoisting
// does not matter. Only loadAll is needed.
const yaml = createRequire(import.meta.resolve('@kubernetes/client-node'))('js-yaml') as { loadAll(text: string): unknown[] };

type Obj = Record<string, any>;
const deployDir = path.join(repoRoot, 'deploy');

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

function load(file: string): Obj[] {
  return yaml.loadAll(fs.readFileSync(file, 'utf8')).filter((d) => d !== null && d !== undefined) as Obj[];
}

const rel = (p: string) => path.relative(deployDir, p);
const files = yamlFiles(deployDir);
const docs = new Map(files.map((f) => [rel(f), load(f)]));
const isKustomization = (d: Obj) => d.kind === 'Kustomization';
const isPatch = (file: string) => file.endsWith('-patch.yaml');

function one(kind: string, name: string, file?: string): Obj {
  const hits: Obj[] = [];
  for (const [f, ds] of docs) {
    if (file !== undefined && f !== file) continue;
    if (isPatch(f) || f.startsWith('examples/')) continue;
    for (const d of ds) if (d.kind === kind && d.metadata?.name === name) hits.push(d);
  }
  assert.equal(hits.length, 1, `exactly one ${kind}/${name} in deploy/ (found ${hits.length})`);
  return hits[0]!;
}

// ---------------------------------------------------------------------------------------------
// generic: parsing, typed models, kustomizations

test('every manifest parses, and every document is a Kubernetes object or a kustomization', () => {
  assert.ok(files.length >= 15, `found ${files.length} YAML files`);
  for (const [f, ds] of docs) {
    assert.ok(ds.length > 0, `${f} is empty`);
    for (const d of ds) {
      assert.equal(typeof d.apiVersion, 'string', `${f}: apiVersion`);
      assert.equal(typeof d.kind, 'string', `${f}: kind`);
      if (!isKustomization(d)) assert.equal(typeof d.metadata?.name, 'string', `${f}: ${d.kind} without metadata.name`);
    }
  }
});

const TYPED: Record<string, string> = {
  'v1/Namespace': 'V1Namespace',
  'v1/ServiceAccount': 'V1ServiceAccount',
  'v1/Secret': 'V1Secret',
  'v1/Pod': 'V1Pod',
  'v1/PersistentVolumeClaim': 'V1PersistentVolumeClaim',
  'apps/v1/DaemonSet': 'V1DaemonSet',
  'rbac.authorization.k8s.io/v1/Role': 'V1Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'V1RoleBinding',
  'rbac.authorization.k8s.io/v1/ClusterRole': 'V1ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'V1ClusterRoleBinding',
  'apiextensions.k8s.io/v1/CustomResourceDefinition': 'V1CustomResourceDefinition',
};

test('core objects hold only fields the Kubernetes API knows (a misspelt field would be dropped by the typed round trip)', () => {
  let checked = 0;
  for (const [f, ds] of docs) {
    if (isPatch(f)) continue; // strategic-merge directives ($patch) are not object fields
    for (const d of ds) {
      const type = TYPED[`${d.apiVersion}/${d.kind}`];
      if (!type) continue;
      // JSON round trip: the serializer leaves absent optional fields as undefined
      const back: unknown = JSON.parse(JSON.stringify(ObjectSerializer.serialize(ObjectSerializer.deserialize(d, type, ''), type, '')));
      assert.deepStrictEqual(back, d, `${f}: ${d.kind}/${d.metadata.name} has fields unknown to ${type}`);
      checked++;
    }
  }
  assert.ok(checked >= 15, `checked ${checked} objects`);
});

function kustomizationResources(dir: string): string[] {
  const k = load(path.join(dir, 'kustomization.yaml'))[0]!;
  return (k.resources as string[]).map((r) => path.resolve(dir, r));
}

/** Every manifest file a kustomization directory pulls in, recursively. */
function reachable(dir: string): Set<string> {
  const out = new Set<string>();
  for (const r of kustomizationResources(dir)) {
    assert.ok(fs.existsSync(r), `${rel(dir) || '.'}/kustomization.yaml lists missing ${rel(r)}`);
    if (fs.statSync(r).isDirectory()) {
      assert.ok(fs.existsSync(path.join(r, 'kustomization.yaml')), `${rel(r)} has no kustomization.yaml`);
      for (const x of reachable(r)) out.add(x);
    } else out.add(rel(r));
  }
  return out;
}

test('kustomizations: base = agent only (safe next to Velero); standalone = namespace + CRDs + agent; nothing is orphaned', () => {
  const base = reachable(deployDir);
  assert.deepEqual([...base].sort(), ['daemonset.yaml', 'rbac.yaml', 'serviceaccount.yaml']);
  const baseK = load(path.join(deployDir, 'kustomization.yaml'))[0]!;
  assert.equal(baseK.namespace, 'velero');
  assert.equal(baseK.commonLabels, undefined, 'commonLabels would change the immutable DaemonSet selector');
  assert.ok((baseK.images as Obj[]).some((i) => i.name === 'cairn'), 'image name matches the DaemonSet');

  const standalone = reachable(path.join(deployDir, 'standalone'));
  const crds = [...standalone].filter((f) => f.startsWith('crds/'));
  assert.equal(crds.length, 6);
  assert.ok(standalone.has('standalone/namespace.yaml'));
  for (const f of base) assert.ok(standalone.has(f), `standalone includes ${f}`);

  const optional = new Set(['crds/velero.io_resticrepositories.yaml']);
  for (const f of docs.keys()) {
    if (f.startsWith('examples/') || f.endsWith('kustomization.yaml') || optional.has(f)) continue;
    assert.ok(standalone.has(f), `${f} is not part of any kustomization`);
  }
  const ns = docs.get('standalone/namespace.yaml')![0]!;
  assert.equal(ns.metadata.name, baseK.namespace);
  assert.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged', 'hostPath volumes need the privileged level');
});

// ---------------------------------------------------------------------------------------------
// DaemonSet

const ds = one('DaemonSet', 'node-agent', 'daemonset.yaml');
const pod = ds.spec.template.spec;
const container = (pod.containers as Obj[])[0]!;
const byName = <T extends { name: string }>(list: T[] | undefined, name: string): T | undefined => list?.find((x) => x.name === name);

test("DaemonSet identity: Velero's name, selector and the pod labels its server probes", () => {
  assert.equal(ds.metadata.namespace, 'velero');
  assert.deepEqual(ds.spec.selector, { matchLabels: { name: 'node-agent' } }, "Velero's selector (immutable), so the stock DaemonSet can be replaced in place");
  const labels = ds.spec.template.metadata.labels;
  assert.equal(labels.name, 'node-agent', 'Velero 1.10–1.15 look for name=node-agent');
  assert.equal(labels.role, 'node-agent', 'Velero 1.16+ look for role=node-agent');
  assert.equal(labels.component, 'velero');
  assert.equal(pod.containers.length, 1);
  assert.equal(container.name, 'node-agent');
  assert.equal(pod.serviceAccountName, one('ServiceAccount', pod.serviceAccountName).metadata.name);
});

test('DaemonSet volumes: host pods and plugins with HostToContainer propagation, scratch, optional credentials', () => {
  const mount = (n: string) => byName(container.volumeMounts as Obj[] as Array<{ name: string } & Obj>, n);
  const vol = (n: string) => byName(pod.volumes as Array<{ name: string } & Obj>, n);
  assert.equal(vol('host-pods')?.hostPath?.path, '/var/lib/kubelet/pods');
  assert.equal(mount('host-pods')?.mountPath, '/host_pods');
  assert.equal(mount('host-pods')?.mountPropagation, 'HostToContainer');
  assert.notEqual(mount('host-pods')?.readOnly, true, 'restores write into the volumes');
  assert.equal(vol('host-plugins')?.hostPath?.path, '/var/lib/kubelet/plugins');
  assert.equal(mount('host-plugins')?.mountPath, '/var/lib/kubelet/plugins');
  assert.equal(mount('host-plugins')?.mountPropagation, 'HostToContainer');
  assert.deepEqual(vol('scratch')?.emptyDir, {});
  assert.equal(mount('scratch')?.mountPath, '/scratch');
  const creds = vol('cloud-credentials')?.secret;
  assert.equal(creds?.secretName, 'cloud-credentials');
  assert.equal(creds?.optional, true, 'the pod must start without the secret (workload identity)');
  assert.equal(creds?.defaultMode, 0o444);
  assert.equal(mount('cloud-credentials')?.mountPath, '/credentials');
  assert.equal(mount('cloud-credentials')?.readOnly, true);
  // every mount has a volume and every volume is mounted
  const volumeNames = new Set((pod.volumes as Obj[]).map((v) => v.name));
  const mounted = new Set((container.volumeMounts as Obj[]).map((m) => m.name));
  assert.deepEqual([...mounted].sort(), [...volumeNames].sort());
});

test('DaemonSet env: node and namespace from the downward API, scratch dir, credentials files', () => {
  const env = (n: string) => byName(container.env as Array<{ name: string } & Obj>, n);
  assert.deepEqual(env('NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
  assert.deepEqual(env('VELERO_NAMESPACE')?.valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
  assert.equal(env('VELERO_SCRATCH_DIR')?.value, '/scratch');
  for (const n of ['AWS_SHARED_CREDENTIALS_FILE', 'GOOGLE_APPLICATION_CREDENTIALS', 'AZURE_CREDENTIALS_FILE', 'ALIBABA_CLOUD_CREDENTIALS_FILE']) {
    assert.equal(env(n)?.value, '/credentials/cloud', n);
  }
});

test('DaemonSet security, placement, probes, port and resources', () => {
  assert.equal(pod.securityContext.runAsUser, 0);
  assert.equal(container.securityContext.privileged, false, 'privileged only through the documented patch');
  assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
  assert.equal(pod.tolerations, undefined, 'tolerations are opt-in (examples/tolerations-patch.yaml)');
  assert.equal(pod.hostNetwork, undefined);
  assert.equal(pod.hostPID, undefined);

  const port = byName(container.ports as Array<{ name: string } & Obj>, 'metrics');
  assert.equal(port?.containerPort, 8085);
  assert.deepEqual(container.livenessProbe.httpGet, { path: '/healthz', port: 'metrics' });
  assert.deepEqual(container.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
  const metricsArg = (container.args as string[]).find((a) => a.startsWith('--metrics-address='));
  assert.equal(parseListenAddress(metricsArg!.split('=')[1]!).port, 8085, 'the agent listens where the probes look');
  assert.equal(ds.spec.template.metadata.annotations['prometheus.io/port'], '8085');

  for (const k of ['requests', 'limits']) for (const r of ['cpu', 'memory']) assert.ok(container.resources[k][r], `resources.${k}.${r}`);
  assert.deepEqual(container.command, ['/usr/bin/tini', '--', 'cairn'], 'tini stays PID 1 even though command is set');
  assert.equal(container.args[0], 'agent');
});

test('DaemonSet args are flags `cairn agent` accepts', (t) => {
  const help = spawnSync(process.execPath, [cairnCli, 'agent', '--help'], { encoding: 'utf8' });
  if (help.status !== 0 || !help.stdout.includes('Usage: cairn agent')) {
    // commander answers an unknown command's --help with the program's help
    t.skip('`cairn agent` is not registered in this build');
    return;
  }
  for (const a of (container.args as string[]).slice(1)) {
    const flag = a.split('=')[0]!;
    assert.ok(help.stdout.includes(flag), `cairn agent --help does not list ${flag}`);
  }
});

// ---------------------------------------------------------------------------------------------
// RBAC

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
const role = one('Role', 'cairn-node-agent');
const clusterRole = one('ClusterRole', 'cairn-node-agent');

function allows(rules: Rule[], group: string, resource: string, verb: string, name?: string): boolean {
  return rules.some(
    (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb) && (r.resourceNames === undefined || (name !== undefined && r.resourceNames.includes(name))),
  );
}

test('RBAC: no wildcards, no dangerous verbs, bindings resolve to our roles and service account', () => {
  for (const r of [...(role.rules as Rule[]), ...(clusterRole.rules as Rule[])]) {
    for (const field of ['apiGroups', 'resources', 'verbs'] as const) assert.ok(!r[field].includes('*'), `wildcard in ${field}: ${JSON.stringify(r)}`);
    for (const v of r.verbs) assert.ok(['get', 'list', 'watch', 'create', 'update', 'patch'].includes(v), `verb ${v} in ${JSON.stringify(r)}`);
    for (const res of r.resources) assert.ok(!res.includes('/'), `subresource ${res}: PVB/PVR have no status subresource`);
  }
  assert.equal(role.metadata.namespace, 'velero');
  const sa = one('ServiceAccount', 'cairn-node-agent');
  for (const [kind, roleKind] of [['RoleBinding', 'Role'], ['ClusterRoleBinding', 'ClusterRole']] as const) {
    const b = one(kind, 'cairn-node-agent');
    assert.deepEqual(b.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: 'cairn-node-agent' });
    assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'velero' }]);
  }
  for (const ds2 of docs.values()) for (const d of ds2) assert.notEqual(d.roleRef?.name, 'cluster-admin');
});

test('RBAC: secrets, ConfigMaps and velero.io objects only in the Velero namespace; writes only where the agent writes', () => {
  const cr = clusterRole.rules as Rule[];
  const r = role.rules as Rule[];
  for (const res of ['secrets', 'configmaps']) {
    for (const v of ['get', 'list', 'watch', 'create', 'update', 'patch']) assert.equal(allows(cr, '', res, v), false, `cluster-wide ${v} ${res}`);
  }
  assert.ok(!cr.some((x) => x.apiGroups.includes('velero.io')), 'no cluster-wide velero.io access');
  assert.ok(allows(r, '', 'secrets', 'get'));
  for (const v of ['list', 'watch', 'create', 'update', 'patch']) assert.equal(allows(r, '', 'secrets', v), false, `secrets ${v}`);
  for (const v of ['list', 'watch']) assert.equal(allows(r, '', 'configmaps', v), false, `configmaps ${v}`);

  const writes = new Set<string>();
  for (const x of [...r, ...cr]) for (const v of x.verbs) if (['create', 'update', 'patch'].includes(v)) for (const res of x.resources) writes.add(`${res}:${v}`);
  assert.deepEqual([...writes].sort(), ['events:create', 'events:patch', 'podvolumebackups:patch', 'podvolumebackups:update', 'podvolumerestores:patch', 'podvolumerestores:update']);
});

test("RBAC: everything the agent needs (contract §12.3) is granted", () => {
  const r = role.rules as Rule[];
  const cr = clusterRole.rules as Rule[];
  for (const res of ['podvolumebackups', 'podvolumerestores']) for (const v of ['get', 'list', 'watch', 'update', 'patch']) assert.ok(allows(r, 'velero.io', res, v), `${v} ${res}`);
  for (const res of ['backupstoragelocations', 'backuprepositories', 'resticrepositories', 'backups', 'restores']) for (const v of ['get', 'list', 'watch']) assert.ok(allows(r, 'velero.io', res, v), `${v} ${res}`);
  assert.ok(allows(r, '', 'configmaps', 'get'));
  for (const v of ['get', 'list', 'watch']) assert.ok(allows(cr, '', 'pods', v), `${v} pods`);
  for (const res of ['persistentvolumeclaims', 'persistentvolumes']) assert.ok(allows(cr, '', res, 'get'), res);
  assert.ok(allows(cr, '', 'nodes', 'get'));
  assert.ok(allows(cr, 'storage.k8s.io', 'csidrivers', 'get'));
  for (const n of ['podvolumebackups.velero.io', 'podvolumerestores.velero.io', 'backuprepositories.velero.io', 'resticrepositories.velero.io']) {
    assert.ok(allows(cr, 'apiextensions.k8s.io', 'customresourcedefinitions', 'get', n), n);
  }
  assert.equal(allows(cr, 'apiextensions.k8s.io', 'customresourcedefinitions', 'get', 'secrets-of-others.example.com'), false, 'CRD reads are limited by name');
  assert.ok(allows(cr, '', 'events', 'create'), 'events on pods in their own namespaces');
});

// ---------------------------------------------------------------------------------------------
// CRDs

const crd = (plural: string) => one('CustomResourceDefinition', `${plural}.velero.io`);
const schemaOf = (c: Obj) => (c.spec.versions as Obj[])[0]!.schema.openAPIV3Schema as Obj;

/** Minimal structural-schema validation: types, enums, required, unknown fields, nullable. */
function validate(value: unknown, s: Obj, at: string, errors: string[]): void {
  if (at === '.metadata') return; // ObjectMeta is validated by the API server, not by the CRD schema
  if (value === null) {
    if (!s.nullable) errors.push(`${at}: null not allowed`);
    return;
  }
  const t = s.type as string | undefined;
  const actual = Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
  if (t && !(t === actual || (t === 'number' && actual === 'integer'))) {
    errors.push(`${at}: ${actual}, schema says ${t}`);
    return;
  }
  if (s.enum && !(s.enum as unknown[]).includes(value)) errors.push(`${at}: ${JSON.stringify(value)} not in enum ${JSON.stringify(s.enum)}`);
  if (actual === 'array' && s.items) (value as unknown[]).forEach((x, i) => validate(x, s.items as Obj, `${at}[${i}]`, errors));
  if (actual === 'object') {
    const o = value as Obj;
    for (const req of (s.required as string[] | undefined) ?? []) if (!(req in o)) errors.push(`${at}.${req}: required`);
    for (const [k, v] of Object.entries(o)) {
      const p = s.properties?.[k] as Obj | undefined;
      if (p) validate(v, p, `${at}.${k}`, errors);
      else if (s.additionalProperties) validate(v, s.additionalProperties as Obj, `${at}.${k}`, errors);
      else if (!s['x-kubernetes-preserve-unknown-fields']) errors.push(`${at}.${k}: unknown field (would be pruned)`);
    }
  }
}

function errorsFor(obj: unknown, c: Obj): string[] {
  const errors: string[] = [];
  validate(obj, schemaOf(c), '', errors);
  return errors;
}

test('CRDs: velero.io/v1, namespaced, names from the file name, no status subresource, structural schemas', () => {
  const plurals = ['podvolumebackups', 'podvolumerestores', 'backupstoragelocations', 'backuprepositories', 'resticrepositories', 'backups', 'restores'];
  for (const plural of plurals) {
    const c = crd(plural);
    assert.ok(docs.has(`crds/velero.io_${plural}.yaml`));
    assert.equal(c.spec.group, 'velero.io');
    assert.equal(c.spec.scope, 'Namespaced');
    assert.equal(c.spec.names.plural, plural);
    assert.equal((c.spec.versions as Obj[]).length, 1);
    const v = (c.spec.versions as Obj[])[0]!;
    assert.equal(v.name, 'v1');
    assert.equal(v.served, true);
    assert.equal(v.storage, true);
    assert.equal(v.subresources?.status, undefined, `${plural}: Velero's CRDs have no status subresource`);
    // structural: every declared node has a type unless it preserves unknown fields
    const walk = (s: Obj, at: string) => {
      if (!s.type && !s['x-kubernetes-preserve-unknown-fields']) assert.fail(`${plural}${at}: no type`);
      for (const [k, p] of Object.entries((s.properties as Record<string, Obj>) ?? {})) walk(p, `${at}.${k}`);
      if (s.items) walk(s.items as Obj, `${at}[]`);
      if (s.additionalProperties) walk(s.additionalProperties as Obj, `${at}{}`);
    };
    walk(schemaOf(c), '');
    // printer columns point at declared fields
    for (const col of (v.additionalPrinterColumns as Obj[] | undefined) ?? []) {
      if (String(col.jsonPath).startsWith('.metadata.')) continue;
      let s: Obj | undefined = schemaOf(c);
      for (const part of String(col.jsonPath).slice(1).split('.')) s = s?.properties?.[part] as Obj | undefined;
      assert.ok(s, `${plural}: printer column ${col.name} → ${col.jsonPath} is not in the schema`);
    }
  }
  assert.deepEqual(crd('backupstoragelocations').spec.names.shortNames, ['bsl']);
});

test('CRDs: phase enums of Velero 1.10–1.16 (no Canceled/Accepted/Prepared)', () => {
  for (const plural of ['podvolumebackups', 'podvolumerestores']) {
    assert.deepEqual(schemaOf(crd(plural)).properties.status.properties.phase.enum, ['New', 'InProgress', 'Completed', 'Failed'], plural);
  }
  for (const plural of ['backuprepositories', 'resticrepositories']) {
    assert.deepEqual(schemaOf(crd(plural)).properties.status.properties.phase.enum, ['New', 'Ready', 'NotReady'], plural);
  }
  for (const plural of ['backups', 'restores']) {
    const phases = schemaOf(crd(plural)).properties.status.properties.phase.enum as string[];
    for (const p of ['New', 'InProgress', 'Completed', 'PartiallyFailed', 'Failed']) assert.ok(phases.includes(p), `${plural} ${p}`);
  }
});

const pvbFromServer = {
  apiVersion: 'velero.io/v1',
  kind: 'PodVolumeBackup',
  metadata: { name: 'nightly-x7k2p', namespace: 'velero', labels: { 'velero.io/pvc-uid': 'c0ffee' } },
  spec: {
    node: 'worker-1',
    pod: { kind: 'Pod', namespace: 'shop', name: 'shop-db', uid: '1f0e' },
    volume: 'data',
    backupStorageLocation: 'default',
    repoIdentifier: 's3:http://minio.minio.svc:9000/velero/cluster-1/restic/shop',
    uploaderType: 'restic',
    tags: { backup: 'nightly', 'backup-uid': 'u1', ns: 'shop', pod: 'shop-db', 'pod-uid': '1f0e', volume: 'data', 'pvc-uid': 'c0ffee' },
    uploaderSettings: null,
  },
};

test('CRDs: what the server creates and what the agent writes fits the schemas; what older servers reject is rejected', () => {
  const pvb = crd('podvolumebackups');
  assert.deepEqual(errorsFor(pvbFromServer, pvb), []);
  const completed = {
    ...pvbFromServer,
    status: {
      phase: 'Completed',
      path: '/host_pods/1f0e/volumes/kubernetes.io~csi/pvc-1/mount',
      snapshotID: '1a2b3c4d',
      message: '',
      startTimestamp: '2026-01-01T00:00:00Z',
      completionTimestamp: '2026-01-01T00:01:00Z',
      progress: { totalBytes: 1000, bytesDone: 1000 },
    },
  };
  assert.deepEqual(errorsFor(completed, pvb), []);
  assert.match(errorsFor({ ...completed, status: { phase: 'Canceled' } }, pvb).join('\n'), /not in enum/);
  assert.match(errorsFor({ ...pvbFromServer, spec: { ...pvbFromServer.spec, uploaderType: 'rsync' } }, pvb).join('\n'), /not in enum/);
  assert.match(errorsFor({ ...completed, status: { incrementalBytes: 5 } }, pvb).join('\n'), /incrementalBytes: unknown field/, '1.18 fields are pruned by a 1.16 CRD');
  const noNode = { ...pvbFromServer, spec: { ...pvbFromServer.spec } } as Obj;
  delete noNode.spec.node;
  assert.match(errorsFor(noNode, pvb).join('\n'), /\.spec\.node: required/);

  const pvr = {
    apiVersion: 'velero.io/v1',
    kind: 'PodVolumeRestore',
    metadata: { name: 'r-1', namespace: 'velero' },
    spec: {
      pod: { kind: 'Pod', namespace: 'shop', name: 'shop-db', uid: '2a2a' },
      volume: 'data',
      backupStorageLocation: 'default',
      repoIdentifier: 's3:http://minio.minio.svc:9000/velero/cluster-1/restic/shop',
      snapshotID: '1a2b3c4d',
      sourceNamespace: 'shop',
      uploaderType: 'restic',
      uploaderSettings: { WriteSparseFiles: 'true' },
    },
    status: { phase: 'InProgress', startTimestamp: '2026-01-01T00:00:00Z', progress: { totalBytes: 10, bytesDone: 3 } },
  };
  assert.deepEqual(errorsFor(pvr, crd('podvolumerestores')), []);

  const repo = {
    apiVersion: 'velero.io/v1',
    kind: 'BackupRepository',
    metadata: { name: 'shop-default-restic' },
    spec: { volumeNamespace: 'shop', backupStorageLocation: 'default', repositoryType: 'restic', resticIdentifier: 's3:…', maintenanceFrequency: '168h0m0s' },
    status: { phase: 'Ready', recentMaintenance: [{ result: 'Succeeded', startTimestamp: '2026-01-01T00:00:00Z', completeTimestamp: null }] },
  };
  assert.deepEqual(errorsFor(repo, crd('backuprepositories')), []);
});

// ---------------------------------------------------------------------------------------------
// examples

test('example app: the backup-volumes annotation names existing volumes, without spaces; its PVC exists', () => {
  const ex = docs.get('examples/app-with-pvc.yaml')!;
  const p = ex.find((d) => d.kind === 'Pod')!;
  const annotation = p.metadata.annotations['backup.velero.io/backup-volumes'] as string;
  const names = annotation.split(','); // Velero splits without trimming
  const volumes = new Set((p.spec.volumes as Obj[]).map((v) => v.name));
  for (const n of names) assert.ok(volumes.has(n), `annotation names ${JSON.stringify(n)}, not a pod volume`);
  for (const v of p.spec.volumes as Obj[]) {
    if (v.persistentVolumeClaim) assert.ok(ex.some((d) => d.kind === 'PersistentVolumeClaim' && d.metadata.name === v.persistentVolumeClaim.claimName && d.metadata.namespace === p.metadata.namespace));
  }
});

test('example BSL fits the CRD; its secrets have the names and keys the DaemonSet and the agent use', () => {
  const ex = docs.get('examples/backup-storage-location.yaml')!;
  const bsl = ex.find((d) => d.kind === 'BackupStorageLocation')!;
  assert.deepEqual(errorsFor(bsl, crd('backupstoragelocations')), []);
  const cloud = ex.find((d) => d.kind === 'Secret' && d.metadata.name === 'cloud-credentials')!;
  const mounted = (pod.volumes as Obj[]).find((v) => v.name === 'cloud-credentials')!.secret;
  assert.equal(cloud.metadata.name, mounted.secretName);
  assert.ok('cloud' in cloud.stringData, 'key "cloud" becomes /credentials/cloud');
  const repoPw = ex.find((d) => d.kind === 'Secret' && d.metadata.name === 'velero-repo-credentials')!;
  assert.ok('repository-password' in repoPw.stringData);
  for (const d of ex) assert.equal(d.metadata.namespace, 'velero');
});

test('example patches target the DaemonSet and its container; each changes what it says', () => {
  const patch = (f: string) => docs.get(`examples/${f}`)![0]!;
  for (const f of ['privileged-patch.yaml', 'tolerations-patch.yaml', 'workload-identity-patch.yaml']) {
    const p = patch(f);
    assert.equal(p.kind, 'DaemonSet', f);
    assert.equal(p.metadata.name, ds.metadata.name, f);
    assert.equal(p.metadata.namespace, ds.metadata.namespace, f);
    for (const c of (p.spec.template.spec.containers as Obj[] | undefined) ?? []) assert.equal(c.name, container.name, `${f}: container name is the merge key`);
  }
  assert.equal(patch('privileged-patch.yaml').spec.template.spec.containers[0].securityContext.privileged, true);
  assert.ok((patch('tolerations-patch.yaml').spec.template.spec.tolerations as Obj[]).length > 0);
  const deleted = (patch('workload-identity-patch.yaml').spec.template.spec.containers[0].env as Obj[]).map((e) => {
    assert.equal(e.$patch, 'delete');
    return e.name as string;
  });
  const credentialVars = (container.env as Obj[]).filter((e) => e.value === '/credentials/cloud').map((e) => e.name as string);
  assert.deepEqual(deleted.sort(), credentialVars.sort());
});
