/**
 * Go `time.Time` JSON text (RFC 3339 with nanoseconds, spec §7.4).
 *
 * Times are carried as nanoseconds since the Unix epoch (bigint; JS Date has only
 * milliseconds) plus the zone offset the text shows. The exact text matters: it is part of the
 * tree bytes, so it decides tree IDs and dedup against restic.
 */
import { CairnError } from '../core/errors.js';

const NS_PER_S = 1_000_000_000n;
const SECS_PER_DAY = 86_400;

/** Days since 1970-01-01 → proleptic Gregorian [year, month 1..12, day 1..31]. */
export function civilFromDays(days: number): [number, number, number] {
  // Shift the epoch to 0000-03-01 so that leap days end a 400-year era and a year.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097; // day of era, 0..146096
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100)); // 0..365, March-based
  const mp = Math.floor((5 * doy + 2) / 153); // 0 = March
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

/** Proleptic Gregorian date → days since 1970-01-01. */
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const mp = m > 2 ? m - 3 : m + 9;
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

function pad4(n: number): string {
  return String(n).padStart(4, '0');
}

/**
 * Formats like Go's RFC3339Nano (time.Time.MarshalJSON): fraction with trailing zeros
 * trimmed (omitted if zero), `Z` for offset 0, else `±hh:mm`.
 *
 * `offsetMinutes` may be fractional (historic local-mean-time zones have second offsets): the
 * wall clock uses the full offset, the suffix shows whole minutes truncated, as Go does.
 * Years outside 0000..9999 are replaced by 0000 / 9999 keeping month, day and time of day,
 * exactly like restic's FixTime (node.go) does before marshalling node times.
 */
export function formatTime(ns: bigint, offsetMinutes: number): string {
  const offSec = Math.round(offsetMinutes * 60);
  const local = ns + BigInt(offSec) * NS_PER_S;
  let secBig = local / NS_PER_S;
  let nanos = local - secBig * NS_PER_S;
  if (nanos < 0n) {
    // bigint division truncates; we need floor
    nanos += NS_PER_S;
    secBig -= 1n;
  }
  const secs = Number(secBig);
  const frac = Number(nanos);
  const days = Math.floor(secs / SECS_PER_DAY);
  const sod = secs - days * SECS_PER_DAY;
  let [y, mo, d] = civilFromDays(days);
  // restic's FixTime: Go cannot encode years outside 0000..9999, so only the year is replaced
  // (time.AddDate semantics: Feb 29 of a year that becomes 9999 rolls over to Mar 1).
  if (y < 0) {
    y = 0; // year 0 is a leap year, every date exists
  } else if (y > 9999) {
    y = 9999;
    if (mo === 2 && d === 29) {
      mo = 3;
      d = 1;
    }
  }
  const hh = Math.floor(sod / 3600);
  const mi = Math.floor((sod % 3600) / 60);
  const ss = sod % 60;
  let out = pad4(y) + '-' + pad2(mo) + '-' + pad2(d) + 'T' + pad2(hh) + ':' + pad2(mi) + ':' + pad2(ss);
  if (frac !== 0) {
    let f = String(frac).padStart(9, '0');
    let end = 9;
    while (f.charCodeAt(end - 1) === 0x30) end--;
    f = f.slice(0, end);
    out += '.' + f;
  }
  if (offSec === 0) return out + 'Z';
  let zoneMin = Math.trunc(offSec / 60);
  let sign = '+';
  if (zoneMin < 0) {
    sign = '-';
    zoneMin = -zoneMin;
  }
  return out + sign + pad2(Math.floor(zoneMin / 60)) + ':' + pad2(zoneMin % 60);
}

/**
 * Offset of the process's local time zone (TZ) from UTC at the given instant, in minutes
 * east of UTC (e.g. +120 for CEST), as Go's time.Local would apply it.
 */
export function localOffsetMinutes(ns: bigint): number {
  let ms = ns / 1_000_000n;
  if (ms * 1_000_000n > ns) ms -= 1n; // floor for pre-1970 instants
  const off = -new Date(Number(ms)).getTimezoneOffset();
  return off === 0 ? 0 : off; // avoid -0
}

/** Formats an instant in the process's local time zone, as restic does for node times. */
export function formatLocalTime(ns: bigint): string {
  return formatTime(ns, localOffsetMinutes(ns));
}

export interface ParsedTime {
  /** Nanoseconds since the Unix epoch. */
  ns: bigint;
  /** Offset shown in the text, minutes east of UTC (0 for `Z`). */
  offsetMinutes: number;
}

/** Value of the n ASCII digits of s at `at`, or -1 when they are not all digits (or s ends before). */
function digitsAt(s: string, at: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const d = s.charCodeAt(at + k) - 0x30; // NaN past the end
    if (!(d >= 0 && d <= 9)) return -1;
    v = v * 10 + d;
  }
  return v;
}

const DASH = 0x2d;
const COLON = 0x3a;

/**
 * Parses RFC 3339 text as Go's time.Time.UnmarshalJSON does (fraction of any length, digits
 * beyond nanoseconds are truncated). Throws CORRUPT on malformed text or out-of-range fields.
 */
export function parseTime(s: string): ParsedTime {
  const p = parseTimeParts(s);
  return { ns: BigInt(p.secs) * NS_PER_S + BigInt(p.nanos), offsetMinutes: p.offsetMinutes };
}

/** An instant as whole seconds since the Unix epoch plus nanoseconds (0 ≤ nanos < 10⁹). */
export interface TimeParts {
  secs: number;
  nanos: number;
  /** Offset shown in the text, minutes east of UTC (0 for `Z`). */
  offsetMinutes: number;
}

/**
 * parseTime without bigints (for callers that store times in number columns). The grammar,
 * `dddd-dd-ddTdd:dd:dd[.d+](Z|±dd:dd)` with ASCII digits, is scanned by hand: a restore parses
 * two times per file.
 */
export function parseTimeParts(s: string): TimeParts {
  const invalid = () => new CairnError('CORRUPT', `invalid time ${JSON.stringify(s)}`);
  const y = digitsAt(s, 0, 4);
  const mo = digitsAt(s, 5, 2);
  const d = digitsAt(s, 8, 2);
  const hh = digitsAt(s, 11, 2);
  const mi = digitsAt(s, 14, 2);
  const ss = digitsAt(s, 17, 2);
  if ((y | mo | d | hh | mi | ss) < 0) throw invalid();
  if (s.charCodeAt(4) !== DASH || s.charCodeAt(7) !== DASH || s.charCodeAt(10) !== 0x54 /* T */) throw invalid();
  if (s.charCodeAt(13) !== COLON || s.charCodeAt(16) !== COLON) throw invalid();
  let pos = 19;
  let nanos = 0;
  if (s.charCodeAt(pos) === 0x2e /* . */) {
    const from = pos + 1;
    pos = from;
    while (digitsAt(s, pos, 1) >= 0) pos++;
    if (pos === from) throw invalid();
    // digits beyond nanoseconds are dropped; fewer are scaled up
    const n = Math.min(9, pos - from);
    nanos = digitsAt(s, from, n) * 10 ** (9 - n);
  }
  let offsetMinutes = 0;
  if (s.charCodeAt(pos) === 0x5a /* Z */) {
    if (pos + 1 !== s.length) throw invalid();
  } else {
    const sign = s.charCodeAt(pos);
    const oh = digitsAt(s, pos + 1, 2);
    const om = digitsAt(s, pos + 4, 2);
    if ((sign !== 0x2b /* + */ && sign !== DASH) || pos + 6 !== s.length || s.charCodeAt(pos + 3) !== COLON || (oh | om) < 0) throw invalid();
    if (oh > 23 || om > 59) offsetMinutes = NaN; // reported after the date and time checks, as before
    else offsetMinutes = sign === DASH ? -(oh * 60 + om) : oh * 60 + om;
  }
  if (mo < 1 || mo > 12) throw new CairnError('CORRUPT', `invalid time ${JSON.stringify(s)}: month out of range`);
  const dim = mo === 2 && isLeap(y) ? 29 : DAYS_IN_MONTH[mo - 1]!;
  if (d < 1 || d > dim) throw new CairnError('CORRUPT', `invalid time ${JSON.stringify(s)}: day out of range`);
  if (hh > 23 || mi > 59 || ss > 59) {
    throw new CairnError('CORRUPT', `invalid time ${JSON.stringify(s)}: time of day out of range`);
  }
  if (Number.isNaN(offsetMinutes)) throw new CairnError('CORRUPT', `invalid time ${JSON.stringify(s)}: offset out of range`);
  const secs = daysFromCivil(y, mo, d) * SECS_PER_DAY + hh * 3600 + mi * 60 + ss - offsetMinutes * 60;
  return { secs, nanos, offsetMinutes };
}
