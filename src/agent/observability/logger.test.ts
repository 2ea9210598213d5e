import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CairnError, isCairnError } from '../../core/errors.js';
import { createLogger, formatTextRecord, normalizeLevel, parseLogFormat, toLoggerPort } from './logger.js';

function collector(): { lines: string[]; write(s: string): void } {
  const lines: string[] = [];
  return {
    lines,
    write(s: string) {
      for (const l of s.split('\n')) if (l) lines.push(l);
    },
  };
}

test('JSON lines: level as a word, ISO time, base fields, no pid/hostname', () => {
  const sink = collector();
  const log = createLogger({ destination: sink, base: { node: 'worker-1' } });
  log.info({ pvb: 'backup-1-abcde' }, 'PodVolumeBackup completed');
  const rec = JSON.parse(sink.lines[0]!) as Record<string, unknown>;
  assert.equal(rec.level, 'info');
  assert.equal(rec.msg, 'PodVolumeBackup completed');
  assert.equal(rec.node, 'worker-1');
  assert.equal(rec.pvb, 'backup-1-abcde');
  assert.match(String(rec.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal('pid' in rec, false);
  assert.equal('hostname' in rec, false);
});

test('secrets never reach a line: fields, nested fields, bindings, messages, errors', () => {
  const sink = collector();
  const log = createLogger({ destination: sink, level: 'debug' });
  const child = log.child({ repo: 's3:http://minio:minio123@minio.velero.svc:9000/velero/restic/app', password: 'child-secret' });
  child.info({ 'repository-password': 'static-passw0rd', bsl: { credentials: { aws_secret_access_key: 'KEY' } } }, 'opening');
  log.warn('retrying https://u:hunter2@blob.example/container');
  log.error(new CairnError('BACKEND', 'GET https://acct:sas-secret@acct.blob.core.windows.net/c failed'));
  log.error({ err: new Error('token=abcdef123 rejected') }, 'status write failed');
  log.debug('printf-style %s', 'https://a:b-secret@x.example/');
  const all = sink.lines.join('\n');
  for (const s of ['minio123', 'child-secret', 'static-passw0rd', '"KEY"', 'hunter2', 'sas-secret', 'abcdef123', 'b-secret']) {
    assert.equal(all.includes(s), false, `${s} leaked:\n${all}`);
  }
  const err = JSON.parse(sink.lines[2]!) as { err: { type: string; code: string; message: string }; msg: string };
  assert.equal(err.err.type, 'CairnError');
  assert.equal(err.err.code, 'BACKEND');
  assert.match(err.msg, /\[REDACTED\]@acct\.blob/);
  assert.match(sink.lines[0]!, /minio\.velero\.svc:9000/, 'the host stays for debugging');
});

test('levels: logrus names accepted; lines below the level are dropped', () => {
  assert.equal(normalizeLevel('warning'), 'warn');
  assert.equal(normalizeLevel('panic'), 'fatal');
  assert.equal(normalizeLevel('DEBUG'), 'debug');
  assert.throws(() => normalizeLevel('loud'), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  assert.equal(parseLogFormat('Text'), 'text');
  assert.throws(() => parseLogFormat('xml'), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  const sink = collector();
  const log = createLogger({ destination: sink, level: 'warning' });
  log.info('hidden');
  log.warn('shown');
  assert.equal(sink.lines.length, 1);
  assert.equal(JSON.parse(sink.lines[0]!).level, 'warn');
});

test('text format: logrus-style key=value lines, redacted too', () => {
  const sink = collector();
  const log = createLogger({ destination: sink, format: 'text', base: { node: 'n1' } });
  log.warn({ volume: 'data', attempt: 2, password: 'pw' }, 'backup of s3:https://k:s@h/b failed');
  const line = sink.lines[0]!;
  assert.match(line, /^time=\d{4}-\S+ level=warning msg="backup of s3:https:\/\/\[REDACTED\]@h\/b failed" attempt=2 node=n1 password="\[REDACTED\]" volume=data$/);
  assert.equal(
    formatTextRecord({ time: 't', level: 'error', msg: 'x', err: { message: 'boom here' }, z: { a: 1 } }),
    'time=t level=error msg=x error="boom here" z="{\\"a\\":1}"',
  );
});

test('toLoggerPort: the core Logger interface over pino, with child fields', () => {
  const sink = collector();
  const port = toLoggerPort(createLogger({ destination: sink, level: 'debug' }));
  port.child({ pvr: 'r-1' }).debug('restoring', { bytes: 10, token: 't0ps3cret' });
  port.error('plain');
  const first = JSON.parse(sink.lines[0]!) as Record<string, unknown>;
  assert.equal(first.pvr, 'r-1');
  assert.equal(first.bytes, 10);
  assert.equal(first.token, '[REDACTED]');
  assert.equal(first.level, 'debug');
  assert.equal(JSON.parse(sink.lines[1]!).msg, 'plain');
});
