/**
 * apiextensions.k8s.io/v1 CustomResourceDefinition, and the resource types a CRD makes the server
 * serve: one per served version, sharing one storage, with or without a status subresource,
 * validated and pruned by the version's structural schema.
 */
import { fe, type FieldError } from './errors.js';
import { builtinType } from './builtins.js';
import { metaFields, type ResourceType } from './resource.js';
import { structuralErrors, type JSONSchemaProps } from './schema.js';
import { clone, isDNS1123Label, isDNS1123Subdomain, isPlainObject, rfc3339, type KObj } from './util.js';

export const CRD_CLEANUP_FINALIZER = 'customresourcecleanup.apiextensions.k8s.io';

function storageVersion(crd: KObj): string | undefined {
  return (crd.spec?.versions ?? []).find((v: KObj) => v.storage === true)?.name;
}

export const customresourcedefinitions = builtinType({
  group: 'apiextensions.k8s.io',
  version: 'v1',
  plural: 'customresourcedefinitions',
  kind: 'CustomResourceDefinition',
  namespaced: false,
  shortNames: ['crd', 'crds'],
  subresources: ['status'],
  allowUnconditionalUpdate: false,
  generation: 'spec',
  smp: { metadata: { fields: { finalizers: { primitiveMerge: true }, ownerReferences: { mergeKey: 'uid' } } } },
  prepareForCreate(obj) {
    const names: KObj = obj.spec?.names;
    if (isPlainObject(names) && typeof names.kind === 'string') {
      names.singular ??= names.kind.toLowerCase();
      names.listKind ??= `${names.kind}List`;
    }
    if (isPlainObject(obj.spec)) obj.spec.conversion ??= { strategy: 'None' };
    const sv = storageVersion(obj);
    obj.status = { acceptedNames: { kind: '', plural: '' }, storedVersions: sv ? [sv] : [] };
  },
  prepareForUpdate(obj, old) {
    obj.status = clone(old.status ?? {});
    const sv = storageVersion(obj);
    const stored: string[] = (obj.status.storedVersions ??= []);
    if (sv && !stored.includes(sv)) stored.push(sv);
  },
  prepareForStatusUpdate(obj, old) {
    const status = obj.status;
    for (const k of Object.keys(obj)) delete obj[k];
    Object.assign(obj, clone(old));
    obj.status = status;
  },
  validate(obj, old) {
    const errs: FieldError[] = [];
    const spec: KObj = obj.spec;
    if (!isPlainObject(spec)) return [fe.required('spec')];
    const group = String(spec.group ?? '');
    const names: KObj = isPlainObject(spec.names) ? spec.names : {};
    if (!group) errs.push(fe.required('spec.group'));
    else {
      for (const m of isDNS1123Subdomain(group)) errs.push(fe.invalid('spec.group', group, m));
      if (!group.includes('.')) errs.push(fe.invalid('spec.group', group, 'should be a domain with at least one dot'));
    }
    if (!names.plural) errs.push(fe.required('spec.names.plural'));
    else for (const m of isDNS1123Label(names.plural)) errs.push(fe.invalid('spec.names.plural', names.plural, m));
    if (names.singular) for (const m of isDNS1123Label(names.singular)) errs.push(fe.invalid('spec.names.singular', names.singular, m));
    if (!names.kind) errs.push(fe.required('spec.names.kind'));
    if (!names.listKind) errs.push(fe.required('spec.names.listKind'));
    if (obj.metadata.name !== `${names.plural}.${group}`)
      errs.push(fe.invalid('metadata.name', obj.metadata.name, 'must be spec.names.plural+"."+spec.group'));
    if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster')
      errs.push(fe.notSupported('spec.scope', spec.scope ?? '', ['Cluster', 'Namespaced']));
    const versions: KObj[] = Array.isArray(spec.versions) ? spec.versions : [];
    if (versions.length === 0) errs.push(fe.required('spec.versions'));
    else if (versions.filter((v) => v.storage === true).length !== 1)
      errs.push(fe.invalid('spec.versions', versions.length, 'must have exactly one version marked as storage version'));
    const seen = new Set<string>();
    versions.forEach((v, i) => {
      const p = `spec.versions[${i}]`;
      if (!v.name) errs.push(fe.required(`${p}.name`));
      else {
        for (const m of isDNS1123Label(v.name)) errs.push(fe.invalid(`${p}.name`, v.name, m));
        if (seen.has(v.name)) errs.push(fe.duplicate(`${p}.name`, v.name));
        seen.add(v.name);
      }
      const schema = v.schema?.openAPIV3Schema;
      if (!isPlainObject(schema)) errs.push(fe.required(`${p}.schema.openAPIV3Schema`, 'schemas are required'));
      else errs.push(...structuralErrors(schema as JSONSchemaProps, `${p}.schema.openAPIV3Schema`));
      const sub: KObj = v.subresources ?? {};
      for (const k of Object.keys(sub))
        if (k !== 'status' && k !== 'scale') errs.push(fe.forbidden(`${p}.subresources.${k}`, 'unknown subresource'));
    });
    if (old) {
      if (old.spec?.group !== spec.group) errs.push(fe.invalid('spec.group', spec.group, 'field is immutable'));
      if (old.spec?.scope !== spec.scope) errs.push(fe.invalid('spec.scope', spec.scope, 'field is immutable'));
      if (old.spec?.names?.plural !== names.plural) errs.push(fe.invalid('spec.names.plural', names.plural, 'field is immutable'));
    }
    return errs;
  },
});

/** Status the CRD controllers write once the names are accepted and the resource is served. */
export function establishedStatus(crd: KObj, now: Date): KObj {
  const t = rfc3339(now);
  const status = clone(crd.status ?? {});
  status.acceptedNames = clone(crd.spec.names);
  status.conditions = [
    { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: t },
    { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: t },
  ];
  return status;
}

export function terminatingCondition(now: Date): KObj {
  return {
    type: 'Terminating',
    status: 'True',
    reason: 'InstanceDeletionInProgress',
    message: 'CustomResource deletion is in progress',
    lastTransitionTime: rfc3339(now),
  };
}

function valueAt(obj: KObj, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (!isPlainObject(cur)) return '';
    cur = cur[part];
  }
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'object' ? JSON.stringify(cur) : String(cur);
}

/** The resource types a CRD serves: one per served version. */
export function customTypes(crd: KObj): ResourceType[] {
  const spec: KObj = crd.spec;
  const group: string = spec.group;
  const names: KObj = spec.names;
  const namespaced = spec.scope === 'Namespaced';
  const sv = storageVersion(crd);
  const terminating = Boolean(crd.metadata.deletionTimestamp);
  const types: ResourceType[] = [];
  for (const v of spec.versions as KObj[]) {
    if (v.served !== true) continue;
    const statusSub = isPlainObject(v.subresources) && v.subresources.status !== undefined;
    const selectable: string[] = (v.selectableFields ?? []).map((f: KObj) => String(f.jsonPath).replace(/^\./, ''));
    const apiVersion = `${group}/${v.name}`;
    const storageApiVersion = `${group}/${sv}`;
    const t: ResourceType = {
      group,
      version: v.name,
      apiVersion,
      plural: names.plural,
      singular: names.singular ?? String(names.kind).toLowerCase(),
      kind: names.kind,
      listKind: names.listKind ?? `${names.kind}List`,
      namespaced,
      shortNames: names.shortNames ?? [],
      categories: names.categories ?? [],
      subresources: statusSub ? ['status'] : [],
      verbs: ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'],
      storage: `${group}/${names.plural}`,
      builtin: false,
      custom: {
        crdName: crd.metadata.name,
        schema: v.schema?.openAPIV3Schema,
        statusSubresource: statusSub,
        terminating,
        selectableFields: selectable,
      },
      allowUnconditionalUpdate: false,
      generation: 'nonMetadata',
      returnDeletedObject: true,
      nameErrors: (n) => isDNS1123Subdomain(n),
      toStorage: (o) => ({ ...o, apiVersion: storageApiVersion }),
      fromStorage: (o) => ({ ...clone(o), apiVersion }),
      prepareForCreate(obj) {
        if (statusSub) delete obj.status;
      },
      prepareForUpdate(obj, old) {
        if (!statusSub) return;
        if (old.status === undefined) delete obj.status;
        else obj.status = clone(old.status);
      },
      prepareForStatusUpdate(obj, old) {
        const has = Object.prototype.hasOwnProperty.call(obj, 'status');
        const status = obj.status;
        for (const k of Object.keys(obj)) delete obj[k];
        Object.assign(obj, clone(old));
        if (has) obj.status = status;
        else delete obj.status;
      },
      fieldLabels: ['metadata.name', 'metadata.namespace', ...selectable],
      fields: (o) => {
        const f = metaFields(o, true);
        for (const s of selectable) f[s] = valueAt(o, s);
        return f;
      },
      fieldLabelError: (l) =>
        selectable.length
          ? `field label not supported: ${l}`
          : `"${l}" is not a known field selector: only "metadata.name", "metadata.namespace"`,
    };
    types.push(t);
  }
  return types;
}
