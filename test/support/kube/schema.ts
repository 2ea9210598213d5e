/**
 * Structural OpenAPI v3 schemas of CustomResourceDefinitions, applied the way apiextensions-apiserver
 * does on every write: prune unknown fields (honouring x-kubernetes-preserve-unknown-fields and
 * embedded resources), drop nulls of non-nullable fields, apply defaults, then validate.
 * Not implemented: CEL rules (x-kubernetes-validations) and validation ratcheting.
 */
import { fe, type FieldError } from './errors.js';
import { clone, deepEqual, isBase64, isPlainObject } from './util.js';

export interface JSONSchemaProps {
  type?: string;
  format?: string;
  enum?: unknown[];
  nullable?: boolean;
  default?: unknown;
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps | boolean;
  items?: JSONSchemaProps;
  required?: string[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minProperties?: number;
  maxProperties?: number;
  allOf?: JSONSchemaProps[];
  anyOf?: JSONSchemaProps[];
  oneOf?: JSONSchemaProps[];
  not?: JSONSchemaProps;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: string;
  'x-kubernetes-validations'?: unknown[];
}

/** The fields of ObjectMeta; everything else under `metadata` is dropped when decoding. */
export const OBJECT_META_FIELDS = new Set([
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
]);

export function pruneMetadata(meta: unknown, path: string, pruned: string[]): void {
  if (!isPlainObject(meta)) return;
  for (const k of Object.keys(meta))
    if (!OBJECT_META_FIELDS.has(k)) {
      delete meta[k];
      pruned.push(`${path}.${k}`);
    }
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function pruneNode(v: unknown, s: JSONSchemaProps | undefined, path: string, pruned: string[], root: boolean): void {
  if (!s) return;
  if (isPlainObject(v)) {
    const embedded = root || s['x-kubernetes-embedded-resource'] === true;
    const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
    for (const k of Object.keys(v)) {
      if (embedded && (k === 'apiVersion' || k === 'kind')) continue;
      if (embedded && k === 'metadata') {
        pruneMetadata(v[k], join(path, k), pruned);
        continue;
      }
      const ps = s.properties?.[k];
      if (ps) {
        pruneNode(v[k], ps, join(path, k), pruned, false);
        continue;
      }
      if (isPlainObject(s.additionalProperties)) {
        pruneNode(v[k], s.additionalProperties, join(path, k), pruned, false);
        continue;
      }
      if (preserve || s.additionalProperties === true) continue;
      delete v[k];
      pruned.push(join(path, k));
    }
  } else if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) pruneNode(v[i], s.items, `${path}[${i}]`, pruned, false);
  }
}

/** Removes fields the schema does not declare; returns their paths (for warnings / strict mode). */
export function prune(obj: Record<string, unknown>, schema: JSONSchemaProps): string[] {
  const pruned: string[] = [];
  pruneNode(obj, schema, '', pruned, true);
  return pruned;
}

/** PruneNonNullableNullsWithoutDefaults. */
export function pruneNulls(v: unknown, s: JSONSchemaProps | undefined): void {
  if (!s) return;
  if (isPlainObject(v)) {
    for (const k of Object.keys(v)) {
      const ps = s.properties?.[k];
      if (ps) {
        if (v[k] === null && ps.default === undefined && !ps.nullable) delete v[k];
        else pruneNulls(v[k], ps);
      } else if (isPlainObject(s.additionalProperties)) pruneNulls(v[k], s.additionalProperties);
    }
  } else if (Array.isArray(v)) for (const x of v) pruneNulls(x, s.items);
}

/** structuraldefaulting.Default: fill missing (or null, non-nullable) properties from `default`. */
export function applyDefaults(v: unknown, s: JSONSchemaProps | undefined): void {
  if (!s) return;
  if (isPlainObject(v)) {
    for (const [k, ps] of Object.entries(s.properties ?? {})) {
      if (ps.default === undefined) continue;
      if (!(k in v) || (v[k] === null && !ps.nullable)) v[k] = clone(ps.default);
    }
    for (const k of Object.keys(v)) {
      const ps = s.properties?.[k] ?? (isPlainObject(s.additionalProperties) ? s.additionalProperties : undefined);
      applyDefaults(v[k], ps);
    }
  } else if (Array.isArray(v)) for (const x of v) applyDefaults(x, s.items);
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'object') return 'object';
  return typeof v;
}

const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$/;
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const IPV4_RE = /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$/;

function formatOk(format: string, v: unknown): boolean {
  if (typeof v === 'string') {
    switch (format) {
      case 'date-time':
        return DATE_TIME_RE.test(v) && !Number.isNaN(Date.parse(v.replace(' ', 'T')));
      case 'date':
        return DATE_RE.test(v);
      case 'byte':
        return isBase64(v);
      case 'uuid':
        return UUID_RE.test(v);
      case 'ipv4':
        return IPV4_RE.test(v);
      default:
        return true;
    }
  }
  if (typeof v === 'number') {
    if (format === 'int32') return v >= -2147483648 && v <= 2147483647;
    return true;
  }
  return true;
}

function typeMatches(type: string, v: unknown): boolean {
  const t = jsonType(v);
  if (type === 'number') return t === 'number' || t === 'integer';
  return t === type;
}

function validateNode(v: unknown, s: JSONSchemaProps, path: string, errs: FieldError[], root: boolean): void {
  if (v === null) {
    if (s.nullable) return;
    if (s.type) {
      errs.push(fe.typeInvalid(path, 'null', `${path} in body must be of type ${s.type}: "null"`));
      return;
    }
    if (!s['x-kubernetes-preserve-unknown-fields'] && !s['x-kubernetes-int-or-string']) return;
  }
  if (s['x-kubernetes-int-or-string']) {
    const t = jsonType(v);
    if (t !== 'integer' && t !== 'string') {
      errs.push(fe.typeInvalid(path, t, `${path} in body must be of type integer,string: ${JSON.stringify(t)}`));
      return;
    }
  } else if (s.type && !typeMatches(s.type, v)) {
    const t = jsonType(v);
    errs.push(fe.typeInvalid(path, t, `${path} in body must be of type ${s.type}: ${JSON.stringify(t)}`));
    return;
  }
  if (s.enum && !s.enum.some((e) => deepEqual(e, v))) {
    errs.push(fe.notSupported(path, v, s.enum.map((e) => (typeof e === 'string' ? e : JSON.stringify(e)))));
  }
  if (s.format && !formatOk(s.format, v)) {
    errs.push(fe.typeInvalid(path, v, `${path} in body must be of type ${s.format}: ${JSON.stringify(v)}`));
  }
  if (typeof v === 'string') {
    const len = [...v].length;
    if (s.maxLength !== undefined && len > s.maxLength) errs.push(fe.tooLong(path, s.maxLength));
    if (s.minLength !== undefined && len < s.minLength)
      errs.push(fe.invalid(path, v, `${path} in body should be at least ${s.minLength} chars long`));
    if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(v))
      errs.push(fe.invalid(path, v, `${path} in body should match '${s.pattern}'`));
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && (s.exclusiveMinimum ? v <= s.minimum : v < s.minimum))
      errs.push(
        fe.invalid(path, v, `${path} in body should be greater than ${s.exclusiveMinimum ? '' : 'or equal to '}${s.minimum}`),
      );
    if (s.maximum !== undefined && (s.exclusiveMaximum ? v >= s.maximum : v > s.maximum))
      errs.push(fe.invalid(path, v, `${path} in body should be less than ${s.exclusiveMaximum ? '' : 'or equal to '}${s.maximum}`));
    if (s.multipleOf !== undefined && s.multipleOf > 0 && Math.abs(v / s.multipleOf - Math.round(v / s.multipleOf)) > 1e-9)
      errs.push(fe.invalid(path, v, `${path} in body should be a multiple of ${s.multipleOf}`));
  }
  if (Array.isArray(v)) {
    if (s.maxItems !== undefined && v.length > s.maxItems) errs.push(fe.tooMany(path, v.length, s.maxItems));
    if (s.minItems !== undefined && v.length < s.minItems)
      errs.push(fe.invalid(path, v, `${path} in body should have at least ${s.minItems} items`));
    const listType = s['x-kubernetes-list-type'];
    if (s.uniqueItems || listType === 'set') {
      for (let i = 0; i < v.length; i++)
        for (let j = 0; j < i; j++)
          if (deepEqual(v[i], v[j])) {
            errs.push(fe.duplicate(`${path}[${i}]`, v[i]));
            break;
          }
    }
    if (listType === 'map') {
      const keys = s['x-kubernetes-list-map-keys'] ?? [];
      const seen: unknown[] = [];
      v.forEach((x, i) => {
        if (!isPlainObject(x)) return;
        const k = keys.map((kk) => x[kk]);
        if (seen.some((p) => deepEqual(p, k))) errs.push(fe.duplicate(`${path}[${i}]`, x));
        seen.push(k);
      });
    }
    if (s.items) for (let i = 0; i < v.length; i++) validateNode(v[i], s.items, `${path}[${i}]`, errs, false);
  }
  if (isPlainObject(v)) {
    const n = Object.keys(v).length;
    if (s.maxProperties !== undefined && n > s.maxProperties)
      errs.push(fe.tooMany(path, n, s.maxProperties));
    if (s.minProperties !== undefined && n < s.minProperties)
      errs.push(fe.invalid(path, n, `${path} in body should have at least ${s.minProperties} properties`));
    for (const r of s.required ?? []) if (!(r in v)) errs.push(fe.required(join(path, r)));
    if (s['x-kubernetes-embedded-resource'] && !root) {
      if (!v.apiVersion) errs.push(fe.required(join(path, 'apiVersion')));
      if (!v.kind) errs.push(fe.required(join(path, 'kind')));
    }
    for (const [k, x] of Object.entries(v)) {
      if (root && (k === 'metadata' || k === 'apiVersion' || k === 'kind')) continue;
      const ps = s.properties?.[k];
      if (ps) validateNode(x, ps, join(path, k), errs, false);
      else if (isPlainObject(s.additionalProperties)) validateNode(x, s.additionalProperties, join(path, k), errs, false);
    }
  }
  for (const sub of s.allOf ?? []) validateNode(v, sub, path, errs, false);
  if (s.anyOf && s.anyOf.length) {
    const ok = s.anyOf.some((sub) => {
      const e: FieldError[] = [];
      validateNode(v, sub, path, e, false);
      return e.length === 0;
    });
    if (!ok) errs.push(fe.invalid(path, v, `${path} in body must validate at least one schema (anyOf)`));
  }
  if (s.oneOf && s.oneOf.length) {
    const matches = s.oneOf.filter((sub) => {
      const e: FieldError[] = [];
      validateNode(v, sub, path, e, false);
      return e.length === 0;
    }).length;
    if (matches !== 1) errs.push(fe.invalid(path, v, `${path} in body must validate one and only one schema (oneOf)`));
  }
  if (s.not) {
    const e: FieldError[] = [];
    validateNode(v, s.not, path, e, false);
    if (e.length === 0) errs.push(fe.invalid(path, v, `${path} in body should not validate the schema (not)`));
  }
}

/** Validates a whole custom resource against its version's openAPIV3Schema. */
export function validateAgainstSchema(obj: Record<string, unknown>, schema: JSONSchemaProps): FieldError[] {
  const errs: FieldError[] = [];
  validateNode(obj, schema, '', errs, true);
  return errs;
}

/** A subset of the CRD "structural schema" rules, enough to reject obviously broken schemas. */
export function structuralErrors(s: JSONSchemaProps, path: string, root = true): FieldError[] {
  const errs: FieldError[] = [];
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  if (!s.type && !preserve && !intOrString && (root || s.properties || s.items || s.additionalProperties))
    errs.push(fe.required(`${path}.type`, 'must not be empty for specified object fields'));
  if (root && s.type && s.type !== 'object')
    errs.push(fe.invalid(`${path}.type`, s.type, 'must be object at the root'));
  if (s.properties && isPlainObject(s.additionalProperties))
    errs.push(fe.forbidden(`${path}.additionalProperties`, 'additionalProperties and properties are mutual exclusive'));
  if (s.type === 'array' && !s.items) errs.push(fe.required(`${path}.items`, 'must be specified'));
  for (const [k, ps] of Object.entries(s.properties ?? {})) errs.push(...structuralErrors(ps, `${path}.properties[${k}]`, false));
  if (isPlainObject(s.additionalProperties))
    errs.push(...structuralErrors(s.additionalProperties as JSONSchemaProps, `${path}.additionalProperties`, false));
  if (s.items) errs.push(...structuralErrors(s.items, `${path}.items`, false));
  return errs;
}
