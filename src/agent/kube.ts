/**
 * The only place the agent talks to the Kubernetes API (through @kubernetes/client-node). Custom
 * objects travel as raw JSON; core objects come back as the client's typed models (only plain
 * fields are read from them, so the Date conversion of timestamps does not matter).
 */
import * as k8s from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { CairnError } from '../core/errors.js';
import { VELERO_GROUP, VELERO_VERSION, type ObjectMeta } from './velero.js';

/** Loads the client configuration: --kubeconfig, else $KUBECONFIG, else the in-cluster service account. */
export function loadKubeConfig(file?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (file) {
    if (!existsSync(file)) throw new CairnError('INVALID_ARGUMENT', `kubeconfig ${file} does not exist`);
    kc.loadFromFile(file);
  } else if (process.env.KUBECONFIG) {
    kc.loadFromDefault();
  } else if (process.env.KUBERNETES_SERVICE_HOST) {
    kc.loadFromCluster();
  } else {
    throw new CairnError('INVALID_ARGUMENT', 'no Kubernetes configuration: use --kubeconfig, set KUBECONFIG, or run inside a pod');
  }
  if (!kc.getCurrentCluster()) throw new CairnError('INVALID_ARGUMENT', 'the kubeconfig has no current cluster');
  return kc;
}

/** HTTP status of a failed API call (undefined for network errors and non-API errors). */
export function apiStatus(e: unknown): number | undefined {
  if (e && typeof e === 'object') {
    const c = (e as { code?: unknown }).code;
    if (typeof c === 'number') return c;
    const s = (e as { statusCode?: unknown }).statusCode;
    if (typeof s === 'number') return s;
  }
  return undefined;
}

export function isNotFound(e: unknown): boolean {
  return apiStatus(e) === 404;
}

export function isConflict(e: unknown): boolean {
  return apiStatus(e) === 409;
}

/** A short message for an API failure: the Status message when the server sent one. */
export function apiErrorMessage(e: unknown): string {
  const status = apiStatus(e);
  const body = (e as { body?: unknown } | undefined)?.body;
  let msg: string | undefined;
  if (typeof body === 'string') {
    try {
      msg = (JSON.parse(body) as { message?: string }).message;
    } catch {
      msg = body.slice(0, 200);
    }
  } else if (body && typeof body === 'object') {
    msg = (body as { message?: string }).message;
  }
  if (!msg) msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
  return status ? `${msg} (HTTP ${status})` : msg;
}

export type JsonPatchOp = { op: 'test' | 'add' | 'replace' | 'remove'; path: string; value?: unknown };

const jsonPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export interface KubeEvent {
  involved: { kind: string; apiVersion: string; namespace?: string; name?: string; uid?: string; resourceVersion?: string };
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export class KubeClient {
  readonly core: k8s.CoreV1Api;
  readonly custom: k8s.CustomObjectsApi;
  readonly storage: k8s.StorageV1Api;

  constructor(readonly kc: k8s.KubeConfig) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.storage = kc.makeApiClient(k8s.StorageV1Api);
  }

  // --- Velero custom objects (namespaced, group velero.io/v1) ---

  async getVelero<T>(namespace: string, plural: string, name: string): Promise<T | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({ group: VELERO_GROUP, version: VELERO_VERSION, namespace, plural, name })) as T;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async listVelero<T>(namespace: string, plural: string, labelSelector?: string): Promise<{ items: T[]; metadata?: { resourceVersion?: string } }> {
    return (await this.custom.listNamespacedCustomObject({ group: VELERO_GROUP, version: VELERO_VERSION, namespace, plural, labelSelector })) as {
      items: T[];
      metadata?: { resourceVersion?: string };
    };
  }

  /** PUT of the whole object: the resourceVersion it carries makes a stale write fail with 409. */
  async replaceVelero<T extends { metadata: ObjectMeta }>(plural: string, obj: T): Promise<T> {
    return (await this.custom.replaceNamespacedCustomObject({
      group: VELERO_GROUP,
      version: VELERO_VERSION,
      namespace: obj.metadata.namespace!,
      plural,
      name: obj.metadata.name!,
      body: obj,
    })) as T;
  }

  async jsonPatchVelero<T>(namespace: string, plural: string, name: string, ops: JsonPatchOp[]): Promise<T> {
    return (await this.custom.patchNamespacedCustomObject({ group: VELERO_GROUP, version: VELERO_VERSION, namespace, plural, name, body: ops }, jsonPatch)) as T;
  }

  async mergePatchVelero<T>(namespace: string, plural: string, name: string, patch: unknown): Promise<T> {
    return (await this.custom.patchNamespacedCustomObject({ group: VELERO_GROUP, version: VELERO_VERSION, namespace, plural, name, body: patch }, mergePatch)) as T;
  }

  /** A CRD as raw JSON (the typed model renames `enum`), or undefined when it is not installed. */
  async getCrd(name: string): Promise<Record<string, unknown> | undefined> {
    try {
      return (await this.custom.getClusterCustomObject({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', name })) as Record<string, unknown>;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  // --- core objects ---

  async getPod(namespace: string, name: string): Promise<k8s.V1Pod | undefined> {
    try {
      return await this.core.readNamespacedPod({ namespace, name });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async listPodsOnNode(node: string): Promise<k8s.V1Pod[]> {
    return (await this.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items;
  }

  async getPvc(namespace: string, name: string): Promise<k8s.V1PersistentVolumeClaim | undefined> {
    try {
      return await this.core.readNamespacedPersistentVolumeClaim({ namespace, name });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async getPv(name: string): Promise<k8s.V1PersistentVolume | undefined> {
    try {
      return await this.core.readPersistentVolume({ name });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async csiDriverExists(name: string): Promise<boolean> {
    try {
      await this.storage.readCSIDriver({ name });
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** A secret's data, base64-decoded; undefined when the secret does not exist. */
  async getSecretData(namespace: string, name: string): Promise<Record<string, Buffer> | undefined> {
    let s: k8s.V1Secret;
    try {
      s = await this.core.readNamespacedSecret({ namespace, name });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    const out: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64');
    for (const [k, v] of Object.entries(s.stringData ?? {})) out[k] = Buffer.from(v, 'utf8');
    return out;
  }

  async getConfigMapData(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    try {
      return (await this.core.readNamespacedConfigMap({ namespace, name })).data ?? {};
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async getNodeLabels(name: string): Promise<Record<string, string>> {
    return (await this.core.readNode({ name })).metadata?.labels ?? {};
  }

  /** Records a core/v1 Event about an object (best effort: callers log and go on if it fails). */
  async createEvent(namespace: string, ev: KubeEvent, component: string, host: string, nowMs: number): Promise<void> {
    const t = new Date(Math.floor(nowMs / 1000) * 1000);
    const base = (ev.involved.name ?? 'object').slice(0, 200);
    await this.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { name: `${base}.${nowMs.toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`, namespace },
        involvedObject: { ...ev.involved },
        reason: ev.reason,
        message: ev.message.slice(0, 1024),
        type: ev.type,
        count: 1,
        firstTimestamp: t,
        lastTimestamp: t,
        source: { component, host },
        reportingComponent: component,
        reportingInstance: host,
      },
    });
  }
}
