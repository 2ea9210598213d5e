import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import fc from 'fast-check';
import { isCairnError } from '../core/errors.js';
import { daysFromCivil, formatLocalTime, formatTime, localOffsetMinutes, parseTime, parseTimeParts } from './time.js';

const S = 1_000_000_000n;

test('formatTime: Go RFC3339Nano text', () => {
  const t = 1686832496n * S; // 2023-06-15T12:34:56Z
  assert.equal(formatTime(t, 0), '2023-06-15T12:34:56Z');
  assert.equal(formatTime(1686902400n * S + 123456789n, 0), '2023-06-16T08:00:00.123456789Z');
  assert.equal(formatTime(t + 983162710n, 0), '2023-06-15T12:34:56.98316271Z'); // trailing zero trimmed
  assert.equal(formatTime(t + 500_000_000n, 0), '2023-06-15T12:34:56.5Z');
  assert.equal(formatTime(t + 1n, 0), '2023-06-15T12:34:56.000000001Z');
  assert.equal(formatTime(t, 120), '2023-06-15T14:34:56+02:00');
  assert.equal(formatTime(t, -330), '2023-06-15T07:04:56-05:30');
  assert.equal(formatTime(t, 540), '2023-06-15T21:34:56+09:00');
  assert.equal(formatTime(0n, 0), '1970-01-01T00:00:00Z');
});

test('formatTime: pre-1970, leap days, century rules', () => {
  assert.equal(formatTime(-1n, 0), '1969-12-31T23:59:59.999999999Z');
  assert.equal(formatTime(-86_400n * S, 0), '1969-12-31T00:00:00Z');
  assert.equal(formatTime(951_782_400n * S, 0), '2000-02-29T00:00:00Z');
  assert.equal(formatTime(-2_203_891_200n * S, 0), '1900-03-01T00:00:00Z'); // 1900 is not a leap year
  assert.equal(formatTime(-62_135_596_800n * S, 0), '0001-01-01T00:00:00Z'); // Go's zero time
  assert.equal(formatTime(253_402_300_799n * S + 999_999_999n, 0), '9999-12-31T23:59:59.999999999Z');
});

test('formatTime: years outside 0000..9999 keep month/day/time (restic FixTime)', () => {
  // year -1 → year 0
  const yMinus1 = parseTime('0000-06-15T10:00:00Z').ns - 366n * 86_400n * S; // 0000 is a leap year
  assert.equal(formatTime(yMinus1, 0), '0000-06-15T10:00:00Z');
  // year 10000 → 9999
  const y10000 = parseTime('9999-07-04T01:02:03.5Z').ns + 366n * 86_400n * S; // 10000 is a leap year
  assert.equal(formatTime(y10000, 0), '9999-07-04T01:02:03.5Z');
  // Feb 29 of 10000 does not exist in 9999: rolls to Mar 1 (time.AddDate normalisation)
  const feb29 = parseTime('9999-02-28T00:00:00Z').ns + 366n * 86_400n * S + 86_400n * S;
  assert.equal(formatTime(feb29, 0), '9999-03-01T00:00:00Z');
  // the year is judged in the shown offset
  assert.equal(formatTime(parseTime('9999-12-31T23:30:00Z').ns, 60), '9999-01-01T00:30:00+01:00');
});

test('formatTime: zone suffix like Go (offset seconds dropped, sign of minutes)', () => {
  assert.equal(formatTime(0n, 19 + 32 / 60), '1970-01-01T00:19:32+00:19');
  assert.equal(formatTime(0n, -0.5), '1969-12-31T23:59:30+00:00');
  assert.equal(formatTime(0n, -0), '1970-01-01T00:00:00Z');
});

test('parseTime', () => {
  assert.deepEqual(parseTime('2024-01-02T03:04:05Z'), { ns: 1704164645n * S, offsetMinutes: 0 });
  assert.deepEqual(parseTime('2024-01-01T01:00:00+09:00'), { ns: 1704038400n * S, offsetMinutes: 540 });
  assert.deepEqual(parseTime('1969-12-31T23:59:59.999999999Z'), { ns: -1n, offsetMinutes: 0 });
  assert.deepEqual(parseTime('2023-06-15T12:34:56.1-05:30'), { ns: (1686832496n + 5n * 3600n + 1800n) * S + 100_000_000n, offsetMinutes: -330 });
  // more than 9 fraction digits: truncated, as Go does
  assert.equal(parseTime('2023-06-15T12:34:56.1234567899Z').ns, 1686832496n * S + 123456789n);
  const bad = [
    '2023-06-15 12:34:56Z', '2023-06-15T12:34:56', '2023-13-01T00:00:00Z', '2023-02-29T00:00:00Z', '2023-06-31T00:00:00Z',
    '2023-06-15T24:00:00Z', '2023-06-15T12:60:00Z', '2023-06-15T12:34:60Z', '2023-06-15T12:34:56.Z', '2023-06-15t12:34:56z',
    '2023-06-15T12:34:56+0200', '2023-06-15T12:34:56+24:00', '23-06-15T12:34:56Z', '',
  ];
  for (const s of bad) assert.throws(() => parseTime(s), (e) => isCairnError(e, 'CORRUPT'), s);
  assert.doesNotThrow(() => parseTime('2024-02-29T00:00:00Z'));
});

/** Instants restic can write (years 1–9999, nanoseconds) and time-zone offsets of ±14 h, in minutes. */
const anyInstant = fc.bigInt(-62_135_596_800n * S, 253_402_214_400n * S);
const anyOffset = fc.integer({ min: -14 * 60, max: 14 * 60 });

test('property: parseTime(formatTime(ns, off)) round-trips', () => {
  fc.assert(
    fc.property(
      anyInstant,
      anyOffset,
      (ns, off) => {
        const s = formatTime(ns, off);
        const p = parseTime(s);
        assert.equal(p.ns, ns, s);
        assert.equal(p.offsetMinutes, off);
        assert.equal(formatTime(p.ns, p.offsetMinutes), s);
      },
    ),
    { seed: 42, numRuns: 3000 },
  );
});

test('formatTime agrees with Date#toISOString on millisecond instants (UTC)', () => {
  fc.assert(
    fc.property(fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 }), (ms) => {
      const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
      const want = iso.replace(/\.000Z$/, 'Z').replace(/(\.\d*?)0+Z$/, '$1Z');
      assert.equal(formatTime(BigInt(ms) * 1_000_000n, 0), want);
    }),
    { seed: 42, numRuns: 3000 },
  );
});

test('localOffsetMinutes uses the process time zone', () => {
  const ns = 1686832496n * S;
  assert.equal(localOffsetMinutes(ns), -new Date(1686832496000).getTimezoneOffset() || 0);
  assert.equal(formatLocalTime(ns), formatTime(ns, localOffsetMinutes(ns)));
  assert.equal(localOffsetMinutes(-1n), -new Date(-1).getTimezoneOffset() || 0);
});

test('localOffsetMinutes follows TZ (Asia/Tokyo, America/New_York with DST)', () => {
  const url = new URL('./time.js', import.meta.url).href;
  const run = (tz: string, ns: string) =>
    execFileSync(
      process.execPath,
      ['--input-type=module', '-e', `import {formatLocalTime} from ${JSON.stringify(url)}; process.stdout.write(formatLocalTime(${ns}n))`],
      { env: { ...process.env, TZ: tz }, encoding: 'utf8' },
    );
  assert.equal(run('Asia/Tokyo', '1704038400000000000'), '2024-01-01T01:00:00+09:00');
  assert.equal(run('America/New_York', '1686832496000000000'), '2023-06-15T08:34:56-04:00');
  assert.equal(run('America/New_York', '1704164645000000000'), '2024-01-01T22:04:05-05:00');
  assert.equal(run('UTC', '1704164645000000001'), '2024-01-02T03:04:05.000000001Z');
});

test('parseTimeParts: the instant of parseTime as seconds and nanoseconds, the same errors', () => {
  assert.deepEqual(parseTimeParts('1969-12-31T23:59:59.999999999Z'), { secs: -1, nanos: 999_999_999, offsetMinutes: 0 });
  assert.deepEqual(parseTimeParts('0001-01-01T00:00:00Z'), { secs: -62_135_596_800, nanos: 0, offsetMinutes: 0 });
  assert.deepEqual(parseTimeParts('2023-06-15T12:34:56.1-05:30'), { secs: 1686832496 + 5 * 3600 + 1800, nanos: 100_000_000, offsetMinutes: -330 });
  assert.throws(() => parseTimeParts('2023-02-29T00:00:00Z'), (e) => isCairnError(e, 'CORRUPT'));
  fc.assert(
    fc.property(
      anyInstant,
      anyOffset,
      (ns, off) => {
        const s = formatTime(ns, off);
        const p = parseTimeParts(s);
        assert.ok(Number.isSafeInteger(p.secs) && p.nanos >= 0 && p.nanos < 1e9);
        const q = parseTime(s);
        assert.equal(BigInt(p.secs) * S + BigInt(p.nanos), q.ns);
        assert.equal(p.offsetMinutes, q.offsetMinutes);
      },
    ),
  );
});

/** The regular-expression parser parseTimeParts replaced: the reference for its grammar and checks. */
function referenceParse(s: string): { secs: number; nanos: number; offsetMinutes: number } {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/.exec(s);
  if (m === null) throw new Error(`invalid time ${JSON.stringify(s)}`);
  const [y, mo, d, hh, mi, ss] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (mo < 1 || mo > 12) throw new Error(`invalid time ${JSON.stringify(s)}: month out of range`);
  if (d < 1 || d > (mo === 2 && leap ? 29 : [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]!)) throw new Error(`invalid time ${JSON.stringify(s)}: day out of range`);
  if (hh > 23 || mi > 59 || ss > 59) throw new Error(`invalid time ${JSON.stringify(s)}: time of day out of range`);
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) throw new Error(`invalid time ${JSON.stringify(s)}: offset out of range`);
    offsetMinutes = oh * 60 + om;
    if (m[9] === '-') offsetMinutes = -offsetMinutes;
  }
  const nanos = m[7] === undefined ? 0 : Number(m[7].slice(0, 9).padEnd(9, '0'));
  const secs = daysFromCivil(y, mo, d) * 86_400 + hh * 3600 + mi * 60 + ss - offsetMinutes * 60;
  return { secs, nanos, offsetMinutes };
}

test('parseTimeParts accepts and rejects exactly what the regular expression did', () => {
  const outcome = (f: () => unknown) => {
    try {
      return { ok: f() };
    } catch (e) {
      return { error: (e as Error).message };
    }
  };
  const valid = fc
    .tuple(
      fc.integer({ min: 0, max: 9999 }),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 24 }),
      fc.integer({ min: 0, max: 60 }),
      fc.integer({ min: 0, max: 60 }),
      fc.option(fc.stringMatching(/^[0-9]{1,12}$/)),
      fc.constantFrom('Z', '+00:00', '-00:00', '+05:30', '-12:45', '+23:59', '+24:00', '-07:60'),
    )
    .map(([y, mo, d, h, mi, s, frac, zone]) => {
      const p2 = (n: number) => String(n).padStart(2, '0');
      return `${String(y).padStart(4, '0')}-${p2(mo)}-${p2(d)}T${p2(h)}:${p2(mi)}:${p2(s)}${frac === null ? '' : `.${frac}`}${zone}`;
    });
  // and mangled: a character replaced, inserted or removed
  const mangled = fc.tuple(valid, fc.nat(), fc.constantFrom('', '0', '9', '.', ':', '-', '+', 'Z', 'z', 'T', ' ', '٣', '\n'), fc.boolean()).map(([t, at, c, insert]) => {
    const i = at % (t.length + 1);
    return t.slice(0, i) + c + t.slice(insert ? i : i + 1);
  });
  fc.assert(
    fc.property(fc.oneof(valid, mangled), (t) => {
      assert.deepEqual(outcome(() => parseTimeParts(t)), outcome(() => referenceParse(t)), t);
    }),
    { numRuns: 20_000 },
  );
});
