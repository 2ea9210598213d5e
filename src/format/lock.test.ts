import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCairnError } from '../core/errors.js';
import { decodeLock, encodeLock } from './lock.js';

test('lock JSON: key order, uid/gid omitted when 0', () => {
  const captured = '{"time":"2026-11-22T01:03:03.693328774Z","exclusive":false,"hostname":"vm","username":"root","pid":19081}';
  const l = decodeLock(captured);
  assert.deepEqual(l, { time: '2026-11-22T01:03:03.693328774Z', exclusive: false, hostname: 'vm', username: 'root', pid: 19081 });
  assert.equal(encodeLock(l).toString(), captured);
  const user = { time: '2024-01-01T01:00:00+09:00', exclusive: true, hostname: 'h<1>', username: '', pid: 7, uid: 1000, gid: 100 };
  const s = encodeLock(user).toString();
  assert.equal(s, '{"time":"2024-01-01T01:00:00+09:00","exclusive":true,"hostname":"h\\u003c1\\u003e","username":"","pid":7,"uid":1000,"gid":100}');
  assert.deepEqual(decodeLock(s), user);
  assert.equal(encodeLock({ ...user, uid: 0, gid: 0 }).toString().endsWith('"pid":7}'), true);
});

test('lock validation', () => {
  const bad = ['x', '[]', '{"time":"soon","pid":1}', '{"time":"2024-01-01T00:00:00Z","exclusive":"yes"}', '{"time":"2024-01-01T00:00:00Z","pid":1.5}', '{"time":"2024-01-01T00:00:00Z","uid":-1}'];
  for (const s of bad) assert.throws(() => decodeLock(s), (e) => isCairnError(e, 'CORRUPT'), s);
  assert.throws(() => encodeLock({ time: 'now', exclusive: false, hostname: '', username: '', pid: 1 }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => encodeLock({ time: '2024-01-01T00:00:00Z', exclusive: false, hostname: '', username: '', pid: 1, uid: -2 }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});
