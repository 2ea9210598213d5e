/** What the controllers share: configuration, API client, caches, running items and hooks. */
import type * as k8s from '@kubernetes/client-node';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { AgentConfig } from './config.js';
import type { Capabilities } from './capabilities.js';
import type { Informer } from './informer.js';
import { apiErrorMessage, type KubeClient, type KubeEvent } from './kube.js';
import type { AgentState } from './state.js';
import type { StatusWriter } from './status.js';
import type { BackupStorageLocation, ObjectMeta, OwnerObject, PodVolumeBackup, PodVolumeRestore, RepositoryCR } from './velero.js';

export type ItemKind = 'pvb' | 'pvr';

/** Why running work was stopped; decides the terminal phase and message. */
export interface CancelReason {
  kind: 'cancel' | 'owner' | 'deleted' | 'shutdown';
  message: string;
}

export interface RunningItem {
  kind: ItemKind;
  uid: string;
  name: string;
  ownerUid?: string;
  controller: AbortController;
  cancel?: CancelReason;
  writer?: StatusWriter;
  /** Run when the item ends (closing backends). */
  cleanup: Array<() => Promise<unknown>>;
}

/** The end of one item, for metrics. */
export interface FinishedInfo {
  name: string;
  namespace: string;
  /** Name of the owning Backup/Restore. */
  owner: string;
  backupStorageLocation: string;
  podNamespace: string;
  /** spec.uploaderType as found on the object. */
  uploaderType: string;
  phase: string;
  durationMs: number;
  bytes?: number;
  bytesAdded?: number;
  /** CairnError code (or CANCELLED) for failures. */
  errorCode?: string;
}

/** Hooks for metrics: called by the controllers, implemented by the observability module. */
export interface AgentObserver {
  enqueued?(kind: ItemKind): void;
  started?(kind: ItemKind): void;
  finished?(kind: ItemKind, info: FinishedInfo): void;
  queued?(kind: ItemKind, n: number): void;
}

export interface AgentContext {
  cfg: AgentConfig;
  kube: KubeClient;
  log: Logger;
  clock: Clock;
  state: AgentState;
  caps: Capabilities;
  pvbs: Informer<PodVolumeBackup>;
  pvrs: Informer<PodVolumeRestore>;
  pods: Informer<k8s.V1Pod>;
  bsls: Informer<BackupStorageLocation>;
  backups: Informer<OwnerObject>;
  restores: Informer<OwnerObject>;
  repos: Informer<RepositoryCR>;
  running: Map<string, RunningItem>;
  /** Key file that opened each repository last time (saves trying every key). */
  keyHints: Map<string, string>;
  observer: AgentObserver;
  events: EventRecorder;
}

export function shutdownReason(kind: ItemKind): CancelReason {
  const what = kind === 'pvb' ? 'pod volume backup' : 'pod volume restore';
  return { kind: 'shutdown', message: `the node agent was stopped while the ${what} was running; restic-path work cannot be resumed` };
}

export function abortItem(item: RunningItem, reason: CancelReason): void {
  if (item.cancel) return;
  item.cancel = reason;
  item.controller.abort(Object.assign(new Error(reason.message), { code: 'CANCELLED' }));
}

/** Kubernetes Events for failures, on the PVB/PVR and on the pod (best effort). */
export class EventRecorder {
  constructor(
    private readonly kube: KubeClient,
    private readonly host: string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  async emit(namespace: string, ev: KubeEvent): Promise<void> {
    try {
      await this.kube.createEvent(namespace, ev, 'cairn-agent', this.host, this.clock.now());
    } catch (e) {
      this.log.debug('could not record event', { reason: ev.reason, error: apiErrorMessage(e) });
    }
  }

  veleroRef(kind: 'PodVolumeBackup' | 'PodVolumeRestore', meta: ObjectMeta): KubeEvent['involved'] {
    return { kind, apiVersion: 'velero.io/v1', namespace: meta.namespace, name: meta.name, uid: meta.uid };
  }
}
