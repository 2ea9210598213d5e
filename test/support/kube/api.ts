/**
 * The apiserver's request semantics on top of the store: create / get / list / update / patch /
 * delete with kube-apiserver's precondition, strategy, validation and finalizer rules, plus the
 * few controllers without which a cluster does not behave like one (namespace and CRD cleanup,
 * CRD establishment, garbage collection of dependents, a "kubelet" that finishes graceful pod
 * deletion). The HTTP layer (server.ts) only parses requests and formats answers.
 */
import { BUILTIN_TYPES, namespaces } from './builtins.js';
import { CRD_CLEANUP_FINALIZER, customresourcedefinitions, customTypes, establishedStatus, terminatingCondition } from './crd.js';
import {
  ApiError,
  badRequest,
  conflict,
  expired,
  fe,
  forbidden,
  genericResponse,
  internalError,
  invalid,
  notFound,
  RawValue,
  requestEntityTooLarge,
  STALE_OBJECT,
  successStatus,
  tooLargeResourceVersion,
  unsupportedMediaType,
  type FieldError,
} from './errors.js';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, decodeJsonPatch, PatchError } from './patch.js';
import { groupKind, groupResource, validateObjectMeta, validateObjectMetaUpdate, type ClusterView, type ResourceType } from './resource.js';
import { applyDefaults, prune, pruneMetadata, pruneNulls, validateAgainstSchema } from './schema.js';
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';
import { objectKey, Store } from './store.js';
import { clone, deepEqual, generateName, isPlainObject, newUid, parseRv, rfc3339, type KObj } from './util.js';

export type FieldValidation = 'Ignore' | 'Warn' | 'Strict';

export interface WriteOptions {
  dryRun: boolean;
  fieldValidation: FieldValidation;
  /** Warning headers to send back (unknown fields with fieldValidation=Warn). */
  warnings: string[];
}

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: string;
  orphanDependents?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface ListQuery {
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
  limit?: string;
  continue?: string;
}

export interface ApiOptions {
  now: () => Date;
  /** Delete dependents whose owners are gone, like kube-controller-manager's garbage collector. */
  garbageCollector: boolean;
  /** After a graceful pod deletion, the pod is removed this many ms later (a kubelet's final delete); null: never. */
  podTerminationMs: number | null;
  /** How long a request for a resourceVersion newer than the store waits before 504 (watch cache: 3 s). */
  tooLargeResourceVersionWaitMs: number;
  initialResourceVersion: number;
  maxHistory: number;
}

export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
};

const MAX_JSON_PATCH_OPERATIONS = 10000;
const IMMORTAL_NAMESPACES = new Set(['default', 'kube-system', 'kube-public']);
const NS_STORAGE = namespaces.storage;
const CRD_STORAGE = customresourcedefinitions.storage;

type Matcher = (o: KObj) => boolean;

export interface DeleteResult {
  code: number;
  body: KObj;
}

function toContinueToken(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64url');
}

function fromContinueToken(s: string): { rv: number; start: string } {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (t.v !== 'meta.k8s.io/v1' || typeof t.rv !== 'number' || typeof t.start !== 'string') throw new Error('bad');
    return { rv: t.rv, start: t.start };
  } catch {
    throw badRequest(`continue key is not valid: ${s}`);
  }
}

/** ListOptions validation (apimachinery/pkg/apis/meta/internalversion/validation). */
function validateListOptions(q: ListQuery, watch: boolean, sendInitialEvents: string | undefined): void {
  const errs: FieldError[] = [];
  const match = q.resourceVersionMatch ?? '';
  if (watch) {
    if (sendInitialEvents !== undefined && match !== 'NotOlderThan')
      errs.push(fe.forbidden('resourceVersionMatch', 'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan'));
    if (match) {
      if (sendInitialEvents === undefined)
        errs.push(fe.forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided'));
      if (match !== 'NotOlderThan') errs.push(fe.notSupported('resourceVersionMatch', match, ['NotOlderThan']));
      if (q.continue) errs.push(fe.forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided'));
    }
  } else {
    if (match) {
      if (!q.resourceVersion) errs.push(fe.forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden unless resourceVersion is provided'));
      if (q.continue) errs.push(fe.forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided'));
      if (match !== 'Exact' && match !== 'NotOlderThan') errs.push(fe.notSupported('resourceVersionMatch', match, ['Exact', 'NotOlderThan', '']));
      if (match === 'Exact' && q.resourceVersion === '0')
        errs.push(fe.forbidden('resourceVersionMatch', 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'));
    }
    if (sendInitialEvents !== undefined) errs.push(fe.forbidden('sendInitialEvents', 'sendInitialEvents is forbidden for list'));
  }
  if (errs.length) throw invalid({ group: 'meta.k8s.io', kind: 'ListOptions' }, '', errs);
}

export class Api implements ClusterView {
  readonly store: Store;
  private controllersPending = false;
  private closed = false;
  private readonly kubeletTimers = new Set<NodeJS.Timeout>();

  constructor(readonly opts: ApiOptions) {
    this.store = new Store(opts.initialResourceVersion, opts.maxHistory);
    for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease'])
      this.create(namespaces, '', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, this.systemWrite());
  }

  close(): void {
    this.closed = true;
    for (const t of this.kubeletTimers) clearTimeout(t);
    this.kubeletTimers.clear();
  }

  systemWrite(): WriteOptions {
    return { dryRun: false, fieldValidation: 'Ignore', warnings: [] };
  }

  getObject(storage: string, namespace: string, name: string): KObj | undefined {
    return this.store.get(storage, namespace, name);
  }

  // -------------------------------------------------------------------------------------------
  // Registry

  /** Every served resource: built-ins, CRDs themselves, and the resources of established CRDs. */
  types(): ResourceType[] {
    const out = [...BUILTIN_TYPES, customresourcedefinitions];
    for (const [, crd] of this.store.list(CRD_STORAGE)) {
      const established = (crd.status?.conditions ?? []).some((c: KObj) => c.type === 'Established' && c.status === 'True');
      if (established) out.push(...customTypes(crd));
    }
    return out;
  }

  resolve(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types().find((t) => t.group === group && t.version === version && t.plural === plural);
  }

  private typeForStorage(storage: string): ResourceType | undefined {
    return this.types().find((t) => t.storage === storage && !t.toStorage) ?? this.types().find((t) => t.storage === storage);
  }

  /** Storage form → what a client of `t` sees. */
  output(t: ResourceType, stored: KObj): KObj {
    const o = t.fromStorage ? t.fromStorage(stored) : clone(stored);
    const { apiVersion: _a, kind: _k, metadata, ...rest } = o;
    return { apiVersion: t.apiVersion, kind: t.kind, metadata, ...rest };
  }

  /** Label/field selector predicate over stored objects; throws 400 for bad selectors. */
  matcher(t: ResourceType, namespace: string, labelSelector?: string, fieldSelector?: string): Matcher {
    const ls = parseLabelSelector(labelSelector ?? '');
    const fs = parseFieldSelector(fieldSelector ?? '');
    for (const r of fs) if (!t.fieldLabels.includes(r.field)) throw badRequest(t.fieldLabelError(r.field));
    const sfs = fs.map((r) => ({ ...r, field: t.fieldLabelToStorage ? t.fieldLabelToStorage(r.field) : r.field }));
    return (o: KObj) =>
      (!namespace || !t.namespaced || o.metadata.namespace === namespace) &&
      matchLabels(ls, o.metadata.labels) &&
      matchFields(sfs, t.fields(o));
  }

  validateListOptions(q: ListQuery, watch: boolean, sendInitialEvents: string | undefined): void {
    validateListOptions(q, watch, sendInitialEvents);
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  get(t: ResourceType, ns: string, name: string): KObj {
    const o = this.store.get(t.storage, t.namespaced ? ns : '', name);
    if (!o) throw notFound(groupResource(t), name);
    return this.output(t, o);
  }

  async list(t: ResourceType, ns: string, q: ListQuery): Promise<KObj> {
    validateListOptions(q, false, undefined);
    const match = this.matcher(t, ns, q.labelSelector, q.fieldSelector);
    let rv = this.store.currentRv;
    let entries: Array<[string, KObj]>;
    let start = '';
    let limit = 0;
    if (q.limit !== undefined && q.limit !== '') {
      if (!/^-?[0-9]+$/.test(q.limit)) throw badRequest(`invalid limit: ${q.limit}`);
      limit = Math.max(0, Number(q.limit));
    }
    if (q.continue) {
      if (q.resourceVersion && q.resourceVersion !== '0') throw badRequest('specifying resource version is not allowed when using continue');
      const tok = fromContinueToken(q.continue);
      if (tok.rv < this.store.compactedRv)
        throw expired(
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
        );
      rv = tok.rv;
      start = tok.start;
      entries = this.store.stateAt(t.storage, rv);
    } else if (q.resourceVersion && q.resourceVersion !== '0') {
      const n = parseRv(q.resourceVersion);
      if (n === undefined) throw badRequest(`invalid resource version: ${q.resourceVersion}`);
      if (n > this.store.currentRv && !(await this.store.waitForRv(n, this.opts.tooLargeResourceVersionWaitMs)))
        throw tooLargeResourceVersion(n, this.store.currentRv);
      if (q.resourceVersionMatch === 'Exact') {
        if (n < this.store.compactedRv) throw expired('The resourceVersion for the provided list is too old.');
        rv = n;
        entries = this.store.stateAt(t.storage, n);
      } else {
        rv = this.store.currentRv;
        entries = this.store.list(t.storage);
      }
    } else {
      entries = this.store.list(t.storage);
      // resourceVersion=0 is served from the watch cache, which ignores limit.
      if (q.resourceVersion === '0') limit = 0;
    }
    const matching = entries.filter(([k, o]) => (!start || k >= start) && match(o));
    const meta: KObj = { resourceVersion: String(rv) };
    let page = matching;
    if (limit > 0 && matching.length > limit) {
      page = matching.slice(0, limit);
      meta.continue = toContinueToken(rv, page[page.length - 1][0] + '\u0000');
      if (!q.labelSelector && !q.fieldSelector) meta.remainingItemCount = matching.length - limit;
    }
    const items = page.map(([, o]) => {
      const out = this.output(t, o);
      if (t.builtin) {
        // Typed lists serialise their items without TypeMeta.
        delete out.apiVersion;
        delete out.kind;
      }
      return out;
    });
    return { apiVersion: t.apiVersion, kind: t.listKind, metadata: meta, items };
  }

  // -------------------------------------------------------------------------------------------
  // Writes

  private checkTypeMeta(t: ResourceType, body: KObj): void {
    const av = body.apiVersion;
    const kind = body.kind;
    if (!t.builtin) {
      if (!kind) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
      if (!av) throw badRequest(`Object 'apiVersion' is missing in '${JSON.stringify(body)}'`);
    }
    if (av && av !== t.apiVersion)
      throw badRequest(`the API version in the data (${av}) does not match the expected API version (${t.apiVersion})`);
    if (kind && kind !== t.kind) throw badRequest(`the kind in the data (${kind}) does not match the expected kind (${t.kind})`);
    if (body.metadata !== undefined && body.metadata !== null && !isPlainObject(body.metadata))
      throw badRequest(`${t.kind} in version "${t.version}" cannot be handled as a ${t.kind}: metadata must be an object`);
  }

  /** Decoding: conversion to the storage form, ObjectMeta / structural pruning, nulls, defaults. */
  private decode(t: ResourceType, body: KObj, wo: WriteOptions): KObj {
    let obj = clone(body);
    if (t.decodeCheck) t.decodeCheck(obj);
    if (!isPlainObject(obj.metadata)) obj.metadata = {};
    const pruned: string[] = [];
    pruneMetadata(obj.metadata, 'metadata', pruned);
    const schema = t.custom?.schema;
    if (schema) {
      pruned.push(...prune(obj, schema));
      pruneNulls(obj, schema);
      applyDefaults(obj, schema);
    }
    if (pruned.length) {
      if (wo.fieldValidation === 'Strict')
        throw badRequest(`strict decoding error: ${pruned.map((p) => `unknown field "${p}"`).join(', ')}`);
      if (wo.fieldValidation === 'Warn') for (const p of pruned) wo.warnings.push(`unknown field "${p}"`);
    }
    obj = t.toStorage ? t.toStorage(obj) : obj;
    obj.apiVersion = t.toStorage ? obj.apiVersion : t.apiVersion;
    obj.kind = t.kind;
    return obj;
  }

  private validationErrors(t: ResourceType, obj: KObj, old: KObj | undefined, status: boolean): FieldError[] {
    const errs: FieldError[] = [...validateObjectMeta(t, obj.metadata)];
    if (old) errs.push(...validateObjectMetaUpdate(obj.metadata, old.metadata));
    if (status && old) errs.push(...(t.validateStatus?.(obj, old) ?? []));
    else if (t.validate) errs.push(...t.validate(obj, old, this));
    if (t.custom?.schema) {
      // Validation runs against this version's schema, on the object as the client sent it.
      const view = t.fromStorage ? t.fromStorage(obj) : obj;
      errs.push(...validateAgainstSchema(view, t.custom.schema));
    }
    return errs;
  }

  /** NamespaceLifecycle admission for creates of namespaced objects. */
  private admitNamespace(t: ResourceType, ns: string, name: string): void {
    const nsObj = this.store.get(NS_STORAGE, '', ns);
    if (!nsObj) throw notFound({ group: '', resource: 'namespaces' }, ns);
    if (nsObj.metadata.deletionTimestamp || nsObj.status?.phase === 'Terminating')
      throw forbidden(groupResource(t), name, `unable to create new content in namespace ${ns} because it is being terminated`, [
        { reason: 'NamespaceTerminating', message: `namespace ${ns} is being terminated`, field: 'metadata.namespace' },
      ]);
  }

  create(t: ResourceType, ns: string, body: unknown, wo: WriteOptions): KObj {
    if (!isPlainObject(body)) throw badRequest(`${t.kind} in version "${t.version}" cannot be handled as a ${t.kind}: the body must be a JSON object`);
    if (t.custom?.terminating) {
      const e = new ApiError({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'create not allowed while custom resource definition is terminating',
        reason: 'MethodNotAllowed',
        details: { group: t.group, kind: t.plural },
        code: 405,
      });
      throw e;
    }
    this.checkTypeMeta(t, body);
    const obj = this.decode(t, body, wo);
    const meta: KObj = obj.metadata;
    if (t.namespaced) {
      if (meta.namespace && meta.namespace !== ns) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta.namespace = ns;
      this.admitNamespace(t, ns, String(meta.name ?? ''));
    } else delete meta.namespace;
    const generated = !meta.name && Boolean(meta.generateName);
    if (generated) meta.name = generateName(String(meta.generateName));
    const rvSet = meta.resourceVersion !== undefined && meta.resourceVersion !== '';
    const now = this.opts.now();
    meta.uid = newUid();
    meta.creationTimestamp = rfc3339(now);
    for (const k of ['deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink', 'managedFields', 'resourceVersion']) delete meta[k];
    if (t.generation !== 'none') meta.generation = 1;
    else delete meta.generation;
    t.prepareForCreate?.(obj, now);
    const errs = this.validationErrors(t, obj, undefined, false);
    if (errs.length) throw invalid(groupKind(t), String(meta.name ?? ''), errs);
    if (rvSet) throw internalError('resourceVersion should not be set on objects to be created');
    for (let attempt = 0; this.store.get(t.storage, meta.namespace, meta.name); attempt++) {
      if (!generated || attempt >= 8) throw alreadyExistsError(t, meta.name);
      meta.name = generateName(String(meta.generateName));
    }
    if (wo.dryRun) return this.output(t, obj);
    const ev = this.store.commit(t.storage, 'ADDED', obj);
    const result = this.output(t, ev.obj);
    if (t === customresourcedefinitions) {
      // The CRD controllers accept the names and establish the resource right away.
      const est = clone(ev.obj);
      est.status = establishedStatus(est, now);
      this.store.commit(t.storage, 'MODIFIED', est, ev.obj);
    }
    this.scheduleControllers();
    return result;
  }

  update(t: ResourceType, ns: string, name: string, body: unknown, sub: '' | 'status', wo: WriteOptions): KObj {
    const old = this.store.get(t.storage, t.namespaced ? ns : '', name);
    if (!old) throw notFound(groupResource(t), name);
    if (!isPlainObject(body)) throw badRequest(`${t.kind} in version "${t.version}" cannot be handled as a ${t.kind}: the body must be a JSON object`);
    this.checkTypeMeta(t, body);
    const obj = this.decode(t, body, wo);
    const meta: KObj = obj.metadata;
    if (t.namespaced) {
      if (meta.namespace && meta.namespace !== ns) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta.namespace = ns;
    }
    if (meta.name !== name) throw badRequest(`the name of the object (${meta.name ?? ''}) does not match the name on the URL (${name})`);
    return this.commonUpdate(t, old, obj, sub, wo, false);
  }

  patch(
    t: ResourceType,
    ns: string,
    name: string,
    contentType: string,
    body: unknown,
    sub: '' | 'status',
    wo: WriteOptions,
  ): KObj {
    const accepted = t.smp
      ? [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.strategic, PATCH_TYPES.apply]
      : [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.apply];
    // Server-side apply needs managed fields, which this server does not track.
    if (!accepted.includes(contentType) || contentType === PATCH_TYPES.apply) throw unsupportedMediaType(accepted);
    const old = this.store.get(t.storage, t.namespaced ? ns : '', name);
    if (!old) throw notFound(groupResource(t), name);
    const current = this.output(t, old);
    let patched: KObj;
    try {
      if (contentType === PATCH_TYPES.json) {
        const ops = decodeJsonPatch(body);
        if (ops.length > MAX_JSON_PATCH_OPERATIONS)
          throw requestEntityTooLarge(`The allowed maximum operations in a JSON patch is ${MAX_JSON_PATCH_OPERATIONS}, got ${ops.length}`);
        patched = applyJsonPatch(current, ops);
      } else if (contentType === PATCH_TYPES.merge) patched = applyMergePatch(current, body);
      else patched = applyStrategicMergePatch(current, body, t.smp ?? {});
    } catch (e) {
      if (e instanceof PatchError) {
        if (e.kind === 'decode') throw badRequest(e.message);
        throw genericResponse(422, e.message);
      }
      throw e;
    }
    const pm: KObj = isPlainObject(patched.metadata) ? patched.metadata : {};
    if (t.namespaced && (pm.namespace ?? '') !== ns)
      throw badRequest(`the namespace of the object (${pm.namespace ?? ''}) does not match the namespace on the request (${ns})`);
    if (pm.name !== name) throw badRequest(`the name of the object (${pm.name ?? ''}) does not match the name on the URL (${name})`);
    this.checkTypeMeta(t, patched);
    const obj = this.decode(t, patched, wo);
    return this.commonUpdate(t, old, obj, sub, wo, true);
  }

  /** The rest of an update once the new object is decoded: preconditions, strategy, validation, write. */
  private commonUpdate(t: ResourceType, old: KObj, obj: KObj, sub: '' | 'status', wo: WriteOptions, fromPatch: boolean): KObj {
    const meta: KObj = obj.metadata;
    const gr = groupResource(t);
    const name = String(old.metadata.name);
    const bodyRv = meta.resourceVersion;
    if (bodyRv === undefined || bodyRv === '' || bodyRv === null) {
      if (!t.allowUnconditionalUpdate && !fromPatch)
        throw invalid({ group: t.group, kind: t.plural }, name, [
          fe.invalid('metadata.resourceVersion', new RawValue('0x0'), 'must be specified for an update'),
        ]);
    } else {
      if (parseRv(String(bodyRv)) === undefined) throw badRequest(`invalid resource version: ${String(bodyRv)}`);
      if (String(bodyRv) !== old.metadata.resourceVersion) throw conflict(gr, name, STALE_OBJECT);
    }
    const om: KObj = old.metadata;
    if (meta.uid === undefined || meta.uid === '') meta.uid = om.uid;
    meta.name = om.name;
    if (t.namespaced) meta.namespace = om.namespace;
    for (const k of ['creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation']) {
      if (om[k] === undefined) delete meta[k];
      else meta[k] = om[k];
    }
    for (const k of ['selfLink', 'managedFields']) delete meta[k];
    meta.resourceVersion = om.resourceVersion;
    if (sub === 'status') t.prepareForStatusUpdate?.(obj, old);
    else t.prepareForUpdate?.(obj, old);
    if (om.deletionTimestamp) {
      const added = ((obj.metadata.finalizers ?? []) as string[]).filter((f) => !((om.finalizers ?? []) as string[]).includes(f));
      if (added.length)
        throw invalid(groupKind(t), name, [
          fe.forbidden(
            'metadata.finalizers',
            `no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`,
          ),
        ]);
    }
    this.bumpGeneration(t, obj, old);
    const errs = this.validationErrors(t, obj, old, sub === 'status');
    if (errs.length) throw invalid(groupKind(t), name, errs);
    if (deepEqual(obj, old)) return this.output(t, old); // no-op: nothing written, no event
    const m: KObj = obj.metadata;
    const deleteNow = m.deletionTimestamp && !(m.finalizers ?? []).length && !(m.deletionGracePeriodSeconds > 0);
    if (wo.dryRun) return this.output(t, obj);
    const ev = this.store.commit(t.storage, deleteNow ? 'DELETED' : 'MODIFIED', obj, old);
    this.scheduleControllers();
    return this.output(t, ev.obj);
  }

  private bumpGeneration(t: ResourceType, obj: KObj, old: KObj): void {
    if (t.generation === 'none') return;
    let changed: boolean;
    if (t.generation === 'spec') changed = !deepEqual(obj.spec, old.spec);
    else {
      const strip = (o: KObj): KObj => {
        const c: KObj = { ...o };
        delete c.metadata;
        if (t.custom?.statusSubresource) delete c.status;
        return c;
      };
      changed = !deepEqual(strip(obj), strip(old));
    }
    if (changed) obj.metadata.generation = (Number(old.metadata.generation) || 0) + 1;
  }

  // -------------------------------------------------------------------------------------------
  // Deletion

  delete(t: ResourceType, ns: string, name: string, opts: DeleteOptions, wo: WriteOptions): DeleteResult {
    const key = t.namespaced ? ns : '';
    const old = this.store.get(t.storage, key, name);
    if (!old) throw notFound(groupResource(t), name);
    const gr = groupResource(t);
    const pre = opts.preconditions ?? {};
    const storageKey = `/registry/${t.group ? t.group + '/' : ''}${t.plural}/${objectKey(key, name)}`;
    if (pre.uid !== undefined && pre.uid !== null && pre.uid !== old.metadata.uid)
      throw conflict(
        gr,
        name,
        `StorageError: invalid object, Code: 4, Key: ${storageKey}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`,
      );
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== null && pre.resourceVersion !== old.metadata.resourceVersion)
      throw conflict(
        gr,
        name,
        `StorageError: invalid object, Code: 4, Key: ${storageKey}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`,
      );
    const policy = opts.propagationPolicy;
    if (policy !== undefined && !['Foreground', 'Background', 'Orphan'].includes(policy))
      throw invalid({ group: 'meta.k8s.io', kind: 'DeleteOptions' }, '', [
        fe.notSupported('propagationPolicy', policy, ['Foreground', 'Background', 'Orphan', 'nil']),
      ]);
    if (opts.gracePeriodSeconds !== undefined && opts.gracePeriodSeconds < 0 && t !== namespaces) opts.gracePeriodSeconds = 1;
    if (t === namespaces && IMMORTAL_NAMESPACES.has(name))
      throw forbidden(gr, name, 'this namespace may not be deleted');

    const obj = clone(old);
    const m: KObj = obj.metadata;
    const now = this.opts.now();
    const fins: string[] = [...(m.finalizers ?? [])];
    if (policy === 'Orphan' || (policy === undefined && opts.orphanDependents === true)) {
      if (!fins.includes('orphan')) fins.push('orphan');
    } else if (policy === 'Foreground') {
      if (!fins.includes('foregroundDeletion')) fins.push('foregroundDeletion');
    }
    if (t === customresourcedefinitions && !fins.includes(CRD_CLEANUP_FINALIZER)) fins.push(CRD_CLEANUP_FINALIZER);
    if (fins.length) m.finalizers = fins;

    if (t === namespaces) {
      // The namespace REST: mark Terminating; the namespace controller empties and removes it.
      if (!m.deletionTimestamp) {
        m.deletionTimestamp = rfc3339(now);
        m.deletionGracePeriodSeconds = 0;
        obj.status = { ...(obj.status ?? {}), phase: 'Terminating' };
      }
      return this.finishPendingDelete(t, obj, old, wo);
    }

    const grace = t.gracePeriod ? t.gracePeriod(old, opts.gracePeriodSeconds) : 0;
    if (grace > 0) {
      const current = m.deletionGracePeriodSeconds;
      if (!m.deletionTimestamp || (typeof current === 'number' && grace < current)) {
        m.deletionTimestamp = rfc3339(new Date(now.getTime() + grace * 1000));
        m.deletionGracePeriodSeconds = grace;
      }
      const res = this.finishPendingDelete(t, obj, old, wo);
      if (!wo.dryRun) this.scheduleKubelet(t, obj);
      return res;
    }
    if (fins.length) {
      // Finalizers keep the object; it only gets its deletionTimestamp (or, ending a graceful
      // deletion, a zero grace period) and is removed when the last finalizer goes.
      if (!m.deletionTimestamp || (m.deletionGracePeriodSeconds ?? 0) > 0) {
        m.deletionTimestamp = rfc3339(now);
        m.deletionGracePeriodSeconds = 0;
      }
      return this.finishPendingDelete(t, obj, old, wo);
    }
    if (wo.dryRun) return this.deletedResult(t, old);
    this.store.commit(t.storage, 'DELETED', obj, old);
    this.scheduleControllers();
    return this.deletedResult(t, old);
  }

  private deletedResult(t: ResourceType, old: KObj): DeleteResult {
    if (t.returnDeletedObject) return { code: 200, body: this.output(t, old) };
    const d: KObj = { name: old.metadata.name };
    if (t.group) d.group = t.group;
    d.kind = t.plural;
    d.uid = old.metadata.uid;
    return { code: 200, body: successStatus(d) };
  }

  /** Deletion that leaves the object in place (finalizers, grace period): persist and answer with it. */
  private finishPendingDelete(t: ResourceType, obj: KObj, old: KObj, wo: WriteOptions): DeleteResult {
    if (deepEqual(obj, old) || wo.dryRun) return { code: 200, body: this.output(t, wo.dryRun ? obj : old) };
    const ev = this.store.commit(t.storage, 'MODIFIED', obj, old);
    this.scheduleControllers();
    return { code: 200, body: this.output(t, ev.obj) };
  }

  async deleteCollection(t: ResourceType, ns: string, q: ListQuery, opts: DeleteOptions, wo: WriteOptions): Promise<KObj> {
    const list = await this.list(t, ns, { labelSelector: q.labelSelector, fieldSelector: q.fieldSelector });
    const items: KObj[] = [];
    for (const item of list.items as KObj[]) {
      try {
        const before = this.store.get(t.storage, t.namespaced ? item.metadata.namespace : '', item.metadata.name);
        const r = this.delete(t, item.metadata.namespace ?? '', item.metadata.name, { ...opts }, wo);
        // The collection answer lists the objects, whatever a single DELETE of the kind returns.
        if (r.body.kind !== 'Status') items.push(r.body);
        else if (before) items.push(this.output(t, before));
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
    return { apiVersion: t.apiVersion, kind: t.listKind, metadata: {}, items };
  }

  // -------------------------------------------------------------------------------------------
  // Subresources with their own semantics

  /** POST pods/{name}/binding: the scheduler's way to set spec.nodeName. */
  bindPod(ns: string, name: string, body: unknown, wo: WriteOptions): KObj {
    const b: KObj = isPlainObject(body) ? body : {};
    const target: KObj = isPlainObject(b.target) ? b.target : {};
    if (!target.name) throw invalid({ group: '', kind: 'Binding' }, name, [fe.required('target.name')]);
    const pods = this.resolve('', 'v1', 'pods') as ResourceType;
    const old = this.store.get(pods.storage, ns, name);
    if (!old) throw notFound({ group: '', resource: 'pods' }, name);
    const gr = { group: '', resource: 'pods/binding' };
    if (old.metadata.deletionTimestamp) throw conflict(gr, name, `pod ${name} is being deleted, cannot be assigned to a host`);
    if (old.spec?.nodeName) throw conflict(gr, name, `pod ${name} is already assigned to node ${JSON.stringify(old.spec.nodeName)}`);
    const obj = clone(old);
    obj.spec.nodeName = target.name;
    const conds: KObj[] = (obj.status.conditions ?? []).filter((c: KObj) => c.type !== 'PodScheduled');
    conds.push({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: rfc3339(this.opts.now()) });
    obj.status.conditions = conds;
    if (!wo.dryRun) {
      this.store.commit(pods.storage, 'MODIFIED', obj, old);
      this.scheduleControllers();
    }
    return successStatus(undefined, 201);
  }

  /** PUT namespaces/{name}/finalize: replaces spec.finalizers. */
  finalizeNamespace(name: string, body: unknown, wo: WriteOptions): KObj {
    const old = this.store.get(NS_STORAGE, '', name);
    if (!old) throw notFound({ group: '', resource: 'namespaces' }, name);
    const b: KObj = isPlainObject(body) ? body : {};
    const obj = clone(old);
    obj.spec = { ...(obj.spec ?? {}), finalizers: clone(b.spec?.finalizers ?? []) };
    if (deepEqual(obj, old)) return this.output(namespaces, old);
    if (wo.dryRun) return this.output(namespaces, obj);
    const gone = obj.metadata.deletionTimestamp && !obj.spec.finalizers.length && !(obj.metadata.finalizers ?? []).length;
    const ev = this.store.commit(NS_STORAGE, gone ? 'DELETED' : 'MODIFIED', obj, old);
    this.scheduleControllers();
    return this.output(namespaces, ev.obj);
  }

  // -------------------------------------------------------------------------------------------
  // Controllers

  scheduleControllers(): void {
    if (this.controllersPending || this.closed) return;
    this.controllersPending = true;
    setImmediate(() => {
      this.controllersPending = false;
      if (!this.closed) this.runControllers();
    });
  }

  /** Runs the controllers until nothing changes (bounded, in case two of them disagree). */
  runControllers(): void {
    for (let i = 0; i < 50; i++) {
      let changed = false;
      try {
        changed = this.namespaceController() || changed;
        changed = this.crdController() || changed;
        if (this.opts.garbageCollector) changed = this.garbageCollector() || changed;
      } catch {
        // A controller error is retried at the next change, as a real controller would requeue.
      }
      if (!changed) return;
    }
  }

  /** Deletes `o` unless it is already being deleted; true if something changed. */
  private deleteIfNeeded(storage: string, o: KObj, opts: DeleteOptions = {}): boolean {
    if (o.metadata.deletionTimestamp) return false;
    const t = this.typeForStorage(storage);
    if (!t) return false;
    try {
      this.delete(t, o.metadata.namespace ?? '', o.metadata.name, opts, this.systemWrite());
      return true;
    } catch {
      return false;
    }
  }

  private namespaceController(): boolean {
    let changed = false;
    for (const [, ns] of this.store.list(NS_STORAGE)) {
      if (!ns.metadata.deletionTimestamp) continue;
      const name = ns.metadata.name;
      let remaining = 0;
      for (const storage of this.store.storages()) {
        if (storage === NS_STORAGE) continue;
        for (const [, o] of this.store.list(storage)) {
          if (o.metadata.namespace !== name) continue;
          remaining++;
          changed = this.deleteIfNeeded(storage, o) || changed;
        }
      }
      if (remaining > 0) continue;
      const cur = this.store.get(NS_STORAGE, '', name);
      if (!cur) continue;
      const obj = clone(cur);
      obj.spec = { ...(obj.spec ?? {}), finalizers: ((obj.spec?.finalizers ?? []) as string[]).filter((f) => f !== 'kubernetes') };
      const gone = !obj.spec.finalizers.length && !(obj.metadata.finalizers ?? []).length;
      if (gone) {
        this.store.commit(NS_STORAGE, 'DELETED', obj, cur);
        changed = true;
      } else if (!deepEqual(obj, cur)) {
        this.store.commit(NS_STORAGE, 'MODIFIED', obj, cur);
        changed = true;
      }
    }
    return changed;
  }

  private crdController(): boolean {
    let changed = false;
    for (const [, crd] of this.store.list(CRD_STORAGE)) {
      if (!crd.metadata.deletionTimestamp) continue;
      const fins: string[] = crd.metadata.finalizers ?? [];
      if (!fins.includes(CRD_CLEANUP_FINALIZER)) continue;
      const conds: KObj[] = crd.status?.conditions ?? [];
      if (!conds.some((c) => c.type === 'Terminating')) {
        const obj = clone(crd);
        obj.status = { ...(obj.status ?? {}), conditions: [...conds, terminatingCondition(this.opts.now())] };
        this.store.commit(CRD_STORAGE, 'MODIFIED', obj, crd);
        changed = true;
        continue;
      }
      const storage = `${crd.spec.group}/${crd.spec.names.plural}`;
      const objs = this.store.list(storage);
      for (const [, o] of objs) changed = this.deleteIfNeeded(storage, o) || changed;
      if (objs.length) continue;
      const obj = clone(crd);
      obj.metadata.finalizers = fins.filter((f) => f !== CRD_CLEANUP_FINALIZER);
      if (!obj.metadata.finalizers.length) delete obj.metadata.finalizers;
      this.store.commit(CRD_STORAGE, obj.metadata.finalizers ? 'MODIFIED' : 'DELETED', obj, crd);
      changed = true;
    }
    return changed;
  }

  private garbageCollector(): boolean {
    let changed = false;
    const byUid = new Map<string, { storage: string; obj: KObj }>();
    for (const storage of this.store.storages()) for (const [, o] of this.store.list(storage)) byUid.set(o.metadata.uid, { storage, obj: o });
    const served = new Set(this.types().map((t) => `${t.apiVersion}/${t.kind}`));
    const dependents = new Map<string, Array<{ storage: string; obj: KObj; ref: KObj }>>();
    for (const { storage, obj } of byUid.values()) {
      const refs: KObj[] = obj.metadata.ownerReferences ?? [];
      if (!refs.length) continue;
      for (const r of refs) {
        const list = dependents.get(r.uid) ?? [];
        list.push({ storage, obj, ref: r });
        dependents.set(r.uid, list);
      }
      let keep: KObj[] = [];
      let dangling = 0;
      let foreground = false;
      for (const r of refs) {
        const owner = byUid.get(r.uid);
        // An owner of a kind this server does not serve cannot be checked; the real GC leaves such
        // dependents alone too (no REST mapping).
        if (!served.has(`${r.apiVersion}/${r.kind}`)) {
          keep.push(r);
          continue;
        }
        if (!owner || owner.obj.metadata.name !== r.name) {
          dangling++;
          continue;
        }
        const ofins: string[] = owner.obj.metadata.finalizers ?? [];
        if (owner.obj.metadata.deletionTimestamp && ofins.includes('orphan')) continue; // orphaned: drop the reference
        if (owner.obj.metadata.deletionTimestamp && ofins.includes('foregroundDeletion')) foreground = true;
        keep.push(r);
      }
      if (foreground) {
        changed = this.deleteIfNeeded(storage, obj, { propagationPolicy: 'Foreground' }) || changed;
        continue;
      }
      if (keep.length === refs.length) continue;
      if (keep.length === 0 && dangling > 0) {
        changed = this.deleteIfNeeded(storage, obj) || changed;
        continue;
      }
      const cur = this.store.get(storage, obj.metadata.namespace, obj.metadata.name);
      if (!cur) continue;
      const upd = clone(cur);
      keep = keep.map((r) => clone(r));
      if (keep.length) upd.metadata.ownerReferences = keep;
      else delete upd.metadata.ownerReferences;
      this.store.commit(storage, 'MODIFIED', upd, cur);
      changed = true;
    }
    // Owners waiting for the GC: "orphan" once no dependent points at them, "foregroundDeletion"
    // once no dependent that blocks owner deletion is left.
    for (const { storage, obj } of byUid.values()) {
      if (!obj.metadata.deletionTimestamp) continue;
      const fins: string[] = obj.metadata.finalizers ?? [];
      const deps = dependents.get(obj.metadata.uid) ?? [];
      let next = fins;
      if (fins.includes('orphan') && deps.length === 0) next = next.filter((f) => f !== 'orphan');
      if (fins.includes('foregroundDeletion') && !deps.some((d) => d.ref.blockOwnerDeletion === true))
        next = next.filter((f) => f !== 'foregroundDeletion');
      if (next.length === fins.length) continue;
      const cur = this.store.get(storage, obj.metadata.namespace, obj.metadata.name);
      if (!cur) continue;
      const upd = clone(cur);
      if (next.length) upd.metadata.finalizers = next;
      else delete upd.metadata.finalizers;
      const gone = !next.length && !(upd.metadata.deletionGracePeriodSeconds > 0);
      this.store.commit(storage, gone ? 'DELETED' : 'MODIFIED', upd, cur);
      changed = true;
    }
    return changed;
  }

  /** A kubelet's last word on a gracefully deleted pod: DELETE with grace period 0. */
  private scheduleKubelet(t: ResourceType, pod: KObj): void {
    const ms = this.opts.podTerminationMs;
    if (ms === null || this.closed) return;
    const uid = pod.metadata.uid;
    const ns = pod.metadata.namespace;
    const name = pod.metadata.name;
    const timer = setTimeout(() => {
      this.kubeletTimers.delete(timer);
      if (this.closed) return;
      const cur = this.store.get(t.storage, ns, name);
      if (!cur || cur.metadata.uid !== uid || !cur.metadata.deletionTimestamp) return;
      try {
        this.delete(t, ns, name, { gracePeriodSeconds: 0, preconditions: { uid } }, this.systemWrite());
      } catch {
        // gone or replaced meanwhile
      }
    }, ms);
    timer.unref();
    this.kubeletTimers.add(timer);
  }
}

function alreadyExistsError(t: ResourceType, name: string): ApiError {
  return new ApiError({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `${t.group ? `${t.plural}.${t.group}` : t.plural} ${JSON.stringify(name)} already exists`,
    reason: 'AlreadyExists',
    details: { name, ...(t.group ? { group: t.group } : {}), kind: t.plural },
    code: 409,
  });
}
