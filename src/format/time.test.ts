import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import fc from 'fast-check';
import { isCairnError } from '../core/errors.js';
import { formatLocalTime, formatTime, localOffsetMinutes, parseTime } from './time.js';

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

test('property: parseTime(formatTime(ns, off)) round-trips', () => {
  fc.assert(
    fc.property(
      fc.bigInt(-62_135_596_800n * S, 253_402_214_400n * S),
      fc.integer({ min: -14 * 60, max: 14 * 60 }),
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
