import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyPolicy,
  describePolicy,
  formatPolicyDuration,
  groupSnapshots,
  hasTagList,
  isEmptyPolicy,
  parseDuration,
  parseGroupBy,
  parseTagList,
  type ExpirePolicy,
  type SnapshotLike,
} from './forget-policy.js';
import { addDate, isoWeek, parseGoTime, type LocalOffsetFn } from './gotime.js';

const NOW = BigInt(Date.parse('2030-01-01T00:00:00Z')) * 1_000_000n;
const UTC: LocalOffsetFn = () => 0;

let counter = 0;
function sn(time: string, extra: Partial<SnapshotLike> = {}): SnapshotLike {
  counter++;
  return { id: counter.toString(16).padStart(64, '0'), time, hostname: 'h', paths: ['/p'], ...extra };
}

function decide(list: SnapshotLike[], p: ExpirePolicy, localOffset: LocalOffsetFn = UTC) {
  const r = applyPolicy(list, p, { nowNs: NOW, localOffset });
  return { keep: r.keep.map((s) => s.time), remove: r.remove.map((s) => s.time), reasons: r.reasons };
}

test('durations: restic syntax, repeated units override, negative numbers, errors', () => {
  assert.deepEqual(parseDuration('1y5m7d2h'), { years: 1, months: 5, days: 7, hours: 2 });
  assert.deepEqual(parseDuration(' 3d '), { years: 0, months: 0, days: 3, hours: 0 });
  assert.deepEqual(parseDuration('1d2d'), { years: 0, months: 0, days: 2, hours: 0 });
  assert.deepEqual(parseDuration('-2h'), { years: 0, months: 0, days: 0, hours: -2 });
  assert.deepEqual(parseDuration(''), { years: 0, months: 0, days: 0, hours: 0 });
  assert.throws(() => parseDuration('5'), /no unit found after number 5/);
  assert.throws(() => parseDuration('5w'), /invalid unit "w"/);
  assert.throws(() => parseDuration('d'), /no number found/);
  assert.equal(formatPolicyDuration(parseDuration('2h1y')), '1y2h');
});

test('policy description and emptiness like restic', () => {
  assert.equal(isEmptyPolicy({}), true);
  assert.equal(isEmptyPolicy({ last: 0, within: parseDuration('') }), true);
  assert.equal(isEmptyPolicy({ tags: [['a']] }), false);
  assert.equal(isEmptyPolicy({ last: -1 }), false);
  assert.equal(
    describePolicy({ last: 2, daily: 7, withinWeekly: parseDuration('1m'), tags: [['a', 'b'], ['c']], within: parseDuration('1y') }),
    'keep 2 latest, 7 daily snapshots, weekly snapshots within 1m and all snapshots with tags [[a, b] [c]] and all snapshots within 1y of the newest',
  );
});

test('empty policy keeps everything with "policy is empty"', () => {
  const r = decide([sn('2024-01-01T00:00:00Z'), sn('2024-01-02T00:00:00Z')], {});
  assert.deepEqual(r.keep, ['2024-01-02T00:00:00Z', '2024-01-01T00:00:00Z']);
  assert.deepEqual(r.reasons.map((x) => x.matches), [['policy is empty'], ['policy is empty']]);
});

test('keep-last and keep-daily share snapshots; counters report what is left', () => {
  const list = [
    sn('2024-01-03T10:00:00Z'),
    sn('2024-01-03T09:00:00Z'),
    sn('2024-01-02T23:00:00Z'),
    sn('2024-01-02T01:00:00Z'),
    sn('2024-01-01T12:00:00Z'),
  ];
  const r = decide(list, { last: 1, daily: 2 });
  assert.deepEqual(r.keep, ['2024-01-03T10:00:00Z', '2024-01-02T23:00:00Z']);
  assert.deepEqual(r.remove, ['2024-01-03T09:00:00Z', '2024-01-02T01:00:00Z', '2024-01-01T12:00:00Z']);
  assert.deepEqual(r.reasons[0]!.matches, ['last snapshot', 'daily snapshot']);
  assert.deepEqual(r.reasons[0]!.counters, { daily: 1 });
  assert.deepEqual(r.reasons[1]!.counters, {});
});

test('buckets use the offset stored in each snapshot, not the local zone (spec §12.2)', () => {
  // 01:00 and 10:00 at +09:00 are different UTC days but one day in their own offset
  const list = [sn('2024-01-01T01:00:00+09:00'), sn('2024-01-01T10:00:00+09:00')];
  const r = decide(list, { daily: 5 });
  assert.deepEqual(r.keep, ['2024-01-01T10:00:00+09:00']);
  // and the same instants written in UTC are two days
  const r2 = decide([sn('2023-12-31T16:00:00Z'), sn('2024-01-01T01:00:00Z')], { daily: 5 });
  assert.equal(r2.keep.length, 2);
});

test('ISO weeks: the last days of December can belong to week 1 of the next year', () => {
  assert.deepEqual(isoWeek(parseGoTime('2024-12-30T12:00:00Z')), [2025, 1]);
  assert.deepEqual(isoWeek(parseGoTime('2021-01-03T12:00:00Z')), [2020, 53]);
  assert.deepEqual(isoWeek(parseGoTime('2021-01-04T00:00:00Z')), [2021, 1]);
  const r = decide([sn('2024-12-30T12:00:00Z'), sn('2025-01-02T12:00:00Z')], { weekly: 3 });
  assert.deepEqual(r.keep, ['2025-01-02T12:00:00Z']);
});

test('keep-within: calendar subtraction with Go normalisation, strictly after the limit', () => {
  // latest 2024-03-31: minus 1 month = Feb 31 → Mar 2 (2024 is a leap year)
  const list = [sn('2024-03-31T12:00:00Z'), sn('2024-03-02T12:00:00Z'), sn('2024-03-02T11:59:59Z'), sn('2024-03-01T12:00:00Z')];
  const r = decide(list, { within: parseDuration('1m') });
  assert.deepEqual(r.keep, ['2024-03-31T12:00:00Z']);
  // the limit itself (2024-03-02T12:00:00) is not "after" the limit
  assert.deepEqual(r.remove, ['2024-03-02T12:00:00Z', '2024-03-02T11:59:59Z', '2024-03-01T12:00:00Z']);
  const r2 = decide(list, { within: parseDuration('1m1h') });
  assert.deepEqual(r2.keep, ['2024-03-31T12:00:00Z', '2024-03-02T12:00:00Z', '2024-03-02T11:59:59Z']);
});

test('the newest snapshot in the future is not the reference for keep-within', () => {
  const list = [sn('2099-01-01T00:00:00Z'), sn('2024-01-10T00:00:00Z'), sn('2024-01-02T00:00:00Z')];
  const r = decide(list, { within: parseDuration('7d') });
  assert.deepEqual(r.keep, ['2099-01-01T00:00:00Z', '2024-01-10T00:00:00Z']);
  assert.deepEqual(r.reasons[0]!.matches, ['within 7d']);
});

test('keep-within-* buckets: one per period, no count limit, only inside the window', () => {
  const list = [
    sn('2024-05-10T10:00:00Z'),
    sn('2024-05-10T08:00:00Z'),
    sn('2024-05-09T08:00:00Z'),
    sn('2024-05-01T08:00:00Z'),
    sn('2024-04-01T08:00:00Z'),
  ];
  const r = decide(list, { withinDaily: parseDuration('3d'), withinMonthly: parseDuration('1y') });
  assert.deepEqual(r.keep, ['2024-05-10T10:00:00Z', '2024-05-09T08:00:00Z', '2024-04-01T08:00:00Z']);
  assert.deepEqual(r.reasons[0]!.matches, ['daily within 3d', 'monthly within 1y']);
  assert.deepEqual(r.reasons[1]!.matches, ['daily within 3d']);
});

test('keep-tag and tag filters: all tags of one list; the empty tag matches untagged snapshots', () => {
  assert.equal(hasTagList({ tags: ['a', 'b'] }, [['a', 'b']]), true);
  assert.equal(hasTagList({ tags: ['a'] }, [['a', 'b'], ['c']]), false);
  assert.equal(hasTagList({ tags: [] }, [['']]), true);
  assert.equal(hasTagList({ tags: ['a'] }, [['']]), false);
  assert.equal(hasTagList({}, []), true);
  assert.deepEqual(parseTagList(' a , b'), ['a', 'b']);
  const list = [sn('2024-01-03T00:00:00Z', { tags: ['x'] }), sn('2024-01-02T00:00:00Z', { tags: ['y', 'x'] }), sn('2024-01-01T00:00:00Z')];
  const r = decide(list, { tags: [['x', 'y'], ['']] });
  assert.deepEqual(r.keep, ['2024-01-02T00:00:00Z', '2024-01-01T00:00:00Z']);
  assert.deepEqual(r.reasons.map((x) => x.matches), [['has tags [x, y]'], ['has tags []']]);
});

test('negative counts disable a rule but show in counters like restic', () => {
  const r = decide([sn('2024-01-02T00:00:00Z'), sn('2024-01-01T00:00:00Z')], { last: -1, daily: 1 });
  assert.deepEqual(r.keep, ['2024-01-02T00:00:00Z']);
  assert.deepEqual(r.reasons[0]!.counters, { last: -1 });
});

test('equal times keep the input order (stable sort)', () => {
  const a = sn('2024-01-01T00:00:00Z');
  const b = sn('2024-01-01T00:00:00Z');
  const r = applyPolicy([a, b], { last: 1 }, { nowNs: NOW, localOffset: UTC });
  assert.equal(r.keep[0], a);
});

test('AddDate in the local zone follows its DST rules; in a fixed zone it keeps the offset', () => {
  // a zone at +01:00 before 2024-03-31T01:00Z and +02:00 after (like Europe/Berlin)
  const dst = Date.parse('2024-03-31T01:00:00Z') / 1000;
  const berlin: LocalOffsetFn = (s) => (s >= dst ? 7200 : 3600);
  const summer = parseGoTime('2024-04-10T12:00:00+02:00', berlin);
  assert.equal(summer.local, true);
  const back = addDate(summer, 0, -1, 0, berlin);
  // same wall clock a month earlier, now in winter time (+01:00): 11:00Z instead of 10:00Z
  assert.equal(back.ns, BigInt(Date.parse('2024-03-10T11:00:00Z')) * 1_000_000n);
  const fixed = parseGoTime('2024-04-10T12:00:00+02:00', UTC);
  assert.equal(fixed.local, false);
  assert.equal(addDate(fixed, 0, -1, 0, UTC).ns, BigInt(Date.parse('2024-03-10T10:00:00Z')) * 1_000_000n);
  // so keep-within decides differently for a snapshot in that hour
  const list = [sn('2024-04-10T12:00:00+02:00'), sn('2024-03-10T11:30:00+01:00')];
  assert.equal(decide(list, { within: parseDuration('1m') }, berlin).keep.length, 1);
  assert.equal(decide(list, { within: parseDuration('1m') }, UTC).keep.length, 2);
});

test('grouping: key JSON like restic, paths always sorted, tags sorted when grouping by tags', () => {
  const s1 = sn('2024-01-01T00:00:00Z', { hostname: 'a', paths: ['/z', '/b'], tags: ['t2', 't1'] });
  const s2 = sn('2024-01-02T00:00:00Z', { hostname: 'a', paths: ['/b', '/z'], tags: ['t1', 't2'] });
  const s3 = sn('2024-01-03T00:00:00Z', { hostname: 'b', paths: ['/b'] });
  const groups = groupSnapshots([s1, s2, s3], parseGroupBy('host,paths,tags'));
  assert.deepEqual(groups.map((g) => g.keyJson), ['{"hostname":"a","paths":["/b","/z"],"tags":["t1","t2"]}', '{"hostname":"b","paths":["/b"],"tags":null}']);
  assert.deepEqual(s1.paths, ['/b', '/z']);
  assert.deepEqual(s1.tags, ['t1', 't2']);
  const none = groupSnapshots([s1, s3], parseGroupBy(''));
  assert.deepEqual(none.map((g) => g.keyJson), ['{"hostname":"","paths":null,"tags":null}']);
  assert.throws(() => parseGroupBy('hosts,colour'), /unknown grouping option: 'colour'/);
});
