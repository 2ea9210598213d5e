/**
 * CustomResourceDefinitions of the velero.io/v1 kinds the node agent reads or writes, shaped like
 * the ones a given Velero release installs (config/crd/v1/bases in the Velero repository): field
 * names, types, required lists, enums, nullability and defaults as in that release, descriptions
 * and printer columns left out. The differences between releases that matter to an agent:
 *
 *  - PodVolumeBackup / PodVolumeRestore phase enum: New, InProgress, Completed, Failed up to 1.16;
 *    New, Accepted, Prepared, InProgress, Canceling, Canceled, Completed, Failed from 1.17.
 *  - spec.uploaderType (1.10), spec.uploaderSettings (1.13), spec.cancel and status.acceptedTimestamp
 *    (1.17), status.node on PVRs (1.17), status.incrementalBytes on PVBs and spec.snapshotSize on PVRs (1.18).
 *  - ResticRepository up to 1.9, BackupRepository from 1.10 (repositoryConfig 1.15, recentMaintenance 1.16,
 *    resticIdentifier no longer required from 1.17).
 *  - BackupStorageLocation objectStorage.caCertRef (1.18).
 *  - Backup and Restore phase enums per release. Their hooks are kept as free-form objects
 *    (x-kubernetes-preserve-unknown-fields) rather than Velero's full hook schema.
 *
 * None of these CRDs has a status subresource, in any release.
 */
import type { JSONSchemaProps } from './schema.js';
import type { KObj } from './util.js';

/** "1.9", "1.10", ... "1.18". */
export type VeleroVersion = string;

export const PHASES_4 = ['New', 'InProgress', 'Completed', 'Failed'];
export const PHASES_8 = ['New', 'Accepted', 'Prepared', 'InProgress', 'Canceling', 'Canceled', 'Completed', 'Failed'];

function minorOf(version: VeleroVersion): number {
  const m = /^v?1\.(\d+)(\.\d+)?$/.exec(version);
  if (!m) throw new Error(`not a Velero 1.x version: ${version}`);
  const minor = Number(m[1]);
  if (minor < 6) throw new Error(`Velero ${version} predates the CRDs modelled here (1.6+)`);
  return minor;
}

/** The phase enum of PodVolumeBackup / PodVolumeRestore in a Velero release. */
export function podVolumePhases(version: VeleroVersion): string[] {
  return minorOf(version) >= 17 ? [...PHASES_8] : [...PHASES_4];
}

// --- schema building blocks ------------------------------------------------------------------

const str = (): JSONSchemaProps => ({ type: 'string' });
const int = (): JSONSchemaProps => ({ type: 'integer' });
const int64 = (): JSONSchemaProps => ({ type: 'integer', format: 'int64' });
const bool = (): JSONSchemaProps => ({ type: 'boolean' });
const time = (): JSONSchemaProps => ({ type: 'string', format: 'date-time', nullable: true });
const oneOf = (values: string[]): JSONSchemaProps => ({ type: 'string', enum: values });
const strMap = (nullable = false): JSONSchemaProps => ({ type: 'object', additionalProperties: str(), ...(nullable ? { nullable: true } : {}) });
const strList = (nullable = true): JSONSchemaProps => ({ type: 'array', items: str(), ...(nullable ? { nullable: true } : {}) });

function obj(properties: Record<string, JSONSchemaProps | undefined>, required?: string[], extra: Partial<JSONSchemaProps> = {}): JSONSchemaProps {
  const props: Record<string, JSONSchemaProps> = {};
  for (const [k, v] of Object.entries(properties)) if (v) props[k] = v;
  const s: JSONSchemaProps = { type: 'object', properties: props, ...extra };
  if (required && required.length) s.required = required;
  return s;
}

/** corev1.ObjectReference, as the pod reference of PVBs and PVRs. */
function objectReference(minor: number): JSONSchemaProps {
  return obj(
    { apiVersion: str(), fieldPath: str(), kind: str(), name: str(), namespace: str(), resourceVersion: str(), uid: str() },
    undefined,
    minor >= 12 ? { 'x-kubernetes-map-type': 'atomic' } : {},
  );
}

function labelSelector(minor: number): JSONSchemaProps {
  const expr = obj({ key: str(), operator: str(), values: { type: 'array', items: str(), ...(minor >= 12 ? { 'x-kubernetes-list-type': 'atomic' } : {}) } }, [
    'key',
    'operator',
  ]);
  return obj(
    {
      matchExpressions: { type: 'array', items: expr, ...(minor >= 12 ? { 'x-kubernetes-list-type': 'atomic' } : {}) },
      matchLabels: strMap(),
    },
    undefined,
    { nullable: true, ...(minor >= 12 ? { 'x-kubernetes-map-type': 'atomic' } : {}) },
  );
}

function secretKeySelector(minor: number): JSONSchemaProps {
  return obj(
    { key: str(), name: minor >= 16 ? { type: 'string', default: '' } : str(), optional: bool() },
    ['key'],
    minor >= 12 ? { 'x-kubernetes-map-type': 'atomic' } : {},
  );
}

const progressBytes = (): JSONSchemaProps => obj({ bytesDone: int64(), totalBytes: int64() });

const FREE_FORM: JSONSchemaProps = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };

function crd(kind: string, plural: string, singular: string, spec: JSONSchemaProps, status: JSONSchemaProps, shortNames?: string[]): KObj {
  const names: KObj = { kind, listKind: `${kind}List`, plural, singular };
  if (shortNames) names.shortNames = shortNames;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.velero.io`,
      labels: { component: 'velero' },
      annotations: { 'controller-gen.kubebuilder.io/version': 'v0.16.5' },
    },
    spec: {
      group: 'velero.io',
      names,
      scope: 'Namespaced',
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          // Velero's CRDs declare no subresources: status is written through the main resource.
          subresources: {},
          schema: {
            openAPIV3Schema: obj({ apiVersion: str(), kind: str(), metadata: { type: 'object' }, spec, status }, undefined),
          },
        },
      ],
    },
  };
}

// --- the kinds -----------------------------------------------------------------------------------

export function podVolumeBackupCrd(version: VeleroVersion): KObj {
  const m = minorOf(version);
  const spec = obj(
    {
      backupStorageLocation: str(),
      cancel: m >= 17 ? bool() : undefined,
      node: str(),
      pod: objectReference(m),
      repoIdentifier: str(),
      tags: strMap(),
      uploaderSettings: m >= 13 ? strMap(true) : undefined,
      uploaderType: m >= 10 ? oneOf(['kopia', 'restic', '']) : undefined,
      volume: str(),
    },
    ['backupStorageLocation', 'node', 'pod', 'repoIdentifier', 'volume'],
  );
  const status = obj({
    acceptedTimestamp: m >= 17 ? time() : undefined,
    completionTimestamp: time(),
    incrementalBytes: m >= 18 ? int64() : undefined,
    message: str(),
    path: str(),
    phase: oneOf(podVolumePhases(version)),
    progress: progressBytes(),
    snapshotID: str(),
    startTimestamp: time(),
  });
  return crd('PodVolumeBackup', 'podvolumebackups', 'podvolumebackup', spec, status);
}

export function podVolumeRestoreCrd(version: VeleroVersion): KObj {
  const m = minorOf(version);
  const required = ['backupStorageLocation', 'pod', 'repoIdentifier', 'snapshotID'];
  if (m >= 10) required.push('sourceNamespace');
  required.push('volume');
  const spec = obj(
    {
      backupStorageLocation: str(),
      cancel: m >= 17 ? bool() : undefined,
      pod: objectReference(m),
      repoIdentifier: str(),
      snapshotID: str(),
      snapshotSize: m >= 18 ? int64() : undefined,
      sourceNamespace: m >= 10 ? str() : undefined,
      uploaderSettings: m >= 13 ? strMap(true) : undefined,
      uploaderType: m >= 10 ? oneOf(['kopia', 'restic', '']) : undefined,
      volume: str(),
    },
    required,
  );
  const status = obj({
    acceptedTimestamp: m >= 17 ? time() : undefined,
    completionTimestamp: time(),
    message: str(),
    node: m >= 17 ? str() : undefined,
    phase: oneOf(podVolumePhases(version)),
    progress: progressBytes(),
    startTimestamp: time(),
  });
  return crd('PodVolumeRestore', 'podvolumerestores', 'podvolumerestore', spec, status);
}

export function backupStorageLocationCrd(version: VeleroVersion): KObj {
  const m = minorOf(version);
  const spec = obj(
    {
      accessMode: oneOf(['ReadOnly', 'ReadWrite']),
      backupSyncPeriod: { type: 'string', nullable: true },
      config: strMap(),
      credential: secretKeySelector(m),
      default: bool(),
      objectStorage: obj(
        { bucket: str(), caCert: { type: 'string', format: 'byte' }, caCertRef: m >= 18 ? secretKeySelector(m) : undefined, prefix: str() },
        ['bucket'],
      ),
      provider: str(),
      validationFrequency: { type: 'string', nullable: true },
    },
    ['objectStorage', 'provider'],
  );
  const status = obj({
    accessMode: oneOf(['ReadOnly', 'ReadWrite']),
    lastSyncedRevision: str(),
    lastSyncedTime: time(),
    lastValidationTime: time(),
    message: str(),
    phase: oneOf(['Available', 'Unavailable']),
  });
  return crd('BackupStorageLocation', 'backupstoragelocations', 'backupstoragelocation', spec, status, ['bsl']);
}

/** ResticRepository (Velero ≤ 1.9). */
export function resticRepositoryCrd(): KObj {
  const spec = obj(
    { backupStorageLocation: str(), maintenanceFrequency: str(), resticIdentifier: str(), volumeNamespace: str() },
    ['backupStorageLocation', 'maintenanceFrequency', 'resticIdentifier', 'volumeNamespace'],
  );
  const status = obj({ lastMaintenanceTime: time(), message: str(), phase: oneOf(['New', 'Ready', 'NotReady']) });
  return crd('ResticRepository', 'resticrepositories', 'resticrepository', spec, status);
}

/** BackupRepository (Velero ≥ 1.10). */
export function backupRepositoryCrd(version: VeleroVersion): KObj {
  const m = minorOf(version);
  const required = ['backupStorageLocation', 'maintenanceFrequency'];
  if (m < 17) required.push('resticIdentifier');
  required.push('volumeNamespace');
  const spec = obj(
    {
      backupStorageLocation: str(),
      maintenanceFrequency: str(),
      repositoryConfig: m >= 15 ? strMap(true) : undefined,
      repositoryType: oneOf(['kopia', 'restic', '']),
      resticIdentifier: str(),
      volumeNamespace: str(),
    },
    required,
  );
  const status = obj({
    lastMaintenanceTime: time(),
    message: str(),
    phase: oneOf(['New', 'Ready', 'NotReady']),
    recentMaintenance:
      m >= 16
        ? {
            type: 'array',
            items: obj({ completeTimestamp: time(), message: str(), result: oneOf(['Succeeded', 'Failed']), startTimestamp: time() }),
          }
        : undefined,
  });
  return crd('BackupRepository', 'backuprepositories', 'backuprepository', spec, status);
}

export function backupPhases(version: VeleroVersion): string[] {
  const m = minorOf(version);
  if (m <= 10) return ['New', 'FailedValidation', 'InProgress', 'Completed', 'PartiallyFailed', 'Failed', 'Deleting'];
  const p = [
    'New',
    'FailedValidation',
    'InProgress',
    'WaitingForPluginOperations',
    'WaitingForPluginOperationsPartiallyFailed',
    'Finalizing',
    'FinalizingPartiallyFailed',
    'Completed',
    'PartiallyFailed',
    'Failed',
    'Deleting',
  ];
  if (m >= 18) p.splice(1, 0, 'Queued', 'ReadyToStart');
  return p;
}

export function restorePhases(version: VeleroVersion): string[] {
  const m = minorOf(version);
  if (m <= 10) return ['New', 'FailedValidation', 'InProgress', 'Completed', 'PartiallyFailed', 'Failed'];
  const p = ['New', 'FailedValidation', 'InProgress', 'WaitingForPluginOperations', 'WaitingForPluginOperationsPartiallyFailed', 'Completed', 'PartiallyFailed', 'Failed'];
  if (m >= 14) p.push('Finalizing', 'FinalizingPartiallyFailed');
  return p;
}

export function backupCrd(version: VeleroVersion): KObj {
  const m = minorOf(version);
  const bnull = (): JSONSchemaProps => ({ type: 'boolean', nullable: true });
  const spec = obj({
    csiSnapshotTimeout: str(),
    datamover: m >= 12 ? str() : undefined,
    defaultVolumesToFsBackup: m >= 10 ? bnull() : undefined,
    defaultVolumesToRestic: bnull(),
    excludedClusterScopedResources: m >= 11 ? strList() : undefined,
    excludedNamespaceScopedResources: m >= 11 ? strList() : undefined,
    excludedNamespaces: strList(),
    excludedResources: strList(),
    hooks: FREE_FORM,
    includeClusterResources: bnull(),
    includedClusterScopedResources: m >= 11 ? strList() : undefined,
    includedNamespaceScopedResources: m >= 11 ? strList() : undefined,
    includedNamespaces: strList(),
    includedResources: strList(),
    itemOperationTimeout: m >= 11 ? str() : undefined,
    labelSelector: labelSelector(m),
    metadata: obj({ labels: strMap() }),
    orLabelSelectors: { type: 'array', items: labelSelector(m), nullable: true },
    orderedResources: strMap(true),
    resourcePolicy: m >= 11 ? obj({ apiGroup: str(), kind: str(), name: str() }, ['kind', 'name'], m >= 12 ? { 'x-kubernetes-map-type': 'atomic' } : {}) : undefined,
    snapshotMoveData: m >= 12 ? bnull() : undefined,
    snapshotVolumes: bnull(),
    storageLocation: str(),
    ttl: str(),
    uploaderConfig: m >= 13 ? obj({ parallelFilesUpload: int() }, undefined, { nullable: true }) : undefined,
    volumeSnapshotLocations: { type: 'array', items: str() },
  });
  const status = obj({
    backupItemOperationsAttempted: m >= 11 ? int() : undefined,
    backupItemOperationsCompleted: m >= 11 ? int() : undefined,
    backupItemOperationsFailed: m >= 11 ? int() : undefined,
    completionTimestamp: time(),
    csiVolumeSnapshotsAttempted: int(),
    csiVolumeSnapshotsCompleted: int(),
    errors: int(),
    expiration: time(),
    failureReason: str(),
    formatVersion: str(),
    hookStatus: m >= 13 ? obj({ hooksAttempted: int(), hooksFailed: int() }, undefined, { nullable: true }) : undefined,
    phase: oneOf(backupPhases(version)),
    progress: obj({ itemsBackedUp: int(), totalItems: int() }, undefined, { nullable: true }),
    queuePosition: m >= 18 ? int() : undefined,
    startTimestamp: time(),
    validationErrors: strList(),
    version: int(),
    volumeSnapshotsAttempted: int(),
    volumeSnapshotsCompleted: int(),
    warnings: int(),
  });
  return crd('Backup', 'backups', 'backup', spec, status);
}

export function restoreCrd(version: VeleroVersion): KObj {
  const m = minorOf(version);
  const bnull = (): JSONSchemaProps => ({ type: 'boolean', nullable: true });
  const spec = obj(
    {
      backupName: str(),
      excludedNamespaces: strList(),
      excludedResources: strList(),
      existingResourcePolicy: { type: 'string', nullable: true },
      hooks: FREE_FORM,
      includeClusterResources: bnull(),
      includedNamespaces: strList(),
      includedResources: strList(),
      itemOperationTimeout: m >= 11 ? str() : undefined,
      labelSelector: labelSelector(m),
      namespaceMapping: strMap(),
      orLabelSelectors: { type: 'array', items: labelSelector(m), nullable: true },
      preserveNodePorts: bnull(),
      resourceModifier:
        m >= 12 ? obj({ apiGroup: str(), kind: str(), name: str() }, ['kind', 'name'], { nullable: true, 'x-kubernetes-map-type': 'atomic' }) : undefined,
      restorePVs: bnull(),
      restoreStatus: obj({ excludedResources: strList(), includedResources: strList() }, undefined, { nullable: true }),
      scheduleName: str(),
      uploaderConfig:
        m >= 13 ? obj({ parallelFilesDownload: m >= 14 ? int() : undefined, writeSparseFiles: bnull() }, undefined, { nullable: true }) : undefined,
    },
    m <= 13 ? ['backupName'] : undefined,
  );
  const status = obj({
    completionTimestamp: time(),
    errors: int(),
    failureReason: str(),
    hookStatus: m >= 13 ? obj({ hooksAttempted: int(), hooksFailed: int() }, undefined, { nullable: true }) : undefined,
    phase: oneOf(restorePhases(version)),
    progress: obj({ itemsRestored: int(), totalItems: int() }, undefined, { nullable: true }),
    restoreItemOperationsAttempted: m >= 11 ? int() : undefined,
    restoreItemOperationsCompleted: m >= 11 ? int() : undefined,
    restoreItemOperationsFailed: m >= 11 ? int() : undefined,
    startTimestamp: time(),
    validationErrors: strList(),
    warnings: int(),
  });
  return crd('Restore', 'restores', 'restore', spec, status);
}

/**
 * The CRDs a Velero release installs that matter to the node agent: PodVolumeBackup,
 * PodVolumeRestore, BackupStorageLocation, Backup, Restore, and ResticRepository (≤ 1.9) or
 * BackupRepository (≥ 1.10).
 */
export function veleroCrds(version: VeleroVersion): KObj[] {
  const m = minorOf(version);
  return [
    backupCrd(version),
    restoreCrd(version),
    backupStorageLocationCrd(version),
    m >= 10 ? backupRepositoryCrd(version) : resticRepositoryCrd(),
    podVolumeBackupCrd(version),
    podVolumeRestoreCrd(version),
  ];
}

/** Something that can create objects: a KubeApiServer (createObject) or a client wrapper. */
export interface ObjectCreator {
  createObject(obj: KObj): unknown;
}

/** Installs the CRDs of a Velero release; their resources are served as soon as this returns. */
export function installVeleroCrds(server: ObjectCreator, version: VeleroVersion): KObj[] {
  const crds = veleroCrds(version);
  for (const c of crds) server.createObject(c);
  return crds;
}
