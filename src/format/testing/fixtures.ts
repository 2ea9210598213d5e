/**
 * Test-only access to the restic fixture repositories in shared/fixtures (written by real
 * restic 0.14). Decrypts with node:crypto directly (AES-256-CTR, MAC not checked) using the
 * master keys printed in the fixture READMEs, so format tests do not depend on crypto/.
 * Other folders' tests may reuse these helpers. Never used by library code.
 */
import { createDecipheriv, scryptSync, createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePackHeader, parseTrailer, type PackBlob } from '../pack.js';
import { decodeUnpacked } from '../unpacked.js';
import { zstdDecompress } from '../zstd.js';

export type FixtureName = 'restic-0.14-v1' | 'restic-0.14-v2';
export const FIXTURE_NAMES: readonly FixtureName[] = ['restic-0.14-v1', 'restic-0.14-v2'];
export const FIXTURE_PASSWORD = 'fixture-password';

/** The directory holding package.json, found by walking up from this file (src or build). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** shared/fixtures, or $CAIRN_FIXTURES. */
export function fixturesDir(): string {
  return process.env.CAIRN_FIXTURES ?? path.resolve(repoRoot(), '../shared/fixtures');
}

export interface TestKey {
  encrypt: Buffer;
  macK: Buffer;
  macR: Buffer;
}

export interface Fixture {
  /** Fixture name, or any label for a repository a test created. */
  name: string;
  dir: string;
  version: 1 | 2;
  key: TestKey;
}

function parseMasterKeyJson(json: string): TestKey {
  const o = JSON.parse(json) as { mac: { k: string; r: string }; encrypt: string };
  return {
    encrypt: Buffer.from(o.encrypt, 'base64'),
    macK: Buffer.from(o.mac.k, 'base64'),
    macR: Buffer.from(o.mac.r, 'base64'),
  };
}

/** Opens a fixture: its directory, format version and master key (read from its README). */
export function openFixture(name: FixtureName): Fixture {
  const dir = path.join(fixturesDir(), name);
  const readme = readFileSync(path.join(dir, 'README.md'), 'utf8');
  const m = /\{"mac":\{"k":"[^"]+","r":"[^"]+"\},"encrypt":"[^"]+"\}/.exec(readme);
  if (!m) throw new Error(`no master key in ${name}/README.md`);
  return { name, dir, version: name.endsWith('v1') ? 1 : 2, key: parseMasterKeyJson(m[0]) };
}

/** IV || C || MAC → plaintext (AES-256-CTR, IV = full initial counter). The MAC is not checked. */
export function decrypt(container: Uint8Array, encKey: Buffer): Buffer {
  if (container.length < 32) throw new Error('ciphertext too short');
  const iv = container.subarray(0, 16);
  const d = createDecipheriv('aes-256-ctr', encKey, iv);
  return Buffer.concat([d.update(container.subarray(16, container.length - 16)), d.final()]);
}

/** File names (IDs) in a repository directory (keys, snapshots, index, locks); [] if missing. */
export function listIds(fx: Fixture, sub: 'keys' | 'snapshots' | 'index' | 'locks'): string[] {
  const d = path.join(fx.dir, sub);
  if (!existsSync(d)) return [];
  return readdirSync(d).filter((f) => /^[0-9a-f]{64}$/.test(f)).sort();
}

/** Pack IDs under data/XX/. */
export function listPacks(fx: Fixture): string[] {
  const d = path.join(fx.dir, 'data');
  if (!existsSync(d)) return [];
  const out: string[] = [];
  for (const sub of readdirSync(d)) {
    for (const f of readdirSync(path.join(d, sub))) if (/^[0-9a-f]{64}$/.test(f)) out.push(f);
  }
  return out.sort();
}

export function packPath(fx: Fixture, packId: string): string {
  return path.join(fx.dir, 'data', packId.slice(0, 2), packId);
}

/** Raw bytes of config / keys/<id> / snapshots/<id> / index/<id>. */
export function readRepoFile(fx: Fixture, rel: string): Buffer {
  return readFileSync(path.join(fx.dir, rel));
}

/** Decrypted config plaintext (raw JSON). */
export function readConfigPlain(fx: Fixture): Buffer {
  return decrypt(readRepoFile(fx, 'config'), fx.key.encrypt);
}

/** Decrypted and §4-decoded JSON of an index / snapshot / lock file. */
export function readUnpackedJson(fx: Fixture, sub: 'snapshots' | 'index' | 'locks', id: string): Buffer {
  const raw = readRepoFile(fx, path.join(sub, id));
  return decodeUnpacked(decrypt(raw, fx.key.encrypt), fx.version);
}

/** Decrypted plain header entries of a pack. */
export function readPackHeader(fx: Fixture, packId: string): PackBlob[] {
  const pack = readFileSync(packPath(fx, packId));
  const hlen = parseTrailer(pack.subarray(pack.length - 4), pack.length);
  const header = decrypt(pack.subarray(pack.length - 4 - hlen, pack.length - 4), fx.key.encrypt);
  return decodePackHeader(header, fx.version);
}

export interface FixtureBlob extends PackBlob {
  packId: string;
  /** Decrypted, decompressed plaintext; SHA-256 of it is the blob ID. */
  plain: Buffer;
}

/** Every blob of every pack, decrypted and decompressed. */
export function readAllBlobs(fx: Fixture): FixtureBlob[] {
  const out: FixtureBlob[] = [];
  for (const packId of listPacks(fx)) {
    const pack = readFileSync(packPath(fx, packId));
    for (const b of readPackHeader(fx, packId)) {
      let plain = decrypt(pack.subarray(b.offset, b.offset + b.length), fx.key.encrypt);
      if (b.uncompressedLength) plain = zstdDecompress(plain, b.uncompressedLength);
      out.push({ ...b, packId, plain });
    }
  }
  return out;
}

/** All tree blobs of a fixture, decrypted and decompressed. */
export function readTreeBlobs(fx: Fixture): FixtureBlob[] {
  return readAllBlobs(fx).filter((b) => b.type === 'tree');
}

export function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * Master key of a freshly created repository, derived from its key file with scrypt (for tests
 * that let the real restic binary write a repository). Only for test key files we made.
 */
export function masterKeyFromKeyFile(keyFileJson: Buffer, password: string): TestKey {
  const k = JSON.parse(keyFileJson.toString('utf8')) as { N: number; r: number; p: number; salt: string; data: string };
  const dk = scryptSync(password, Buffer.from(k.salt, 'base64'), 64, {
    N: k.N,
    r: k.r,
    p: k.p,
    maxmem: 128 * k.r * (k.N + k.p + 2) + (1 << 20),
  });
  const plain = decrypt(Buffer.from(k.data, 'base64'), dk.subarray(0, 32));
  return parseMasterKeyJson(plain.toString('utf8'));
}
