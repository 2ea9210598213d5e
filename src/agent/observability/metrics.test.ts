import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics, veleroLatencyLabels } from './metrics.js';

/** The value of one sample line of the text exposition, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const kv of (m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) have[kv[1]!] = kv[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

test("Velero's series: names, labels, zero-initialised node counters, whole-second latency", async () => {
  const { registry, metrics } = createMetrics({ node: 'worker-1', defaultMetrics: false });
  let text = await registry.metrics();
  assert.equal(sample(text, 'podVolume_pod_volume_backup_enqueue_count', { node: 'worker-1' }), 0);
  assert.equal(sample(text, 'podVolume_pod_volume_backup_dequeue_count', { node: 'worker-1' }), 0);
  assert.equal(sample(text, 'restic_pod_volume_backup_enqueue_count'), undefined, 'legacy names only on request');

  metrics.podVolumeBackupEnqueued();
  metrics.podVolumeBackupEnqueued();
  metrics.podVolumeBackupDequeued();
  const labels = veleroLatencyLabels({ name: 'nightly-x7k2p', namespace: 'velero', backupName: 'nightly', backupStorageLocation: 'default', podNamespace: 'shop', uploaderType: 'restic' });
  assert.deepEqual(labels, { operation: 'nightly-x7k2p-default-shop-restic-backup', backupName: 'velero/nightly', podVolumeBackup: 'nightly-x7k2p' });
  metrics.podVolumeOperationLatency(labels, 125.9);
  text = await registry.metrics();
  assert.equal(sample(text, 'podVolume_pod_volume_backup_enqueue_count', { node: 'worker-1' }), 2);
  assert.equal(sample(text, 'podVolume_pod_volume_backup_dequeue_count', { node: 'worker-1' }), 1);
  const l = { node: 'worker-1', operation: labels.operation, backupName: 'velero/nightly', pod_volume_backup: 'nightly-x7k2p' };
  assert.equal(sample(text, 'podVolume_pod_volume_operation_latency_seconds_gauge', l), 125);
  assert.equal(sample(text, 'podVolume_pod_volume_operation_latency_seconds_sum', l), 125);
  assert.equal(sample(text, 'podVolume_pod_volume_operation_latency_seconds_count', l), 1);
  assert.equal(sample(text, 'podVolume_pod_volume_operation_latency_seconds_bucket', { ...l, le: '60' }), 0);
  assert.equal(sample(text, 'podVolume_pod_volume_operation_latency_seconds_bucket', { ...l, le: '300' }), 1);
  assert.equal(sample(text, 'podVolume_pod_volume_operation_latency_seconds_bucket', { ...l, le: '14400' }), 1);
  assert.match(text, /# TYPE podVolume_pod_volume_operation_latency_seconds histogram/);
  assert.match(text, /# TYPE podVolume_pod_volume_backup_enqueue_count counter/);
});

test('legacy restic_* names (Velero ≤1.9) are fed by the same calls', async () => {
  const { registry, metrics } = createMetrics({ node: 'n', legacyResticMetrics: true, defaultMetrics: false });
  metrics.podVolumeBackupEnqueued();
  metrics.podVolumeOperationLatency({ operation: 'op', backupName: 'velero/b', podVolumeBackup: 'p' }, 7);
  const text = await registry.metrics();
  assert.equal(sample(text, 'restic_pod_volume_backup_enqueue_count', { node: 'n' }), 1);
  assert.equal(sample(text, 'podVolume_pod_volume_backup_enqueue_count', { node: 'n' }), 1);
  assert.equal(sample(text, 'restic_pod_volume_backup_dequeue_count', { node: 'n' }), 0);
  assert.equal(sample(text, 'restic_restic_operation_latency_seconds_gauge', { operation: 'op' }), 7);
  assert.equal(sample(text, 'restic_restic_operation_latency_seconds_count', { operation: 'op' }), 1);
});

test("cairn's series: outcomes, in-progress, durations, bytes, files, errors", async () => {
  let ready = false;
  const { registry, metrics } = createMetrics({ node: 'n', defaultMetrics: false, ready: () => ready });
  let text = await registry.metrics();
  assert.equal(sample(text, 'cairn_pod_volume_operations_total', { operation: 'restore', outcome: 'failed' }), 0, 'pre-initialised');
  assert.equal(sample(text, 'cairn_agent_ready', { node: 'n' }), 0);

  metrics.operationStarted('backup');
  metrics.operationStarted('backup');
  metrics.operationStarted('restore');
  metrics.setQueued('backup', 4);
  text = await registry.metrics();
  assert.equal(sample(text, 'cairn_pod_volume_operations_in_progress', { operation: 'backup' }), 2);
  assert.equal(sample(text, 'cairn_pod_volume_operations_queued', { operation: 'backup' }), 4);

  metrics.operationFinished({ operation: 'backup', outcome: 'completed', seconds: 12.5, bytes: 1000, bytesAdded: 300, files: 7 });
  metrics.operationFinished({ operation: 'backup', outcome: 'failed', seconds: 2, bytes: 10, errorCode: 'BACKEND' });
  metrics.operationFinished({ operation: 'restore', outcome: 'canceled', seconds: -1, bytes: Number.NaN });
  metrics.errorObserved('restore', 'CONFLICT');
  ready = true;
  text = await registry.metrics();
  assert.equal(sample(text, 'cairn_pod_volume_operations_in_progress', { operation: 'backup' }), 0);
  assert.equal(sample(text, 'cairn_pod_volume_operations_in_progress', { operation: 'restore' }), 0);
  assert.equal(sample(text, 'cairn_pod_volume_operations_total', { operation: 'backup', outcome: 'completed' }), 1);
  assert.equal(sample(text, 'cairn_pod_volume_operations_total', { operation: 'backup', outcome: 'failed' }), 1);
  assert.equal(sample(text, 'cairn_pod_volume_operations_total', { operation: 'restore', outcome: 'canceled' }), 1);
  assert.equal(sample(text, 'cairn_pod_volume_operation_duration_seconds_sum', { operation: 'backup', outcome: 'completed' }), 12.5);
  assert.equal(sample(text, 'cairn_pod_volume_operation_duration_seconds_bucket', { operation: 'backup', outcome: 'completed', le: '15' }), 1);
  assert.equal(sample(text, 'cairn_pod_volume_operation_duration_seconds_sum', { operation: 'restore', outcome: 'canceled' }), 0, 'negative durations clamp to 0');
  assert.equal(sample(text, 'cairn_pod_volume_bytes_total', { operation: 'backup' }), 1010);
  assert.equal(sample(text, 'cairn_pod_volume_bytes_total', { operation: 'restore' }), 0, 'NaN is ignored');
  assert.equal(sample(text, 'cairn_pod_volume_backup_bytes_added_total', { node: 'n' }), 300);
  assert.equal(sample(text, 'cairn_pod_volume_files_total', { operation: 'backup' }), 7);
  assert.equal(sample(text, 'cairn_pod_volume_errors_total', { operation: 'backup', code: 'BACKEND' }), 1);
  assert.equal(sample(text, 'cairn_pod_volume_errors_total', { operation: 'restore', code: 'CONFLICT' }), 1);
  assert.equal(sample(text, 'cairn_agent_ready', { node: 'n' }), 1);
});

test('two agents in one process do not share a registry; default process metrics are on by default', async () => {
  const a = createMetrics({ node: 'a' });
  const b = createMetrics({ node: 'b', defaultMetrics: false });
  a.metrics.podVolumeBackupEnqueued();
  assert.equal(sample(await b.registry.metrics(), 'podVolume_pod_volume_backup_enqueue_count', { node: 'b' }), 0);
  const text = await a.registry.metrics();
  assert.ok(sample(text, 'process_resident_memory_bytes') !== undefined || sample(text, 'process_cpu_seconds_total') !== undefined);
  assert.equal(sample(await b.registry.metrics(), 'process_cpu_seconds_total'), undefined);
});
