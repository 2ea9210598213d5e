/**
 * Argument checks and errors of the TypeScript fallbacks, shaped like the addon's (same Node error
 * codes, same messages), so callers and the equivalence tests see one behaviour.
 */

export function typeError(msg: string): TypeError {
  return Object.assign(new TypeError(msg), { code: 'ERR_INVALID_ARG_TYPE' });
}

export function rangeError(msg: string): RangeError {
  return Object.assign(new RangeError(msg), { code: 'ERR_OUT_OF_RANGE' });
}

export function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(`${what} must be an integer`);
  if (v < min || v > max) throw rangeError(`${what} must be in ${min}..${max}`);
  return v;
}

export function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw typeError(`${what} must be a boolean`);
  return v;
}

/** An error with a cairn code and the path: "<path>: <text>", .code, .path. */
export function codedError(code: string, text: string, path: string): Error {
  return Object.assign(new Error(`${path}: ${text}`), { code, path });
}
