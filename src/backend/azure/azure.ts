import { randomBytes } from 'node:crypto';
import {
  AnonymousCredential,
  BlobServiceClient,
  StorageSharedKeyCredential,
  type BlockBlobClient,
  type BlockBlobUploadOptions,
  type ContainerClient,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import { CairnError, errorMessage } from '../../core/errors.js';
import { systemClock } from '../../core/clock.js';
import type { Readable } from 'node:stream';
import type { Backend, FileHandle, FileInfo, FileSource, FileType } from '../backend.js';
import { readBody, type BodyStream } from '../body.js';
import { BackendError, describeHandle, isRetryableNetworkError, isRetryableStatus, parseRetryAfter } from '../errors.js';
import { listPrefix, nameFromKey, normalizePrefix, objectKey } from '../layout.js';
import { SourceStreams, StallWatchdog, sourceReadError, asBuffer, digestSource, fetchPage, headerOf, md5, readSource } from '../object-store.js';
import type { AzureOptions } from './options.js';
import { listAccountKey, type ArmKeySource } from './arm.js';

const MiB = 1024 * 1024;
const DEFAULTS = {
  singlePutLimit: 64 * MiB,
  blockSize: 8 * MiB,
  blockConcurrency: 4,
  // The retry wrapper above this backend repeats failed operations (honouring Retry-After, which
  // the SDK's policy ignores), so the SDK itself tries once. Blocks are retried here, see putBlocks.
  maxTries: 1,
  retryDelayMs: 500,
  stallTimeoutMs: 60_000,
  listPageSize: 5000,
};
/** Service limits: a block is at most 4000 MiB, Put Blob at most 5000 MiB, 50 000 blocks a blob. */
const MAX_BLOCK = 4000 * MiB;
const MAX_PUT = 5000 * MiB;
const MAX_BLOCKS = 50_000;
/** Tries per block before the whole save fails (a large file should not restart for one blip). */
const BLOCK_TRIES = 4;

/**
 * Opens a repository in an Azure Blob container with restic's layout
 * (`<prefix>/config`, `<prefix>/keys/<id>`, …, `<prefix>/data/<xx>/<id>`).
 * Nothing is contacted until the first operation.
 */
export function openAzureBackend(loc: { container: string; prefix: string }, opts: AzureOptions): Backend {
  return new AzureBackend(loc, opts);
}

/** What a RestError (or the SDK's AbortError) carries. */
interface RestErrorLike {
  statusCode?: number;
  code?: string;
  name?: string;
  details?: { errorCode?: string };
  response?: { headers?: unknown };
}

class AzureBackend implements Backend {
  readonly location: string;
  /** The container client, or how to get one (the account key may first come from Resource Manager). */
  private container: ContainerClient | undefined;
  private readonly connect: () => Promise<ContainerClient>;
  private connecting: Promise<ContainerClient> | undefined;
  private readonly prefix: string;
  private readonly o: typeof DEFAULTS;

  constructor(loc: { container: string; prefix: string }, opts: AzureOptions) {
    if (!loc.container) throw new CairnError('INVALID_ARGUMENT', 'azure: no container name given (azure:<container>:/<path>)');
    this.prefix = normalizePrefix(loc.prefix);
    this.location = `azure:${loc.container}:/${this.prefix}`;
    this.o = {
      singlePutLimit: Math.min(opts.singlePutLimit ?? DEFAULTS.singlePutLimit, MAX_PUT),
      blockSize: Math.min(opts.blockSize ?? DEFAULTS.blockSize, MAX_BLOCK),
      blockConcurrency: Math.max(1, opts.blockConcurrency ?? DEFAULTS.blockConcurrency),
      maxTries: Math.max(1, opts.maxTries ?? DEFAULTS.maxTries),
      retryDelayMs: opts.retryDelayMs ?? DEFAULTS.retryDelayMs,
      stallTimeoutMs: opts.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs,
      listPageSize: Math.min(Math.max(1, opts.listPageSize ?? DEFAULTS.listPageSize), 5000),
    };
    if (!(this.o.blockSize >= 1)) throw new CairnError('INVALID_ARGUMENT', 'azure: block size must be positive');
    const pipeline: StoragePipelineOptions = {
      retryOptions: {
        maxTries: this.o.maxTries,
        retryDelayInMs: this.o.retryDelayMs,
        maxRetryDelayInMs: Math.max(this.o.retryDelayMs, 30_000),
      },
      userAgentOptions: { userAgentPrefix: 'cairn' },
    };
    if (!opts.accountKey && !opts.sasToken && !opts.connectionString && opts.listKeys && opts.accountName) {
      const src: ArmKeySource = { ...opts.listKeys, accountName: opts.accountName };
      this.connect = async () => {
        const key = await listAccountKey(src);
        return serviceClient({ ...opts, accountKey: key }, pipeline).getContainerClient(loc.container);
      };
    } else {
      this.container = serviceClient(opts, pipeline).getContainerClient(loc.container);
      const c = this.container;
      this.connect = async () => c;
    }
  }

  /** The container client; a failed key lookup is tried again by the next operation. */
  private async cc(): Promise<ContainerClient> {
    if (this.container) return this.container;
    this.connecting ??= this.connect().then(
      (c) => (this.container = c),
      (e: unknown) => {
        this.connecting = undefined;
        throw e;
      },
    );
    return this.connecting;
  }

  private async blob(h: FileHandle): Promise<{ key: string; client: BlockBlobClient }> {
    const key = objectKey(this.prefix, h);
    return { key, client: (await this.cc()).getBlockBlobClient(key) };
  }

  private watchdog(outer?: AbortSignal): StallWatchdog {
    return new StallWatchdog(this.o.stallTimeoutMs, outer);
  }

  async create(): Promise<void> {
    const { client } = await this.blob({ type: 'config', name: 'config' });
    const wd = this.watchdog();
    try {
      await client.getProperties({ abortSignal: wd.signal });
      throw new CairnError('REPO_EXISTS', `repository ${this.location} already exists (config file present)`, { object: this.location });
    } catch (e) {
      if (e instanceof CairnError) throw e;
      const s = (e as RestErrorLike).statusCode;
      // 404: no config yet (or no container). 403: a SAS without read permission; the
      // create-only write of the config still catches an existing repository.
      if (s !== 404 && s !== 403) throw this.fail(e, 'create', 'repository', wd);
    } finally {
      wd.stop();
    }
    const wd2 = this.watchdog();
    try {
      await (await this.cc()).create({ abortSignal: wd2.signal });
    } catch (e) {
      const s = (e as RestErrorLike).statusCode;
      // 409: it exists (the usual case). 403: a container-scoped SAS cannot create containers;
      // the container then has to exist, and the first write tells.
      if (s !== 409 && s !== 403) throw this.fail(e, 'create', 'container', wd2);
    } finally {
      wd2.stop();
    }
  }

  async save(h: FileHandle, data: Uint8Array): Promise<void> {
    const buf = asBuffer(data);
    await this.put(h, {
      size: buf.length,
      md5: md5(buf),
      body: (start, end) => buf.subarray(start, end),
      blockMd5: (start, end) => md5(buf.subarray(start, end)),
      bytes: async () => buf,
    });
  }

  /**
   * Streams a local file: one Put Blob up to the single-put limit, staged blocks above it, each
   * body a fresh stream of its range (the SDK opens it per request). The MD5s the service checks
   * are computed first, in one read of the file (hot in the page cache: it was just written).
   */
  async saveFile(h: FileHandle, src: FileSource): Promise<void> {
    const blocks = src.size > this.o.singlePutLimit ? this.o.blockSize : 0;
    const { md5: digest, blocks: blockMd5s } = await digestSource(src, blocks);
    const streams = new SourceStreams(src);
    try {
      await this.put(h, {
        size: src.size,
        md5: digest,
        // a failed read aborts the request at once (the SDK would wait for the rest of the body)
        body: (start, end, wd) => () => {
          const r = streams.open(start, end);
          r.once('error', (e) => wd.controller.abort(e));
          return r;
        },
        blockMd5: (start) => blockMd5s[start / this.o.blockSize]!,
        bytes: () => readSource(src),
        readError: () => streams.error,
      });
    } catch (e) {
      // a failed read of the file, not a failed request: say so (the SDK only saw a broken body)
      if (streams.error !== undefined && !(e instanceof Conflict)) throw sourceReadError(streams.error, describeHandle(h));
      throw e;
    }
  }

  private async put(h: FileHandle, c: Content): Promise<void> {
    const { key, client } = await this.blob(h);
    try {
      if (c.size <= this.o.singlePutLimit) await this.putSingle(h, client, c);
      else await this.putBlocks(h, client, c);
    } catch (e) {
      // Create-only writes answer 409 BlobAlreadyExists (Put Blob) or 412 (commit). Files are
      // content-addressed, so an existing blob with our bytes means an earlier try of this same
      // save went through and only its answer was lost.
      if (e instanceof Conflict) {
        await this.checkExisting(h, key, client, c);
        return;
      }
      throw e;
    }
  }

  private async putSingle(h: FileHandle, client: BlockBlobClient, c: Content): Promise<void> {
    const wd = this.watchdog();
    // Content-MD5 makes the service verify the body it received (400 on mismatch); the SDK passes
    // transactionalContentMD5 on for Put Blob although its options type does not declare it.
    // x-ms-blob-content-md5 stores the digest, so whole-file reads and conflicts can be checked.
    const options: BlockBlobUploadOptions & { transactionalContentMD5?: Uint8Array } = {
      abortSignal: wd.signal,
      conditions: { ifNoneMatch: '*' },
      blobHTTPHeaders: { blobContentType: 'application/octet-stream', blobContentMD5: c.md5 },
      transactionalContentMD5: c.md5,
      onProgress: () => wd.kick(),
    };
    try {
      await client.upload(c.body(0, c.size, wd), c.size, options);
    } catch (e) {
      throw this.failOrConflict(e, 'save', h, wd);
    } finally {
      wd.stop();
    }
  }

  /**
   * Large files: staged blocks (views of the caller's buffer or ranges of its file, so nothing is
   * copied and memory stays at the file itself), at most `blockConcurrency` in flight, each retried
   * on its own, then one create-only commit.
   */
  private async putBlocks(h: FileHandle, client: BlockBlobClient, c: Content): Promise<void> {
    const size = this.o.blockSize;
    const count = Math.ceil(c.size / size);
    if (count > MAX_BLOCKS) throw new CairnError('INVALID_ARGUMENT', `azure: ${describeHandle(h)} needs ${count} blocks (limit ${MAX_BLOCKS}): raise the block size`);
    // Block IDs must have one length within a blob; a per-save nonce keeps blocks of an abandoned
    // earlier try (uncommitted, dropped by the service after a week) out of this commit.
    const nonce = randomBytes(9).toString('hex');
    const ids = Array.from({ length: count }, (_, i) => Buffer.from(`${nonce}-${String(i).padStart(6, '0')}`).toString('base64'));
    let next = 0;
    let failed: unknown;
    const stage = async (i: number): Promise<void> => {
      const start = i * size;
      const end = Math.min(c.size, start + size);
      const partMd5 = c.blockMd5(start, end);
      for (let attempt = 1; ; attempt++) {
        const wd = this.watchdog();
        try {
          await client.stageBlock(ids[i]!, c.body(start, end, wd), end - start, { abortSignal: wd.signal, transactionalContentMD5: partMd5, onProgress: () => wd.kick() });
          return;
        } catch (e) {
          const err = this.fail(e, `save (block ${i + 1} of ${count})`, describeHandle(h), wd);
          // a block whose file could not be read is not retried here
          if (!err.retryable || attempt >= BLOCK_TRIES || failed !== undefined || c.readError?.() !== undefined) throw err;
          const wait = Math.max(err instanceof BackendError ? (err.retryAfterMs ?? 0) : 0, this.o.retryDelayMs * 2 ** (attempt - 1));
          await systemClock.sleep(wait);
        } finally {
          wd.stop();
        }
      }
    };
    const worker = async (): Promise<void> => {
      while (failed === undefined && next < count) {
        const i = next++;
        try {
          await stage(i);
        } catch (e) {
          failed ??= e;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.blockConcurrency, count) }, worker));
    if (failed !== undefined) throw failed;
    const wd = this.watchdog();
    try {
      await client.commitBlockList(ids, {
        abortSignal: wd.signal,
        conditions: { ifNoneMatch: '*' },
        blobHTTPHeaders: { blobContentType: 'application/octet-stream', blobContentMD5: c.md5 },
      });
    } catch (e) {
      throw this.failOrConflict(e, 'save (commit)', h, wd);
    } finally {
      wd.stop();
    }
  }

  private failOrConflict(e: unknown, op: string, h: FileHandle, wd: StallWatchdog): unknown {
    const s = (e as RestErrorLike).statusCode;
    if (!wd.fired && (s === 409 || s === 412)) return new Conflict();
    return this.fail(e, op, describeHandle(h), wd);
  }

  private async checkExisting(h: FileHandle, key: string, client: BlockBlobClient, c: Content): Promise<void> {
    const wd = this.watchdog();
    let props;
    try {
      props = await client.getProperties({ abortSignal: wd.signal });
    } catch (e) {
      throw this.fail(e, 'save (checking the existing file)', describeHandle(h), wd);
    } finally {
      wd.stop();
    }
    let same = props.contentLength === c.size;
    if (same && props.contentMD5 && props.contentMD5.length > 0) same = Buffer.from(props.contentMD5).equals(c.md5);
    else if (same) same = (await this.load(h)).equals(await c.bytes()); // written by a tool that stored no MD5
    if (same) return;
    if (h.type === 'config') {
      throw new CairnError('REPO_EXISTS', `repository ${this.location} already exists (config file present)`, { object: this.location });
    }
    throw new CairnError('BACKEND', `${describeHandle(h)} already exists in ${this.location} with different content (${key})`, { object: describeHandle(h) });
  }

  async load(h: FileHandle, offset = 0, length?: number): Promise<Buffer> {
    const { client } = await this.blob(h);
    const what = describeHandle(h);
    if (length === 0) {
      await this.stat(h);
      return Buffer.alloc(0);
    }
    const wd = this.watchdog();
    try {
      const res = await client.download(offset, length, { abortSignal: wd.signal, maxRetryRequests: 3 });
      const raw = res.readableStreamBody as unknown as BodyStream | undefined;
      const announced = res.contentLength;
      if (announced === undefined || !raw) {
        raw?.destroy?.();
        throw new BackendError(`cannot load ${what} from ${this.location}: response without length or body`, { object: what, retryable: true });
      }
      if (length !== undefined && announced !== length) {
        raw.destroy?.();
        const total = totalOfContentRange(res.contentRange);
        if (total !== undefined && total < offset + length) {
          throw new CairnError('CORRUPT', `${what}: short read (file has ${total} bytes, ${length} requested at offset ${offset})`, { object: what });
        }
        throw new BackendError(`cannot load ${what} from ${this.location}: server announced ${announced} bytes for a ${length}-byte range`, { object: what, retryable: true });
      }
      // The watchdog keeps watching the body (and the process alive while it flows).
      wd.signal.addEventListener('abort', () => raw.destroy?.(wd.signal.reason as Error), { once: true });
      const body: BodyStream = {
        async *[Symbol.asyncIterator]() {
          for await (const chunk of raw) {
            wd.kick();
            yield chunk;
          }
        },
        destroy: (e?: Error) => raw.destroy?.(e),
      };
      const data = await readBody(body, announced, `load ${what} from ${this.location}`, this.o.stallTimeoutMs);
      // A whole-file read is checked against the MD5 stored at upload.
      if (offset === 0 && length === undefined && res.contentMD5 && res.contentMD5.length > 0 && !md5(data).equals(Buffer.from(res.contentMD5))) {
        throw new BackendError(`cannot load ${what} from ${this.location}: content does not match its stored MD5`, { object: what, retryable: true });
      }
      return data;
    } catch (e) {
      throw this.fail(e, 'load', what, wd);
    } finally {
      wd.stop();
    }
  }

  async stat(h: FileHandle): Promise<FileInfo> {
    const { client } = await this.blob(h);
    const wd = this.watchdog();
    try {
      const p = await client.getProperties({ abortSignal: wd.signal });
      return { name: h.name, size: p.contentLength ?? 0 };
    } catch (e) {
      throw this.fail(e, 'stat', describeHandle(h), wd);
    } finally {
      wd.stop();
    }
  }

  async *list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo> {
    if (type === 'config') {
      try {
        yield await this.stat({ type: 'config', name: 'config' });
      } catch (e) {
        if (!(e instanceof CairnError && e.code === 'NOT_FOUND')) throw e;
      }
      return;
    }
    const prefix = listPrefix(this.prefix, type);
    const container = await this.cc();
    let token: string | undefined;
    do {
      signal?.throwIfAborted();
      const page = await fetchPage(async () => {
        const wd = this.watchdog(signal);
        try {
          const pages = container.listBlobsFlat({ prefix, abortSignal: wd.signal }).byPage({ continuationToken: token, maxPageSize: this.o.listPageSize });
          return (await pages.next()).value;
        } catch (e) {
          // A missing container lists as empty, as a missing directory does for the local backend.
          if ((e as RestErrorLike).statusCode === 404 && !wd.fired) return undefined;
          throw this.fail(e, 'list', `${type} files`, wd, signal);
        } finally {
          wd.stop();
        }
      }, signal);
      if (!page) return;
      for (const item of page.segment.blobItems) {
        const name = nameFromKey(item.name);
        if (name) yield { name, size: item.properties.contentLength ?? 0 };
      }
      token = page.continuationToken || undefined;
    } while (token);
  }

  async remove(h: FileHandle): Promise<void> {
    const { client } = await this.blob(h);
    const wd = this.watchdog();
    try {
      await client.delete({ abortSignal: wd.signal });
    } catch (e) {
      throw this.fail(e, 'remove', describeHandle(h), wd);
    } finally {
      wd.stop();
    }
  }

  async close(): Promise<void> {}

  /** Maps an SDK or transport error to a CairnError naming the object and whether a retry can help. */
  private fail(e: unknown, op: string, what: string, wd?: StallWatchdog, outer?: AbortSignal): CairnError {
    if (e instanceof CairnError && !wd?.fired) return e;
    const where = `cannot ${op} ${what} in ${this.location}`;
    if (wd?.fired) return new BackendError(`${where}: no progress for ${this.o.stallTimeoutMs} ms`, { object: what, cause: e, retryable: true });
    const err = e as RestErrorLike;
    if (outer?.aborted || (err?.name === 'AbortError' && err.statusCode === undefined)) {
      return new CairnError('CANCELLED', `${where}: cancelled`, { object: what, cause: e });
    }
    const status = err?.statusCode;
    const code = err?.details?.errorCode ?? err?.code;
    const detail = `${status ? `HTTP ${status} ` : ''}${code ? `${code}: ` : ''}${firstLine(errorMessage(e))}`;
    if (status === 404) return new CairnError('NOT_FOUND', `${what} does not exist in ${this.location}`, { object: what, cause: e });
    if (status === 401 || status === 403) return new CairnError('PERMISSION', `${where}: access denied (${detail})`, { object: what, cause: e });
    if (status === 416) return new CairnError('CORRUPT', `${where}: range outside the file (${detail})`, { object: what, cause: e });
    // A 2xx "error" is an answer the SDK could not parse (cut short): worth another try.
    const garbled = err?.code === 'PARSE_ERROR' || (status !== undefined && status >= 200 && status < 300);
    const retryable = garbled || (status !== undefined ? isRetryableStatus(status) : isRetryableNetworkError(e) || isSdkTransportError(err));
    return new BackendError(`${where}: ${detail}`, {
      object: what,
      cause: e,
      status,
      retryable,
      retryAfterMs: parseRetryAfter(headerOf(err?.response?.headers, 'retry-after'), Date.now()),
    });
  }
}

/** Marks a create-only conflict inside save(); never leaves this module. */
class Conflict extends Error {}

/** What a save sends, from memory or from a local file. */
interface Content {
  size: number;
  md5: Buffer;
  /** The body of bytes [start, end): a view of the buffer, or a factory of streams of the file. */
  body(start: number, end: number, wd: StallWatchdog): Buffer | (() => Readable);
  blockMd5(start: number, end: number): Buffer;
  /** All the bytes (for the rare byte-for-byte comparison). */
  bytes(): Promise<Buffer>;
  /** The first failed read of the file, if any. */
  readError?: () => unknown;
}

/** core-rest-pipeline wraps socket failures as RestError code REQUEST_SEND_ERROR (or the errno). */
function isSdkTransportError(err: RestErrorLike | undefined): boolean {
  const c = err?.code;
  return c === 'REQUEST_SEND_ERROR' || c === 'ECONNRESET' || c === 'ETIMEDOUT' || c === 'EPIPE' || c === 'ECONNREFUSED' || c === 'PARSE_ERROR';
}

/** "bytes 0-9/100" → 100 */
function totalOfContentRange(v: string | undefined): number | undefined {
  const m = /\/(\d+)\s*$/.exec(v ?? '');
  return m ? Number(m[1]) : undefined;
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i >= 0 ? s.slice(0, i) : s).trim().slice(0, 500);
}

function serviceClient(opts: AzureOptions, pipeline: StoragePipelineOptions): BlobServiceClient {
  const endpointFor = (account: string): string => {
    const url = opts.endpoint ?? `https://${account}.blob.${opts.endpointSuffix ?? 'core.windows.net'}`;
    return url.replace(/\/+$/, '');
  };
  if (opts.accountKey) {
    if (!opts.accountName) throw new CairnError('INVALID_ARGUMENT', 'azure: an account key needs an account name (AZURE_ACCOUNT_NAME)');
    return new BlobServiceClient(endpointFor(opts.accountName), new StorageSharedKeyCredential(opts.accountName, opts.accountKey), pipeline);
  }
  if (opts.sasToken) {
    if (!opts.accountName && !opts.endpoint) {
      throw new CairnError('INVALID_ARGUMENT', 'azure: a SAS token needs an account name (AZURE_ACCOUNT_NAME) or an endpoint');
    }
    const sas = opts.sasToken.replace(/^\?/, '');
    return new BlobServiceClient(`${endpointFor(opts.accountName ?? '')}?${sas}`, new AnonymousCredential(), pipeline);
  }
  if (opts.connectionString) {
    try {
      return BlobServiceClient.fromConnectionString(opts.connectionString, pipeline);
    } catch (e) {
      throw new CairnError('INVALID_ARGUMENT', `azure: invalid connection string: ${errorMessage(e)}`, { cause: e });
    }
  }
  throw new CairnError(
    'INVALID_ARGUMENT',
    'azure: no credentials: set AZURE_ACCOUNT_NAME with AZURE_ACCOUNT_KEY or AZURE_ACCOUNT_SAS, or AZURE_STORAGE_CONNECTION_STRING',
  );
}
