/**
 * The parts of Go's `time` package that restic's forget policy depends on, so that cairn decides
 * exactly like restic 0.14 (spec §12.2).
 *
 * A snapshot time parsed by Go keeps the zone offset written in the text. Go's parser attaches
 * the *local* zone (TZ) when the local zone has that same offset at that instant, otherwise a
 * fixed zone; "Z" always means UTC. Calendar fields (year, day, hour, ISO week) are the wall clock
 * in that offset either way. The difference shows in AddDate (used by --keep-within*): in the
 * local zone the result is normalised with the local zone's rules, which may pick another offset
 * (daylight saving time), in a fixed zone the offset stays.
 */
import { civilFromDays, daysFromCivil, parseTime } from '../format/time.js';

const NS = 1_000_000_000n;
const DAY = 86_400;

export interface GoTime {
  /** Nanoseconds since the Unix epoch. */
  ns: bigint;
  /** Seconds east of UTC of the zone the time carries. */
  offsetSec: number;
  /** True when Go would have attached the local zone (time.Local) to the parsed time. */
  local: boolean;
}

/** Offset of the local zone (seconds east of UTC) at an instant given in Unix seconds. */
export type LocalOffsetFn = (unixSec: number) => number;

/** The process's local zone (TZ), as Go's time.Local sees it. */
export const systemLocalOffset: LocalOffsetFn = (unixSec) => {
  const off = -new Date(unixSec * 1000).getTimezoneOffset() * 60;
  return off === 0 ? 0 : Math.round(off);
};

/** Zero time.Time{}: 0001-01-01T00:00:00Z. */
export const GO_ZERO_TIME: GoTime = { ns: -62_135_596_800n * NS, offsetSec: 0, local: false };

/** Parses snapshot time text like Go's time.Time.UnmarshalJSON, including the zone it attaches. */
export function parseGoTime(text: string, localOffset: LocalOffsetFn = systemLocalOffset): GoTime {
  const p = parseTime(text);
  const offsetSec = p.offsetMinutes * 60;
  if (text.endsWith('Z') || text.endsWith('z')) return { ns: p.ns, offsetSec: 0, local: false };
  return { ns: p.ns, offsetSec, local: localOffset(unixSeconds(p.ns)) === offsetSec };
}

export function unixSeconds(ns: bigint): number {
  let s = ns / NS;
  if (s * NS > ns) s -= 1n; // floor for instants before 1970
  return Number(s);
}

export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** Nanoseconds within the second. */
  nanos: number;
  /** Days since 1970-01-01 of the wall-clock date. */
  days: number;
}

/** Wall clock of t in its own zone (what Go's Year(), Month(), Day(), Hour() return). */
export function wallClock(t: GoTime): WallClock {
  const secs = unixSeconds(t.ns);
  const nanos = Number(t.ns - BigInt(secs) * NS);
  const wall = secs + t.offsetSec;
  const days = Math.floor(wall / DAY);
  const sod = wall - days * DAY;
  const [year, month, day] = civilFromDays(days);
  return { year, month, day, hour: Math.floor(sod / 3600), minute: Math.floor((sod % 3600) / 60), second: sod % 60, nanos, days };
}

/** Go's Time.ISOWeek: ISO-8601 week-numbering year and week (weeks start on Monday). */
export function isoWeek(t: GoTime): [number, number] {
  const w = wallClock(t);
  // 1970-01-01 was a Thursday; Monday = 1 … Sunday = 7
  const weekday = ((((w.days + 3) % 7) + 7) % 7) + 1;
  const thursday = w.days + (4 - weekday);
  const [ty] = civilFromDays(thursday);
  const yday = thursday - daysFromCivil(ty, 1, 1);
  return [ty, Math.floor(yday / 7) + 1];
}

/**
 * Go's Time.AddDate(years, months, days): the wall-clock date is shifted with Go's
 * normalisation (Oct 31 + 1 month = Dec 1) and converted back with the zone's rules.
 */
export function addDate(t: GoTime, years: number, months: number, days: number, localOffset: LocalOffsetFn = systemLocalOffset): GoTime {
  const w = wallClock(t);
  let y = w.year + years;
  let m0 = w.month - 1 + months; // 0-based, may be out of range
  y += Math.floor(m0 / 12);
  m0 = ((m0 % 12) + 12) % 12;
  const dayCount = daysFromCivil(y, m0 + 1, 1) + (w.day - 1 + days);
  const wallSecs = dayCount * DAY + w.hour * 3600 + w.minute * 60 + w.second;
  let off = t.offsetSec;
  if (t.local) {
    // time.Date: look the offset up treating the wall clock as UTC, then correct it when the
    // resulting instant lies in another zone period
    off = localOffset(wallSecs);
    if (off !== 0) {
      const utc = wallSecs - off;
      const at = localOffset(utc);
      if (at !== off) off = at;
    }
  }
  const unix = wallSecs - off;
  return { ns: BigInt(unix) * NS + BigInt(w.nanos), offsetSec: off, local: t.local };
}

/** t + hours (absolute duration; the zone is kept). */
export function addHours(t: GoTime, hours: number): GoTime {
  return { ...t, ns: t.ns + BigInt(hours) * 3600n * NS };
}
