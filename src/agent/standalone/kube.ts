/**
 * The API calls cairn's standalone commands and the agent's maintenance controller need beyond the
 * agent's own client: pods and claims of a namespace, creating and deleting Velero objects,
 * secrets, and coordination.k8s.io Leases.
 */
import * as k8s from '@kubernetes/client-node';
import { isConflict, isNotFound, KubeClient } from '../kube.js';
import { VELERO_GROUP, VELERO_VERSION, type BackupStorageLocation, type ObjectMeta } from '../velero.js';

export type LeaseObject = k8s.V1Lease;

export class StandaloneKube {
  readonly client: KubeClient;
  readonly coordination: k8s.CoordinationV1Api;

  constructor(readonly kc: k8s.KubeConfig, client?: KubeClient) {
    this.client = client ?? new KubeClient(kc);
    this.coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  }

  get core(): k8s.CoreV1Api {
    return this.client.core;
  }

  // --- pods and claims ---

  async listPods(namespace: string, labelSelector?: string): Promise<k8s.V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace, labelSelector })).items;
  }

  async listPvcs(namespace: string): Promise<k8s.V1PersistentVolumeClaim[]> {
    return (await this.core.listNamespacedPersistentVolumeClaim({ namespace })).items;
  }

  getPv(name: string): Promise<k8s.V1PersistentVolume | undefined> {
    return this.client.getPv(name);
  }

  async namespaceExists(name: string): Promise<boolean> {
    try {
      await this.core.readNamespace({ name });
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  // --- Velero objects ---

  listVelero<T>(namespace: string, plural: string, labelSelector?: string): Promise<T[]> {
    return this.client.listVelero<T>(namespace, plural, labelSelector).then((l) => l.items);
  }

  getVelero<T>(namespace: string, plural: string, name: string): Promise<T | undefined> {
    return this.client.getVelero<T>(namespace, plural, name);
  }

  async createVelero<T extends { metadata: ObjectMeta }>(namespace: string, plural: string, body: T): Promise<T> {
    return (await this.client.custom.createNamespacedCustomObject({ group: VELERO_GROUP, version: VELERO_VERSION, namespace, plural, body })) as T;
  }

  /** Deletes an object; false when it was already gone. */
  async deleteVelero(namespace: string, plural: string, name: string): Promise<boolean> {
    try {
      await this.client.custom.deleteNamespacedCustomObject({ group: VELERO_GROUP, version: VELERO_VERSION, namespace, plural, name });
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  listBsls(namespace: string): Promise<BackupStorageLocation[]> {
    return this.listVelero<BackupStorageLocation>(namespace, 'backupstoragelocations');
  }

  getCrd(name: string): Promise<Record<string, unknown> | undefined> {
    return this.client.getCrd(name);
  }

  // --- secrets ---

  getSecretData(namespace: string, name: string): Promise<Record<string, Buffer> | undefined> {
    return this.client.getSecretData(namespace, name);
  }

  /** Creates a secret; false when one with that name exists already (it is left alone). */
  async createSecret(namespace: string, name: string, data: Record<string, string | Buffer>, meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}): Promise<boolean> {
    try {
      await this.core.createNamespacedSecret({
        namespace,
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name, namespace, labels: meta.labels, annotations: meta.annotations },
          type: 'Opaque',
          data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
        },
      });
      return true;
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
  }

  // --- leases ---

  async getLease(namespace: string, name: string): Promise<LeaseObject | undefined> {
    try {
      return await this.coordination.readNamespacedLease({ namespace, name });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Creates a lease; undefined when one with that name exists (409 AlreadyExists). */
  async createLease(namespace: string, body: LeaseObject): Promise<LeaseObject | undefined> {
    try {
      return await this.coordination.createNamespacedLease({ namespace, body });
    } catch (e) {
      if (isConflict(e)) return undefined;
      throw e;
    }
  }

  /** Replaces a lease guarded by the resourceVersion it carries; undefined on 409 Conflict. */
  async replaceLease(namespace: string, body: LeaseObject): Promise<LeaseObject | undefined> {
    try {
      return await this.coordination.replaceNamespacedLease({ namespace, name: body.metadata!.name!, body });
    } catch (e) {
      if (isConflict(e)) return undefined;
      throw e;
    }
  }

  async listLeases(namespace: string, labelSelector?: string): Promise<LeaseObject[]> {
    return (await this.coordination.listNamespacedLease({ namespace, labelSelector })).items;
  }
}
