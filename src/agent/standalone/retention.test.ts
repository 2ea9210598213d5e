/** Retention over whole backups of a cairn series; policy encoding on the lease; Go durations. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRetention, decodePolicy, encodePolicy, policiesFromAnnotations, seriesBackups, type ListedSnapshot } from './retention.js';
import { dueWork, parseGoDuration } from './maintenance.js';

function snap(id: string, time: string, tags: string[]): ListedSnapshot {
  return { id: id.padEnd(64, '0'), snapshot: { time, tree: 'f'.repeat(64), paths: ['/host_pods/x'], hostname: 'velero', tags } } as ListedSnapshot;
}

test('snapshots are grouped into the backups of one series; other series and Velero snapshots are ignored', () => {
  const list = [
    snap('a1', '2026-01-01T01:00:05Z', ['backup=n-1', 'backup-uid=u1', 'cairn-schedule=nightly', 'volume=a']),
    snap('a2', '2026-01-01T01:00:01Z', ['backup=n-1', 'backup-uid=u1', 'cairn-schedule=nightly', 'volume=b']),
    snap('b1', '2026-01-02T01:00:00Z', ['backup=n-2', 'backup-uid=u2', 'cairn-schedule=nightly']),
    snap('c1', '2026-01-02T02:00:00Z', ['backup=h-1', 'backup-uid=u3', 'cairn-schedule=hourly']),
    snap('v1', '2026-01-02T03:00:00Z', ['backup=velero-made', 'backup-uid=u4']),
  ];
  const s = seriesBackups(list, 'nightly');
  assert.deepEqual(s.map((b) => [b.uid, b.name, b.time, b.snapshots.length]), [
    ['u1', 'n-1', '2026-01-01T01:00:01Z', 2],
    ['u2', 'n-2', '2026-01-02T01:00:00Z', 1],
  ]);
});

test('restic policy rules decide per backup', () => {
  const backups = [1, 2, 3, 4, 5].map((d) => ({ uid: `u${d}`, name: `b${d}`, time: `2026-01-0${d}T12:00:00Z`, snapshots: [`s${d}`] }));
  const now = Date.parse('2026-01-06T00:00:00Z');
  const last2 = decideRetention(backups, { last: 2 }, now);
  assert.deepEqual(last2.keep.map((b) => b.name), ['b5', 'b4']);
  assert.deepEqual(last2.remove.map((b) => b.name), ['b3', 'b2', 'b1']);
  const within = decideRetention(backups, decodePolicy('within=3d'), now); // newer than 3 days before the newest (b2 sits exactly on the threshold)
  assert.deepEqual(within.keep.map((b) => b.name), ['b5', 'b4', 'b3']);
  assert.deepEqual(decideRetention(backups, {}, now).remove, []);
});

test('policies round-trip through the lease annotation', () => {
  const p = decodePolicy('last=3, daily=7,weekly=4,within=1y2m,within-daily=30d');
  assert.equal(encodePolicy(p), 'last=3,daily=7,weekly=4,within=1y2m,within-daily=30d');
  assert.throws(() => decodePolicy('fortnightly=2'), /unknown rule/);
  assert.throws(() => decodePolicy('last=-1'), /non-negative/);
  const { policies, errors } = policiesFromAnnotations({ 'retention.cairn.io/nightly': 'last=2', 'retention.cairn.io/bad': 'x=1', 'other/x': 'y' });
  assert.deepEqual([...policies.keys()], ['nightly']);
  assert.equal(errors.length, 1);
});

test("Go durations of maintenanceFrequency", () => {
  assert.equal(parseGoDuration('168h0m0s'), 168 * 3600_000);
  assert.equal(parseGoDuration('1h30m'), 90 * 60_000);
  assert.equal(parseGoDuration('500ms'), 500);
  assert.equal(parseGoDuration('1.5s'), 1500);
  assert.equal(parseGoDuration('7d'), undefined);
  assert.equal(parseGoDuration(''), undefined);
});

test('due work: the lease record, the CR frequency and the CR last maintenance time', () => {
  const s = { pruneIntervalMs: 3600_000, checkIntervalMs: 0, retryLockMs: 0 };
  const ref = { identifier: 'x', storageLocation: 'default' };
  const now = Date.parse('2026-01-01T12:00:00Z');
  assert.deepEqual(dueWork(undefined, ref, s, now), { prune: true, check: false });
  assert.deepEqual(dueWork({ 'maintenance.cairn.io/last-prune': '2026-01-01T11:30:00Z' }, ref, s, now), { prune: false, check: false });
  assert.deepEqual(dueWork({ 'maintenance.cairn.io/last-prune': '2026-01-01T10:30:00Z' }, ref, s, now), { prune: true, check: false });
  // the CR says every 2h: not due yet
  assert.equal(dueWork({ 'maintenance.cairn.io/last-prune': '2026-01-01T10:30:00Z' }, { ...ref, frequencyMs: 2 * 3600_000 }, s, now).prune, false);
  // Velero's server maintained it 10 minutes ago
  assert.equal(dueWork(undefined, { ...ref, lastMaintenanceMs: now - 600_000 }, s, now).prune, false);
  assert.equal(dueWork(undefined, ref, { ...s, checkIntervalMs: 1000 }, now).check, true);
});
