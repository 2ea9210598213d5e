/**
 * What the server knows about one resource at one version: names, scope, subresources and the
 * per-kind strategy (defaults, validation, which fields an update may touch, field selectors).
 * Built-in kinds are in builtins.ts, custom resources are derived from CRDs in crd.ts.
 */
import { fe, type FieldError, type GroupResource } from './errors.js';
import type { SmpSchema } from './patch.js';
import type { JSONSchemaProps } from './schema.js';
import { isPlainObject, isQualifiedName, isValidLabelValue, type KObj } from './util.js';

export interface CustomInfo {
  crdName: string;
  schema?: JSONSchemaProps;
  statusSubresource: boolean;
  terminating: boolean;
  /** spec.versions[].selectableFields, as field labels without the leading dot. */
  selectableFields: string[];
}

/** Read access to the rest of the cluster, for validation that looks at other objects. */
export interface ClusterView {
  getObject(storage: string, namespace: string, name: string): KObj | undefined;
}

export interface ResourceType {
  group: string;
  version: string;
  /** "v1" or "group/version". */
  apiVersion: string;
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Subresources served below an object: "status", "binding", "finalize". */
  subresources: string[];
  verbs: string[];
  /** Types with the same storage key share objects, resourceVersions and watch history. */
  storage: string;
  builtin: boolean;
  custom?: CustomInfo;
  /** A PUT without metadata.resourceVersion is allowed (true for most built-ins, false for CRs). */
  allowUnconditionalUpdate: boolean;
  /** How metadata.generation is kept: not at all, bumped on spec changes, or on any non-metadata change. */
  generation: 'none' | 'spec' | 'nonMetadata';
  /** DELETE answers with the object rather than a Status. */
  returnDeletedObject: boolean;
  /** Strategic merge patch support (built-ins only). */
  smp?: SmpSchema;
  nameErrors(name: string, prefix: boolean): string[];
  /** Request version → storage form (only for types that share storage with another version). */
  toStorage?(obj: KObj): KObj;
  /** Storage form → this version. */
  fromStorage?(obj: KObj): KObj;
  /** Rejects bodies the Go decoder would not accept (400), e.g. bad base64 in Secret data. */
  decodeCheck?(obj: KObj): void;
  prepareForCreate?(obj: KObj, now: Date): void;
  prepareForUpdate?(obj: KObj, old: KObj): void;
  prepareForStatusUpdate?(obj: KObj, old: KObj): void;
  validate?(obj: KObj, old: KObj | undefined, view: ClusterView): FieldError[];
  validateStatus?(obj: KObj, old: KObj): FieldError[];
  /** Field selector labels this version accepts. */
  fieldLabels: string[];
  /** Maps a label of this version to the storage vocabulary (events.k8s.io/v1 → core/v1). */
  fieldLabelToStorage?(label: string): string;
  /** Field values of a stored object, keyed by storage-vocabulary label. */
  fields(obj: KObj): Record<string, string>;
  /** Grace period for a DELETE (pods); 0 or undefined deletes at once. */
  gracePeriod?(obj: KObj, requested: number | undefined): number;
  /** Message for an unsupported field selector label. */
  fieldLabelError(label: string): string;
}

export function groupResource(t: ResourceType): GroupResource {
  return { group: t.group, resource: t.plural };
}

export function groupKind(t: ResourceType): { group: string; kind: string } {
  return { group: t.group, kind: t.kind };
}

export function metaFields(obj: KObj, namespaced: boolean): Record<string, string> {
  const f: Record<string, string> = { 'metadata.name': String(obj.metadata?.name ?? '') };
  if (namespaced) f['metadata.namespace'] = String(obj.metadata?.namespace ?? '');
  return f;
}

// ---------------------------------------------------------------------------------------------
// ObjectMeta validation (apimachinery/pkg/api/validation/objectmeta.go)

const STANDARD_FINALIZERS = new Set(['kubernetes', 'orphan', 'foregroundDeletion']);
const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

function maskTrailingDash(s: string): string {
  return s.length > 1 && s.endsWith('-') ? s.slice(0, -2) + 'a' : s;
}

export function validateObjectMeta(t: ResourceType, meta: KObj): FieldError[] {
  const errs: FieldError[] = [];
  if (meta.generateName) for (const m of t.nameErrors(maskTrailingDash(String(meta.generateName)), true)) errs.push(fe.invalid('metadata.generateName', meta.generateName, m));
  if (!meta.name) errs.push(fe.required('metadata.name', 'name or generateName is required'));
  else for (const m of t.nameErrors(String(meta.name), false)) errs.push(fe.invalid('metadata.name', meta.name, m));
  if (t.namespaced && !meta.namespace) errs.push(fe.required('metadata.namespace'));
  if (!t.namespaced && meta.namespace) errs.push(fe.forbidden('metadata.namespace', 'not allowed on this type'));
  if (meta.labels !== undefined && meta.labels !== null) {
    if (!isPlainObject(meta.labels)) errs.push(fe.invalid('metadata.labels', meta.labels, 'must be a map of strings'));
    else
      for (const [k, v] of Object.entries(meta.labels)) {
        for (const m of isQualifiedName(k)) errs.push(fe.invalid('metadata.labels', k, m));
        if (typeof v !== 'string') errs.push(fe.invalid('metadata.labels', v, 'must be a string'));
        else for (const m of isValidLabelValue(v)) errs.push(fe.invalid('metadata.labels', v, m));
      }
  }
  if (meta.annotations !== undefined && meta.annotations !== null) {
    if (!isPlainObject(meta.annotations)) errs.push(fe.invalid('metadata.annotations', meta.annotations, 'must be a map of strings'));
    else {
      let total = 0;
      for (const [k, v] of Object.entries(meta.annotations)) {
        for (const m of isQualifiedName(k.toLowerCase())) errs.push(fe.invalid('metadata.annotations', k, m));
        total += k.length + String(v).length;
      }
      if (total > TOTAL_ANNOTATION_SIZE_LIMIT)
        errs.push(fe.tooLongBytes('metadata.annotations', `must have at most ${TOTAL_ANNOTATION_SIZE_LIMIT} bytes`));
    }
  }
  if (Array.isArray(meta.ownerReferences)) {
    let controllers = 0;
    for (const r of meta.ownerReferences as KObj[]) {
      if (!r?.apiVersion) errs.push(fe.invalid('metadata.ownerReferences.apiVersion', r?.apiVersion ?? '', 'version must not be empty'));
      if (!r?.kind) errs.push(fe.invalid('metadata.ownerReferences.kind', r?.kind ?? '', 'kind must not be empty'));
      if (!r?.name) errs.push(fe.invalid('metadata.ownerReferences.name', r?.name ?? '', 'name must not be empty'));
      if (!r?.uid) errs.push(fe.invalid('metadata.ownerReferences.uid', r?.uid ?? '', 'uid must not be empty'));
      if (r?.controller === true) controllers++;
    }
    if (controllers > 1)
      errs.push(
        fe.invalid(
          'metadata.ownerReferences',
          meta.ownerReferences,
          'Only one reference can have Controller set to true. Found "true" in references for ' +
            (meta.ownerReferences as KObj[])
              .filter((r) => r?.controller === true)
              .map((r) => `${r.kind}/${r.name}`)
              .join(' and '),
        ),
      );
  }
  if (Array.isArray(meta.finalizers)) {
    const fins = meta.finalizers as unknown[];
    for (const f of fins) {
      const s = String(f);
      const q = isQualifiedName(s);
      for (const m of q) errs.push(fe.invalid('metadata.finalizers', s, m));
      if (q.length === 0 && !s.includes('/') && !STANDARD_FINALIZERS.has(s))
        errs.push(fe.invalid('metadata.finalizers', s, 'name is neither a standard finalizer name nor is it fully qualified'));
    }
    if (fins.includes('orphan') && fins.includes('foregroundDeletion'))
      errs.push(fe.invalid('metadata.finalizers', fins, 'finalizer orphan and foregroundDeletion cannot be both set'));
  }
  return errs;
}

export function validateObjectMetaUpdate(meta: KObj, old: KObj): FieldError[] {
  const errs: FieldError[] = [];
  if (meta.uid !== old.uid) errs.push(fe.invalid('metadata.uid', meta.uid, 'field is immutable'));
  return errs;
}
