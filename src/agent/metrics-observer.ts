/** Connects the controllers' hooks to the observability module's metrics. */
import type { AgentMetrics, Operation, Outcome } from './observability/index.js';
import { veleroLatencyLabels } from './observability/index.js';
import type { AgentObserver, ItemKind } from './context.js';

const op = (k: ItemKind): Operation => (k === 'pvb' ? 'backup' : 'restore');

function outcomeOf(phase: string): Outcome {
  if (phase === 'Completed') return 'completed';
  if (phase === 'Canceled') return 'canceled';
  return 'failed';
}

export function metricsObserver(m: AgentMetrics): AgentObserver {
  return {
    enqueued: (kind) => {
      if (kind === 'pvb') m.podVolumeBackupEnqueued();
    },
    started: (kind) => m.operationStarted(op(kind)),
    queued: (kind, n) => m.setQueued(op(kind), n),
    finished: (kind, info) => {
      const seconds = info.durationMs / 1000;
      m.operationFinished({
        operation: op(kind),
        outcome: outcomeOf(info.phase),
        seconds,
        bytes: info.bytes,
        bytesAdded: info.bytesAdded,
        errorCode: info.errorCode,
      });
      if (kind === 'pvb') {
        m.podVolumeBackupDequeued();
        if (info.phase === 'Completed') {
          m.podVolumeOperationLatency(
            veleroLatencyLabels({
              name: info.name,
              namespace: info.namespace,
              backupName: info.owner,
              backupStorageLocation: info.backupStorageLocation,
              podNamespace: info.podNamespace,
              uploaderType: info.uploaderType,
            }),
            seconds,
          );
        }
      }
    },
  };
}
