/**
 * Prometheus metrics of the node agent. Two families:
 *
 *  - Velero's own series, with Velero's names and labels, so existing dashboards and alerts keep
 *    working after the swap (contract §11.4): `podVolume_*` (Velero 1.10+), and on request the
 *    ≤1.9 `restic_*` names, fed by the same calls.
 *  - cairn's series (`cairn_*`): outcomes, durations, bytes, files and errors per operation.
 *
 * Every metric lives in a private Registry (never prom-client's global one), so several agents in
 * one test process do not collide.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Operation = 'backup' | 'restore';
export type Outcome = 'completed' | 'failed' | 'canceled';

const OPERATIONS: readonly Operation[] = ['backup', 'restore'];
const OUTCOMES: readonly Outcome[] = ['completed', 'failed', 'canceled'];

/** Velero's latency histogram buckets: 1, 5, 10, 15, 30 minutes, 1, 2, 3, 4 hours. */
export const VELERO_LATENCY_BUCKETS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 14400];
/** cairn's duration buckets also resolve the small volumes that finish in seconds. */
export const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800];

/** The label values of Velero's latency series (`podVolume_pod_volume_operation_latency_seconds`). */
export interface VeleroLatencyLabels {
  operation: string;
  backupName: string;
  podVolumeBackup: string;
}

/** What Velero's agent puts into the latency labels for a completed PodVolumeBackup. */
export interface PodVolumeBackupRef {
  /** metadata.name and metadata.namespace of the PVB. */
  name: string;
  namespace: string;
  /** Name of the owning Backup (the PVB's owner reference). */
  backupName: string;
  backupStorageLocation: string;
  /** spec.pod.namespace */
  podNamespace: string;
  /** spec.uploaderType as found on the object ("" on objects from Velero ≤1.9). */
  uploaderType: string;
}

/**
 * Velero labels a PVB's latency with operation `<pvb>-<bsl>-<pod namespace>-<uploader>-backup`
 * and backupName `<velero namespace>/<backup>`; dashboards group by these, so we do the same.
 */
export function veleroLatencyLabels(pvb: PodVolumeBackupRef): VeleroLatencyLabels {
  return {
    operation: `${pvb.name}-${pvb.backupStorageLocation}-${pvb.podNamespace}-${pvb.uploaderType}-backup`,
    backupName: `${pvb.namespace}/${pvb.backupName}`,
    podVolumeBackup: pvb.name,
  };
}

/** The end of one PodVolumeBackup/PodVolumeRestore, for cairn's own series. */
export interface OperationRecord {
  operation: Operation;
  outcome: Outcome;
  /** Wall time from start (InProgress) to the terminal write. */
  seconds: number;
  /** Bytes read from the volume (backup) or written to it (restore). */
  bytes?: number;
  /** Backup only: bytes of new data stored in the repository (restic's "data added"). */
  bytesAdded?: number;
  files?: number;
  /** For failures: an error code (CairnError code or a short reason); bounded vocabulary only. */
  errorCode?: string;
}

/** The recording side the controllers use. All methods are cheap and never throw. */
export interface AgentMetrics {
  /** A PVB for this node was queued (Velero: `podVolume_pod_volume_backup_enqueue_count`). */
  podVolumeBackupEnqueued(): void;
  /** A PVB left the queue finished (Velero counts it when the backup completes). */
  podVolumeBackupDequeued(): void;
  /** Velero's latency histogram + gauge for one finished pod volume operation. */
  podVolumeOperationLatency(labels: VeleroLatencyLabels, seconds: number): void;
  /** An operation started: raises the in-progress gauge until operationFinished(). */
  operationStarted(operation: Operation): void;
  operationFinished(r: OperationRecord): void;
  /** Items waiting for a concurrency slot right now. */
  setQueued(operation: Operation, n: number): void;
  /** An error that did not (yet) end an operation, e.g. a failed status write that is retried. */
  errorObserved(operation: Operation, code: string): void;
}

export interface MetricsOptions {
  node: string;
  /** Also publish Velero ≤1.9's `restic_*` names (for dashboards of old installs). */
  legacyResticMetrics?: boolean;
  /** process_* and nodejs_* metrics (default true). */
  defaultMetrics?: boolean;
  /** Is the agent ready? Exported as `cairn_agent_ready` at scrape time. */
  ready?: () => boolean;
}

export function createMetrics(o: MetricsOptions): { registry: Registry; metrics: AgentMetrics } {
  const registry = new Registry();
  const node = o.node;

  // --- Velero's names (1.10+: namespace "podVolume"; ≤1.9: namespace "restic") ---
  const veleroFamilies = [makeVeleroFamily('podVolume', 'pod_volume_operation_latency_seconds', registry)];
  if (o.legacyResticMetrics) veleroFamilies.push(makeVeleroFamily('restic', 'restic_operation_latency_seconds', registry));
  for (const f of veleroFamilies) {
    // Velero initialises the per-node counters with 0 so rate() works from the first scrape.
    f.enqueue.inc({ node }, 0);
    f.dequeue.inc({ node }, 0);
  }

  // --- cairn's own ---
  const operations = new Counter({
    name: 'cairn_pod_volume_operations_total',
    help: 'Pod volume backups and restores finished, by outcome',
    labelNames: ['node', 'operation', 'outcome'] as const,
    registers: [registry],
  });
  const inProgress = new Gauge({
    name: 'cairn_pod_volume_operations_in_progress',
    help: 'Pod volume backups and restores running now',
    labelNames: ['node', 'operation'] as const,
    registers: [registry],
  });
  const queued = new Gauge({
    name: 'cairn_pod_volume_operations_queued',
    help: 'Pod volume backups and restores waiting for a concurrency slot',
    labelNames: ['node', 'operation'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'cairn_pod_volume_operation_duration_seconds',
    help: 'Time from start to the terminal status of a pod volume backup or restore, in seconds',
    labelNames: ['node', 'operation', 'outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'cairn_pod_volume_bytes_total',
    help: 'Bytes read from volumes (backup) or written to them (restore)',
    labelNames: ['node', 'operation'] as const,
    registers: [registry],
  });
  const bytesAdded = new Counter({
    name: 'cairn_pod_volume_backup_bytes_added_total',
    help: 'Bytes of new data stored in repositories by pod volume backups (after deduplication, before compression)',
    labelNames: ['node'] as const,
    registers: [registry],
  });
  const files = new Counter({
    name: 'cairn_pod_volume_files_total',
    help: 'Files backed up or restored',
    labelNames: ['node', 'operation'] as const,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'cairn_pod_volume_errors_total',
    help: 'Errors of pod volume operations, by error code',
    labelNames: ['node', 'operation', 'code'] as const,
    registers: [registry],
  });
  if (o.ready) {
    const ready = o.ready;
    new Gauge({
      name: 'cairn_agent_ready',
      help: '1 when the agent is ready to take work (as /readyz reports), else 0',
      labelNames: ['node'] as const,
      registers: [registry],
      collect() {
        let v = 0;
        try {
          v = ready() ? 1 : 0;
        } catch {
          v = 0;
        }
        this.set({ node }, v);
      },
    });
  }
  for (const operation of OPERATIONS) {
    for (const outcome of OUTCOMES) operations.inc({ node, operation, outcome }, 0);
    inProgress.set({ node, operation }, 0);
    queued.set({ node, operation }, 0);
    bytes.inc({ node, operation }, 0);
    files.inc({ node, operation }, 0);
  }
  bytesAdded.inc({ node }, 0);
  if (o.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  const nonNegative = (n: number | undefined): number => (typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : 0);
  const metrics: AgentMetrics = {
    podVolumeBackupEnqueued() {
      for (const f of veleroFamilies) f.enqueue.inc({ node });
    },
    podVolumeBackupDequeued() {
      for (const f of veleroFamilies) f.dequeue.inc({ node });
    },
    podVolumeOperationLatency(l, seconds) {
      const labels = { node, operation: l.operation, backupName: l.backupName, pod_volume_backup: l.podVolumeBackup };
      // Velero truncates to whole seconds (float64(d / time.Second)).
      const s = Math.floor(nonNegative(seconds));
      for (const f of veleroFamilies) {
        f.latency.observe(labels, s);
        f.latencyGauge.set(labels, s);
      }
    },
    operationStarted(operation) {
      inProgress.inc({ node, operation });
    },
    operationFinished(r) {
      const { operation, outcome } = r;
      inProgress.dec({ node, operation });
      operations.inc({ node, operation, outcome });
      duration.observe({ node, operation, outcome }, nonNegative(r.seconds));
      bytes.inc({ node, operation }, nonNegative(r.bytes));
      files.inc({ node, operation }, nonNegative(r.files));
      if (operation === 'backup') bytesAdded.inc({ node }, nonNegative(r.bytesAdded));
      if (outcome === 'failed') errors.inc({ node, operation, code: r.errorCode || 'unknown' });
    },
    setQueued(operation, n) {
      queued.set({ node, operation }, nonNegative(n));
    },
    errorObserved(operation, code) {
      errors.inc({ node, operation, code: code || 'unknown' });
    },
  };
  return { registry, metrics };
}

function makeVeleroFamily(namespace: 'podVolume' | 'restic', latencyName: string, registry: Registry) {
  const latencyLabels = ['node', 'operation', 'backupName', 'pod_volume_backup'] as const;
  return {
    enqueue: new Counter({
      name: `${namespace}_pod_volume_backup_enqueue_count`,
      help: 'Total number of pod_volume_backup objects enqueued',
      labelNames: ['node'] as const,
      registers: [registry],
    }),
    dequeue: new Counter({
      name: `${namespace}_pod_volume_backup_dequeue_count`,
      help: 'Total number of pod_volume_backup objects dequeued',
      labelNames: ['node'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: `${namespace}_${latencyName}`,
      help: 'Time taken to complete pod volume operations, in seconds',
      labelNames: latencyLabels,
      buckets: VELERO_LATENCY_BUCKETS,
      registers: [registry],
    }),
    latencyGauge: new Gauge({
      name: `${namespace}_${latencyName}_gauge`,
      help: 'Gauge metric indicating time taken, in seconds, to perform pod volume operations',
      labelNames: latencyLabels,
      registers: [registry],
    }),
  };
}
