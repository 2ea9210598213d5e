import { hostname, userInfo } from 'node:os';
import { randomBytes } from 'node:crypto';
import { CairnError, isCairnError } from '../core/errors.js';
import { hashId, type Id } from '../core/ids.js';
import { nullLogger, type Logger } from '../core/logger.js';
import { systemClock, type Clock } from '../core/clock.js';
import { mapLimit } from '../core/semaphore.js';
import type { Backend, FileType } from '../backend/backend.js';
import { Sealer } from '../crypto/seal.js';
import { newRandomKey, type CryptoKey } from '../crypto/key.js';
import { deriveKey, newSalt, DEFAULT_SCRYPT, type ScryptParams } from '../crypto/kdf.js';
import { decodeConfig, encodeConfig, type RepoConfig } from '../format/config.js';
import { decodeKeyFile, encodeKeyFile, decodeMasterKey, encodeMasterKey, type KeyFile } from '../format/keyfile.js';
import { decodeUnpacked, encodeUnpacked } from '../format/unpacked.js';
import { decodeIndexCompact } from '../format/index-scan.js';
import { decodePackHeader, parseTrailer } from '../format/pack.js';
import { formatTime, localOffsetMinutes } from '../format/time.js';
import { randomPolynomial } from '../chunker/polynomial.js';
import { MasterIndex, type BlobLocation, type BlobType } from './master-index.js';
import { TreePackCache } from './tree-cache.js';
import { BlobOpener } from './seal-open.js';

export type UnpackedType = 'index' | 'snapshot' | 'lock';

export interface RepositoryOptions {
  logger?: Logger;
  clock?: Clock;
}

export interface InitOptions {
  version?: 1 | 2;
  chunker?: RepoConfig['chunker'];
  /** Reuse a polynomial (e.g. copied from another repository) instead of drawing a random one. */
  polynomial?: bigint;
  scrypt?: ScryptParams;
}

/** restic tries at most this many key files before giving up. */
const MAX_KEYS_TRIED = 20;

/**
 * An open repository: backend + master key + config + index. The only place where crypto,
 * format and backend meet. Writing blobs goes through a BlobWriter (blob-writer.ts).
 */
export class Repository {
  readonly index = new MasterIndex();
  private readonly treeCache = new TreePackCache(this.index, (packId, offset, length) => this.backend.load({ type: 'pack', name: packId }, offset, length));
  readonly logger: Logger;
  readonly clock: Clock;
  private indexLoaded = false;

  private constructor(
    readonly backend: Backend,
    readonly masterKey: CryptoKey,
    readonly sealer: Sealer,
    readonly config: RepoConfig,
    readonly keyId: Id,
    opts: RepositoryOptions,
  ) {
    this.logger = opts.logger ?? nullLogger;
    this.clock = opts.clock ?? systemClock;
  }

  get version(): 1 | 2 {
    return this.config.version;
  }

  /** Creates a new repository with a random master key and one key file for password. */
  static async init(backend: Backend, password: string, init: InitOptions = {}, opts: RepositoryOptions = {}): Promise<Repository> {
    if (!password) throw new CairnError('INVALID_ARGUMENT', 'an empty password is not allowed');
    await backend.create();
    const master = newRandomKey();
    const sealer = new Sealer(master);
    const config: RepoConfig = {
      version: init.version ?? 2,
      id: randomBytes(32).toString('hex'),
      chunkerPolynomial: init.polynomial ?? randomPolynomial(),
    };
    if (init.chunker) config.chunker = init.chunker;
    const keyId = await addKeyFile(backend, master, password, init.scrypt ?? DEFAULT_SCRYPT, opts.clock ?? systemClock);
    await backend.save({ type: 'config', name: 'config' }, sealer.seal(encodeConfig(config)));
    return new Repository(backend, master, sealer, config, keyId, opts);
  }

  /** Opens an existing repository: finds a key file the password opens, then reads the config. */
  static async open(backend: Backend, password: string, opts: RepositoryOptions & { keyHint?: string } = {}): Promise<Repository> {
    let configBytes: Buffer;
    try {
      configBytes = await backend.load({ type: 'config', name: 'config' });
    } catch (e) {
      if (isCairnError(e, 'NOT_FOUND')) {
        throw new CairnError('REPO_NOT_FOUND', `no repository at ${backend.location} (config file missing)`, { object: backend.location });
      }
      throw e;
    }
    const found = await findKey(backend, password, opts.keyHint);
    const sealer = new Sealer(found.master);
    let config: RepoConfig;
    try {
      config = decodeConfig(sealer.open(configBytes, 'config'));
    } catch (e) {
      throw new CairnError('CORRUPT', `config file of ${backend.location} cannot be loaded: ${(e as Error).message}`, { object: 'config', cause: e });
    }
    return new Repository(backend, found.master, sealer, config, found.id, opts);
  }

  /** Loads, verifies (name = SHA-256 of the stored bytes), decrypts and decodes an index/snapshot/lock file. */
  async loadUnpacked(type: UnpackedType, id: Id): Promise<Buffer> {
    const raw = await this.backend.load({ type, name: id });
    if (hashId(raw) !== id) {
      throw new CairnError('CORRUPT', `${type} ${id}: invalid data returned (hash does not match file name)`, { object: `${type} ${id}` });
    }
    const plain = this.sealer.open(raw, `${type} ${id}`);
    return decodeUnpacked(plain, this.version);
  }

  /** Encrypts and stores an index/snapshot/lock JSON document; returns its ID. */
  async saveUnpacked(type: UnpackedType, json: Buffer): Promise<Id> {
    const sealed = this.sealer.seal(encodeUnpacked(json, this.version, this.version === 2));
    const id = hashId(sealed);
    await this.backend.save({ type, name: id }, sealed);
    return id;
  }

  async removeFile(type: FileType, id: Id): Promise<void> {
    await this.backend.remove({ type, name: id });
  }

  async listIds(type: FileType, signal?: AbortSignal): Promise<Id[]> {
    const ids: Id[] = [];
    for await (const f of this.backend.list(type, signal)) ids.push(f.name);
    return ids;
  }

  /** Loads every index file into the master index (the union of all of them). */
  async loadIndex(signal?: AbortSignal): Promise<Id[]> {
    const ids = await this.listIds('index', signal);
    await mapLimit(ids, 8, async (id) => {
      signal?.throwIfAborted();
      // typed arrays, not an object per blob: the index of many small files would otherwise be
      // tens of MiB of short-lived heap, which also raises the garbage collector's limits for
      // the rest of the command
      this.index.addBatch(decodeIndexCompact(await this.loadUnpacked('index', id), this.version));
    });
    this.indexLoaded = true;
    return ids;
  }

  get isIndexLoaded(): boolean {
    return this.indexLoaded;
  }

  private opener: BlobOpener | undefined;

  /** The blob kernel bound to this repository's key (openBlob's; the restorer's too). */
  get blobOpener(): BlobOpener {
    return (this.opener ??= new BlobOpener(this.masterKey));
  }

  /**
   * Decrypts, decompresses and verifies one stored blob read from a pack, with the blob kernel (MAC,
   * decryption, decompression and hash in one native call; on the kernel threads for blobs over a
   * few KiB). The same steps one by one on this thread cost ~50 µs per tree blob, ~65 ms of a
   * restore's planning of the benchmark tree.
   */
  openBlob(type: BlobType, id: Id, loc: BlobLocation, sealed: Uint8Array): Promise<Buffer> {
    return this.blobOpener.open(type, id, loc, sealed);
  }

  /** Loads a blob, trying every known location until one decrypts and hashes correctly. */
  async loadBlob(type: BlobType, id: Id): Promise<Buffer> {
    const locs = this.index.lookup(type, id);
    if (locs.length === 0) throw new CairnError('NOT_FOUND', `${type} blob ${id} not found in index`, { object: `${type} blob ${id}` });
    let lastErr: unknown;
    for (const loc of locs) {
      if (type === 'tree') {
        // trees come from whole cached tree packs: one request per pack, not per directory
        const cached = await this.treeCache.get(loc).catch(() => undefined);
        if (cached) {
          try {
            return await this.openBlob(type, id, loc, cached);
          } catch {
            this.treeCache.drop(loc.packId); // read it on its own below
          }
        }
      }
      try {
        const sealed = await this.backend.load({ type: 'pack', name: loc.packId }, loc.offset, loc.length);
        return await this.openBlob(type, id, loc, sealed);
      } catch (e) {
        lastErr = e;
        this.logger.warn('blob location failed, trying next', { blob: id, pack: loc.packId, error: (e as Error).message });
      }
    }
    throw lastErr;
  }

  /** Reads and decrypts the header of a pack (without the index). */
  async loadPackHeader(packId: Id, packSize?: number) {
    const size = packSize ?? (await this.backend.stat({ type: 'pack', name: packId })).size;
    const what = `pack ${packId}`;
    if (size < 4) throw new CairnError('CORRUPT', `${what}: file too small (${size} bytes)`, { object: what });
    // Read the tail optimistically like restic: most headers fit in the last few KiB.
    const guess = Math.min(size, 16 * 1024);
    let tail = await this.backend.load({ type: 'pack', name: packId }, size - guess, guess);
    const hlen = parseTrailer(tail.subarray(tail.length - 4), size);
    if (hlen + 4 > tail.length) tail = await this.backend.load({ type: 'pack', name: packId }, size - 4 - hlen, hlen + 4);
    const sealedHeader = tail.subarray(tail.length - 4 - hlen, tail.length - 4);
    const plain = this.sealer.open(sealedHeader, `${what} header`);
    return { blobs: decodePackHeader(plain, this.version), headerLength: hlen, size };
  }

  /** Adds a key file for another password; returns its ID. */
  async addKey(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<Id> {
    return addKeyFile(this.backend, this.masterKey, password, params, this.clock);
  }
}

export interface FoundKey {
  id: Id;
  master: CryptoKey;
  file: KeyFile;
}

/** Tries key files (the hinted one first, at most 20) until one opens with the password. */
export async function findKey(backend: Backend, password: string, hint?: string): Promise<FoundKey> {
  const ids: Id[] = [];
  for await (const f of backend.list('key')) ids.push(f.name);
  if (hint) {
    const i = ids.findIndex((id) => id.startsWith(hint));
    if (i > 0) ids.unshift(...ids.splice(i, 1));
  }
  if (ids.length === 0) throw new CairnError('REPO_NOT_FOUND', `no key files found in ${backend.location}`, { object: backend.location });
  for (const id of ids.slice(0, MAX_KEYS_TRIED)) {
    let file: KeyFile;
    try {
      file = decodeKeyFile(await backend.load({ type: 'key', name: id }));
    } catch {
      continue; // an unreadable key file does not stop the search
    }
    const userKey = await deriveKey(password, file.salt, { N: file.N, r: file.r, p: file.p });
    const s = new Sealer(userKey);
    if (!s.verifies(file.data)) continue;
    const mk = decodeMasterKey(s.open(file.data, `key ${id}`));
    return { id, master: { encrypt: mk.encrypt, macK: mk.macK, macR: mk.macR }, file };
  }
  throw new CairnError('WRONG_PASSWORD', 'wrong password or no key found');
}

export async function addKeyFile(backend: Backend, master: CryptoKey, password: string, params: ScryptParams, clock: Clock): Promise<Id> {
  if (!password) throw new CairnError('INVALID_ARGUMENT', 'an empty password is not allowed');
  const salt = newSalt();
  const userKey = await deriveKey(password, salt, params);
  const data = new Sealer(userKey).seal(encodeMasterKey({ encrypt: master.encrypt, macK: master.macK, macR: master.macR }));
  const ns = clock.nowNs();
  const json = encodeKeyFile({
    created: formatTime(ns, localOffsetMinutes(ns)),
    username: safeUserName(),
    hostname: hostname(),
    kdf: 'scrypt',
    N: params.N,
    r: params.r,
    p: params.p,
    salt,
    data,
  });
  const id = hashId(json);
  await backend.save({ type: 'key', name: id }, json);
  return id;
}

export function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return '';
  }
}
