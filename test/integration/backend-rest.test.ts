/** The backend contract against restic's REST protocol, served by `rclone serve restic`. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CairnError } from '../../src/core/errors.js';
import { cairn, mustOk, tempDir } from '../support/env.js';
import { makeCerts, startTlsTerminator, type TestCerts, type TlsTerminator } from '../support/tls.js';
import { openRestBackend } from '../../src/backend/rest/index.js';
import { openBackend } from '../../src/backend/open.js';
import { RetryBackend } from '../../src/backend/retry.js';
import { hasRclone, startRclone, type RcloneRest } from '../support/rclone.js';
import { backendContract, CountingSource } from './backend-contract.js';
import { recordingLogger } from '../support/logger.js';
import { createHash } from 'node:crypto';

const skip = !hasRclone && !process.env.CI ? 'rclone not installed (apt-get install rclone)' : false;

describe('REST backend on rclone serve restic', { skip }, () => {
  let server: RcloneRest | undefined;
  let authed: RcloneRest | undefined;
  let n = 0;
  before(async () => {
    server = await startRclone();
    authed = await startRclone({ user: 'backup', pass: 's3cr3t/:@' });
  });
  after(async () => {
    await server?.stop();
    await authed?.stop();
  });

  backendContract('rest (rclone)', async () => ({
    backend: openRestBackend({ url: `${server!.url}/repo${n++}/` }),
    cleanup: async () => undefined,
  }));

  // credentials in the URL (percent-encoded) and the full stack opened from an identifier
  backendContract(
    'rest opened from an identifier with user:password (limit + retry)',
    async () => {
      const spool = tempDir('cairn-rest-spool-');
      return {
        backend: await openBackend(`rest:http://backup:${encodeURIComponent('s3cr3t/:@')}@127.0.0.1:${authed!.port}/nested/repo${n++}`, { env: {}, retry: { maxAttempts: 3, initialDelayMs: 10 }, spoolDir: spool.dir }),
        cleanup: async () => spool.cleanup(),
        spoolDir: spool.dir,
      };
    },
    { listFiles: 1001 },
  );

  // rclone (and rest-server before 0.11) writes a POSTed file in place and deletes it when the
  // request breaks off; that clean-up can land after a retry has stored the file again. Here the
  // late clean-up is played by deleting the retry's file as soon as it appears.
  it('a file whose upload broke off is read back after the retry, and sent again when a late clean-up removed it', async () => {
    const logger = recordingLogger();
    const repo = `late${n++}`;
    const b = openRestBackend({ url: `${server!.url}/${repo}/`, interruptedUploadSettleMs: 300 }, { logger });
    try {
      await b.create();
      const data = randomBytes(2_000_003);
      const name = createHash('sha256').update(data).digest('hex');
      const h = { type: 'pack' as const, name };
      const broken = new CountingSource(data);
      broken.failStream = 0;
      await assert.rejects(b.saveFile!(h, broken), (e: unknown) => e instanceof CairnError && e.retryable === true && (e as { retryAfterMs?: number }).retryAfterMs === 300);
      const onDisk = path.join(server!.dir, repo, 'data', name.slice(0, 2), name);
      let removed = false;
      const cleaner = setInterval(() => {
        if (!removed && fs.existsSync(onDisk) && fs.statSync(onDisk).size === data.length) {
          fs.rmSync(onDisk);
          removed = true;
        }
      }, 2);
      try {
        // as openBackend stacks it: rclone may also fail the POST itself when the file vanishes
        // while it finishes it (HTTP 500), which the retry wrapper repeats
        await new RetryBackend(b, { maxAttempts: 3, initialDelayMs: 1, logger }).saveFile!(h, new CountingSource(data));
      } finally {
        clearInterval(cleaner);
      }
      assert.ok(removed, 'the stand-in clean-up removed the retried file');
      assert.ok((await b.load(h)).equals(data), 'the file is in place with its content');
      const logged = (msg: string) => logger.lines.some((l) => l.level === 'warn' && l.msg === msg);
      assert.ok(logged('file sent again after an interrupted upload') || logged('backend operation failed, retrying'), 'the resend is logged');
      // a later save of another file is not read back (nothing was interrupted)
      const other = randomBytes(1000);
      const started = Date.now();
      await b.save({ type: 'pack', name: createHash('sha256').update(other).digest('hex') }, other);
      assert.ok(Date.now() - started < 300, 'an ordinary save does not wait for a clean-up');
    } finally {
      await b.close();
    }
  });
});

describe('REST backend: authentication and TLS', { skip }, () => {
  let server: RcloneRest | undefined;
  let tlsEnd: TlsTerminator | undefined;
  let work: ReturnType<typeof tempDir> | undefined;
  let certs: TestCerts | undefined;
  before(async () => {
    server = await startRclone({ user: 'backup', pass: 'right' });
    work = tempDir('cairn-rest-tls-');
    certs = makeCerts(work.dir);
    tlsEnd = await startTlsTerminator(server.port, certs);
  });
  after(async () => {
    await tlsEnd?.close();
    await server?.stop();
    work?.cleanup();
  });

  it('a wrong password is a PERMISSION error that names neither password', async () => {
    const b = await openBackend(`rest:http://backup:wrong@127.0.0.1:${server!.port}/r`, { env: {}, retry: { maxAttempts: 2, initialDelayMs: 1 } });
    await assert.rejects(b.stat({ type: 'config', name: 'config' }), (e: unknown) => {
      assert.ok(e instanceof CairnError);
      assert.equal(e.code, 'PERMISSION');
      assert.doesNotMatch(e.message, /wrong|right/);
      return true;
    });
    await b.close();
    // RESTIC_REST_USERNAME/PASSWORD when the URL has no credentials
    const ok = await openBackend(`rest:http://127.0.0.1:${server!.port}/r`, { env: { RESTIC_REST_USERNAME: 'backup', RESTIC_REST_PASSWORD: 'right' } });
    await ok.create();
    await ok.close();
  });

  it('https: refused without the CA, accepted with it (--cacert) or with --insecure-tls', async () => {
    const url = `rest:https://backup:right@127.0.0.1:${tlsEnd!.port}/tls`;
    const plain = await openBackend(url, { env: {}, retry: { maxAttempts: 3, initialDelayMs: 1 } });
    const started = Date.now();
    await assert.rejects(plain.stat({ type: 'config', name: 'config' }), (e: unknown) => {
      assert.match((e as Error).message, /certificate|self.signed|verify/i);
      return true;
    });
    assert.ok(Date.now() - started < 5000, 'a certificate error is not retried for long');
    await plain.close();
    const withCa = await openBackend(url, { env: {}, caCerts: [certs!.caPem] });
    await withCa.create();
    await withCa.save({ type: 'config', name: 'config' }, Buffer.from('cfg'));
    await withCa.close();
    const insecure = await openBackend(url, { env: {}, insecureSkipTLSVerify: true });
    assert.deepEqual(await insecure.load({ type: 'config', name: 'config' }), Buffer.from('cfg'));
    await insecure.close();
  });

  it('the CLI takes --cacert, --insecure-tls, -o and --limit-upload', async () => {
    const src = path.join(work!.dir, 'src');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'random.bin'), randomBytes(3 << 20));
    const repo = `rest:https://backup:right@127.0.0.1:${tlsEnd!.port}/cli`;
    const env = { RESTIC_PASSWORD: 'pw', RESTIC_REPOSITORY: repo };
    const refused = await cairn(['init'], { env });
    assert.notEqual(refused.code, 0);
    assert.doesNotMatch(refused.stderr, /right/, 'no password in the error');
    mustOk(await cairn(['--cacert', certs!.caFile, 'init'], { env }), 'init with --cacert');
    const t0 = Date.now();
    mustOk(await cairn(['--insecure-tls', '-o', 'rest.connections=2', '--limit-upload', '1024', 'backup', src], { env }), 'backup with --limit-upload');
    const took = Date.now() - t0;
    // 3 MiB at 1 MiB/s with one second of burst: at least ~2 s of pacing
    assert.ok(took >= 1900, `backup took only ${took} ms under --limit-upload 1024`);
    const bad = await cairn(['-o', 'rest.nope=1', 'snapshots'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown option "rest.nope"; known options: .*rest.connections/);
    const malformed = await cairn(['-r', 's3:http://user:hunter2@/x', 'snapshots'], { env: { RESTIC_PASSWORD: 'pw' } });
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /accepted forms/);
    assert.doesNotMatch(malformed.stderr, /hunter2/);
  });
});
