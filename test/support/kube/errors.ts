/**
 * API errors as kube-apiserver reports them: `Status` objects (kind Status, apiVersion v1) with a
 * reason, an HTTP code, a message and details. Messages follow k8s.io/apimachinery's wording so
 * that code matching on them (rarely a good idea, but it happens) sees what a real server sends.
 */

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, unknown>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** Thrown inside the server; the HTTP layer turns it into a Status response. */
export class ApiError extends Error {
  readonly status: Status;
  /** Extra information for the request log only (a real server drops it, e.g. JSON-patch failures). */
  readonly note?: string;
  constructor(status: Status, note?: string) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
    this.status = status;
    this.note = note;
  }
  get code(): number {
    return this.status.code;
  }
}

/** group/resource as apimachinery prints it: "pods", "podvolumebackups.velero.io". */
export interface GroupResource {
  group: string;
  resource: string;
}

export function grString(gr: GroupResource): string {
  return gr.group ? `${gr.resource}.${gr.group}` : gr.resource;
}

function failure(code: number, reason: string, message: string, details?: StatusDetails): Status {
  const s: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details !== undefined) s.details = details;
  return s;
}

function grDetails(gr: GroupResource, name?: string): StatusDetails {
  const d: StatusDetails = {};
  if (name) d.name = name;
  if (gr.group) d.group = gr.group;
  d.kind = gr.resource;
  return d;
}

export function notFound(gr: GroupResource, name: string): ApiError {
  return new ApiError(failure(404, 'NotFound', `${grString(gr)} ${goQuote(name)} not found`, grDetails(gr, name)));
}

/** What the server answers for a path it does not serve at all (unknown resource, missing subresource). */
export function pathNotFound(): ApiError {
  return new ApiError(failure(404, 'NotFound', 'the server could not find the requested resource', {}));
}

export function alreadyExists(gr: GroupResource, name: string): ApiError {
  return new ApiError(failure(409, 'AlreadyExists', `${grString(gr)} ${goQuote(name)} already exists`, grDetails(gr, name)));
}

export function conflict(gr: GroupResource, name: string, why: string): ApiError {
  return new ApiError(
    failure(409, 'Conflict', `Operation cannot be fulfilled on ${grString(gr)} ${goQuote(name)}: ${why}`, grDetails(gr, name)),
  );
}

export const STALE_OBJECT = 'the object has been modified; please apply your changes to the latest version and try again';

export function badRequest(message: string): ApiError {
  return new ApiError(failure(400, 'BadRequest', message));
}

export function forbidden(gr: GroupResource, name: string, why: string, causes?: StatusCause[]): ApiError {
  const d = grDetails(gr, name);
  if (causes) d.causes = causes;
  return new ApiError(failure(403, 'Forbidden', `${grString(gr)} ${goQuote(name)} is forbidden: ${why}`, d));
}

export function unauthorized(): ApiError {
  return new ApiError(failure(401, 'Unauthorized', 'Unauthorized'));
}

export function methodNotAllowed(gr: GroupResource, action: string): ApiError {
  return new ApiError(
    failure(405, 'MethodNotAllowed', `${action} is not supported on resources of kind ${goQuote(grString(gr))}`, {
      ...(gr.group ? { group: gr.group } : {}),
      kind: gr.resource,
    }),
  );
}

export function unsupportedMediaType(accepted: string[]): ApiError {
  return new ApiError(
    failure(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
    ),
  );
}

export function notAcceptable(accepted: string[]): ApiError {
  return new ApiError(
    failure(406, 'NotAcceptable', `only the following media types are accepted: ${accepted.join(', ')}`),
  );
}

export function expired(message: string): ApiError {
  return new ApiError(failure(410, 'Expired', message));
}

export function gone(message: string): ApiError {
  return new ApiError(failure(410, 'Gone', message));
}

export function tooLargeResourceVersion(requested: number, current: number): ApiError {
  return new ApiError(
    failure(504, 'Timeout', `Timeout: Too large resource version: ${requested}, current: ${current}`, {
      causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
      retryAfterSeconds: 1,
    }),
  );
}

export function internalError(message: string): ApiError {
  return new ApiError(failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] }));
}

export function requestEntityTooLarge(message: string): ApiError {
  return new ApiError(failure(413, 'RequestEntityTooLarge', `Request entity too large: ${message}`));
}

/**
 * What apimachinery's NewGenericServerResponse builds for a code without further information; the
 * apiserver uses it for a JSON patch that does not apply (422 with a fixed message, no causes).
 */
export function genericResponse(code: number, note?: string): ApiError {
  let reason = 'Unknown';
  let message = `the server responded with the status code ${code} but did not return more information`;
  if (code === 422) {
    reason = 'Invalid';
    message = 'the server rejected our request due to an error in our request';
  } else if (code === 409) {
    reason = 'Conflict';
    message = 'the server reported a conflict';
  } else if (code === 404) {
    reason = 'NotFound';
    message = 'the server could not find the requested resource';
  } else if (code === 400) {
    reason = 'BadRequest';
    message = 'the server rejected our request for an unknown reason';
  } else if (code === 429) {
    reason = 'TooManyRequests';
    message = 'the server has received too many requests and has asked us to try again later';
  } else if (code === 504) {
    reason = 'Timeout';
    message = 'the server was unable to return a response in the time allotted, but may still be processing the request';
  } else if (code === 503) {
    reason = 'ServiceUnavailable';
    message = 'the server is currently unable to handle the request';
  } else if (code >= 500) {
    reason = 'InternalError';
    message = `an error on the server ("") has prevented the request from succeeding`;
  }
  return new ApiError(failure(code, reason, message, {}), note);
}

/** A Status with an arbitrary code/reason/message, for fault injection. */
export function customStatus(code: number, reason: string, message: string): Status {
  return failure(code, reason, message);
}

export function successStatus(details?: StatusDetails, code?: number): Record<string, unknown> {
  const s: Record<string, unknown> = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' };
  if (details) s.details = details;
  if (code !== undefined) s.code = code;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Field errors (k8s.io/apimachinery/pkg/util/validation/field) and the Invalid status built from them.

export type FieldErrorType =
  | 'FieldValueNotFound'
  | 'FieldValueRequired'
  | 'FieldValueDuplicate'
  | 'FieldValueInvalid'
  | 'FieldValueNotSupported'
  | 'FieldValueForbidden'
  | 'FieldValueTooLong'
  | 'FieldValueTooMany'
  | 'InternalError'
  | 'FieldValueTypeInvalid';

const TYPE_TEXT: Record<FieldErrorType, string> = {
  FieldValueNotFound: 'Not found',
  FieldValueRequired: 'Required value',
  FieldValueDuplicate: 'Duplicate value',
  FieldValueInvalid: 'Invalid value',
  FieldValueNotSupported: 'Unsupported value',
  FieldValueForbidden: 'Forbidden',
  FieldValueTooLong: 'Too long',
  FieldValueTooMany: 'Too many',
  InternalError: 'Internal error',
  FieldValueTypeInvalid: 'Invalid value',
};

const OMIT = Symbol('omit');

export interface FieldError {
  type: FieldErrorType;
  field: string;
  value: unknown;
  detail: string;
}

/** Go's %q for plain strings (close enough: JSON escaping of the common characters). */
export function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** A value printed verbatim in a field error (Go prints some values with %#v, e.g. `0x0`). */
export class RawValue {
  constructor(readonly text: string) {}
}

function formatValue(v: unknown): string {
  if (v instanceof RawValue) return v.text;
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return goQuote(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  // Go prints structs with %#v; JSON is the closest neutral rendering.
  return JSON.stringify(v);
}

export function errorBody(e: FieldError): string {
  let s: string;
  const t = TYPE_TEXT[e.type];
  if (
    e.type === 'FieldValueRequired' ||
    e.type === 'FieldValueForbidden' ||
    e.type === 'FieldValueTooLong' ||
    e.type === 'InternalError' ||
    e.value === OMIT
  ) {
    s = t;
  } else {
    s = `${t}: ${formatValue(e.value)}`;
  }
  if (e.detail) s += `: ${e.detail}`;
  return s;
}

export function fieldErrorString(e: FieldError): string {
  return `${e.field}: ${errorBody(e)}`;
}

export const fe = {
  required: (field: string, detail = ''): FieldError => ({ type: 'FieldValueRequired', field, value: '', detail }),
  invalid: (field: string, value: unknown, detail: string): FieldError => ({ type: 'FieldValueInvalid', field, value, detail }),
  typeInvalid: (field: string, value: unknown, detail: string): FieldError => ({
    type: 'FieldValueTypeInvalid',
    field,
    value,
    detail,
  }),
  notSupported: (field: string, value: unknown, supported: string[]): FieldError => ({
    type: 'FieldValueNotSupported',
    field,
    value,
    detail: supported.length ? 'supported values: ' + supported.map((x) => goQuote(x)).join(', ') : '',
  }),
  forbidden: (field: string, detail: string): FieldError => ({ type: 'FieldValueForbidden', field, value: '', detail }),
  duplicate: (field: string, value: unknown): FieldError => ({ type: 'FieldValueDuplicate', field, value, detail: '' }),
  notFound: (field: string, value: unknown): FieldError => ({ type: 'FieldValueNotFound', field, value, detail: '' }),
  tooLong: (field: string, max: number): FieldError => ({
    type: 'FieldValueTooLong',
    field,
    value: '',
    detail: `may not be more than ${max} bytes`,
  }),
  tooLongBytes: (field: string, detail: string): FieldError => ({ type: 'FieldValueTooLong', field, value: '', detail }),
  tooMany: (field: string, actual: number, max: number): FieldError => ({
    type: 'FieldValueTooMany',
    field,
    value: actual,
    detail: `must have at most ${max} items`,
  }),
  omitValue: (type: FieldErrorType, field: string, detail: string): FieldError => ({ type, field, value: OMIT, detail }),
};

/** errors.NewInvalid: 422 with one cause per field error. */
export function invalid(groupKind: { group: string; kind: string }, name: string, errs: FieldError[]): ApiError {
  const qk = groupKind.group ? `${groupKind.kind}.${groupKind.group}` : groupKind.kind;
  const causes: StatusCause[] = errs.map((e) => ({ reason: e.type, message: errorBody(e), field: e.field }));
  // utilerrors.NewAggregate de-duplicates identical messages and brackets more than one.
  const msgs: string[] = [];
  for (const e of errs) {
    const m = fieldErrorString(e);
    if (!msgs.includes(m)) msgs.push(m);
  }
  let message = `${qk} ${goQuote(name)} is invalid`;
  if (msgs.length === 1) message += `: ${msgs[0]}`;
  else if (msgs.length > 1) message += `: [${msgs.join(', ')}]`;
  const details: StatusDetails = { name: name || undefined };
  if (!name) delete details.name;
  if (groupKind.group) details.group = groupKind.group;
  details.kind = groupKind.kind;
  details.causes = causes;
  return new ApiError(failure(422, 'Invalid', message, details));
}
