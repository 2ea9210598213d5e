import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LocalBackend } from '../backend/local.js';
import { Repository } from '../repository/repository.js';
import { isCairnError } from '../core/errors.js';
import { earlyDerivationsPending } from '../crypto/kdf.js';
import { deriveKeyEarly } from './early-key.js';

const FAST_KDF = { N: 1024, r: 8, p: 1 };

async function withRepo(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-early-key-'));
  try {
    await Repository.init(new LocalBackend(path.join(dir, 'repo')), 'pw', { version: 2, scrypt: FAST_KDF });
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the key of a local repository is derived early and taken by the open that follows', async () => {
  await withRepo(async (dir) => {
    const repo = path.join(dir, 'repo');
    deriveKeyEarly(['-r', repo, 'snapshots'], { RESTIC_PASSWORD: 'pw' });
    assert.equal(earlyDerivationsPending(), 1);
    const r = await Repository.open(new LocalBackend(repo), 'pw');
    assert.equal(earlyDerivationsPending(), 0);
    await r.backend.close();

    // --flag=value forms, a password file, local: identifiers, RESTIC_REPOSITORY
    const pwFile = path.join(dir, 'pw.txt');
    writeFileSync(pwFile, 'pw\n');
    for (const [args, env] of [
      [['--repo=' + repo, '--password-file=' + pwFile, 'backup', '/x'], {}],
      [['-p', pwFile, 'restore', 'latest'], { RESTIC_REPOSITORY: 'local:' + repo }],
    ] as const) {
      deriveKeyEarly([...args], env);
      assert.equal(earlyDerivationsPending(), 1, args.join(' '));
      await (await Repository.open(new LocalBackend(repo), 'pw')).backend.close();
      assert.equal(earlyDerivationsPending(), 0);
    }
  });
});

test('a wrong password derived early still fails the open with WRONG_PASSWORD', async () => {
  await withRepo(async (dir) => {
    const repo = path.join(dir, 'repo');
    deriveKeyEarly(['-r', repo, 'check'], { RESTIC_PASSWORD: 'nope' });
    await assert.rejects(Repository.open(new LocalBackend(repo), 'nope'), (e) => isCairnError(e, 'WRONG_PASSWORD'));
    assert.equal(earlyDerivationsPending(), 0);
  });
});

test('nothing is started (and nothing thrown) when the key is not predictable', async () => {
  await withRepo(async (dir) => {
    const repo = path.join(dir, 'repo');
    const cases: Array<[string[], NodeJS.ProcessEnv]> = [
      [['-r', repo, 'snapshots'], { RESTIC_PASSWORD: 'pw', RESTIC_PASSWORD_COMMAND: 'echo pw' }], // commands run once, later
      [['-r', repo, '--password-command', 'echo pw', 'snapshots'], {}],
      [['-r', repo, 'init'], { RESTIC_PASSWORD: 'pw' }], // not a command that opens a repository
      [['-r', repo, '--help'], { RESTIC_PASSWORD: 'pw' }],
      [['-r', 's3:http://127.0.0.1:1/bucket', 'snapshots'], { RESTIC_PASSWORD: 'pw' }], // not local
      [['-r', path.join(dir, 'missing'), 'snapshots'], { RESTIC_PASSWORD: 'pw' }],
      [['-r', repo, 'snapshots'], {}], // no password
      [['-r', repo, '-p', path.join(dir, 'no-such-file'), 'snapshots'], {}],
      [['snapshots'], { RESTIC_PASSWORD: 'pw' }], // no repository
      [['-r'], { RESTIC_PASSWORD: 'pw' }],
    ];
    for (const [args, env] of cases) {
      deriveKeyEarly(args, env);
      assert.equal(earlyDerivationsPending(), 0, args.join(' '));
    }
  });
});
