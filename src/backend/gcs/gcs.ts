import { readFileSync } from 'node:fs';
import { CRC32C, Storage, type Bucket, type CreateWriteStreamOptions, type File as GcsFile, type StorageOptions } from '@google-cloud/storage';
import { CairnError, errorMessage } from '../../core/errors.js';
import { systemClock } from '../../core/clock.js';
import type { Writable } from 'node:stream';
import type { Backend, FileHandle, FileInfo, FileSource, FileType } from '../backend.js';
import { BackendError, describeHandle, isRetryableNetworkError, isRetryableStatus, parseRetryAfter } from '../errors.js';
import { listPrefix, nameFromKey, normalizePrefix, objectKey } from '../layout.js';
import { SourceStreams, StallWatchdog, sourceReadError, asBuffer, digestSource, fetchPage, headerOf, md5, readSource } from '../object-store.js';
import type { GcsOptions } from './options.js';

const MiB = 1024 * 1024;
const DEFAULTS = {
  resumableThreshold: 16 * MiB,
  chunkSize: 8 * MiB,
  sessionTries: 4,
  retryDelayMs: 500,
  stallTimeoutMs: 60_000,
  listPageSize: 1000,
};
const CHUNK_GRANULE = 256 * 1024;

/**
 * Opens a repository in a Google Cloud Storage bucket with restic's layout
 * (`<prefix>/config`, `<prefix>/keys/<id>`, …, `<prefix>/data/<xx>/<id>`).
 * Nothing is contacted until the first operation.
 */
export function openGcsBackend(loc: { bucket: string; prefix: string }, opts: GcsOptions): Backend {
  return new GcsBackend(loc, opts);
}

/** The SDK's error shapes: ApiError (code = HTTP status), GaxiosError (response.status), RequestError (code = string). */
interface GcsErrorLike {
  code?: number | string;
  status?: number;
  response?: { status?: number; statusCode?: number; headers?: unknown };
  message?: string;
  errors?: Array<{ reason?: string; message?: string }>;
}

/** HTTP status of an SDK error, wherever that error type keeps it. */
function statusOf(e: unknown): number | undefined {
  const err = e as GcsErrorLike | undefined;
  if (typeof err?.code === 'number' && err.code >= 100 && err.code < 600) return err.code;
  if (typeof err?.code === 'string' && /^[1-5]\d\d$/.test(err.code)) return Number(err.code);
  if (typeof err?.status === 'number') return err.status;
  if (typeof err?.response?.status === 'number') return err.response.status;
  // what the resumable uploader throws after its own retries: "Retry limit exceeded - status: 503 …"
  const m = /^Retry (?:total time )?limit exceeded - status: (\d{3})/.exec(err?.message ?? '');
  return m ? Number(m[1]) : undefined;
}

function readKeyFileProject(keyFilename: string): string | undefined {
  let key: { project_id?: unknown; quota_project_id?: unknown };
  try {
    key = JSON.parse(readFileSync(keyFilename, 'utf8'));
  } catch (e) {
    throw new CairnError('INVALID_ARGUMENT', `gs: cannot read credentials file ${keyFilename}: ${errorMessage(e)}`, { cause: e });
  }
  if (typeof key.project_id === 'string' && key.project_id) return key.project_id;
  if (typeof key.quota_project_id === 'string' && key.quota_project_id) return key.quota_project_id;
  return undefined;
}

/** What a save sends, from memory or from a local file. */
interface Content {
  size: number;
  /** MD5 of the content, base64 (as GCS resources carry it). */
  md5: string;
  /** Writes all of the content into an upload stream (again for every attempt). */
  send(ws: Writable): void;
  /** All the bytes (for the rare checks that need them: no stored MD5). */
  bytes(): Promise<Buffer>;
}

class GcsBackend implements Backend {
  readonly location: string;
  private readonly bucket: Bucket;
  private readonly prefix: string;
  private readonly projectId: string | undefined;
  private readonly o: typeof DEFAULTS & { requestTimeoutMs: number };

  constructor(loc: { bucket: string; prefix: string }, opts: GcsOptions) {
    if (!loc.bucket) throw new CairnError('INVALID_ARGUMENT', 'gs: no bucket name given (gs:<bucket>:/<path>)');
    this.prefix = normalizePrefix(loc.prefix);
    this.location = `gs:${loc.bucket}:/${this.prefix}`;
    this.o = {
      resumableThreshold: opts.resumableThreshold ?? DEFAULTS.resumableThreshold,
      chunkSize: opts.chunkSize ?? DEFAULTS.chunkSize,
      sessionTries: Math.max(1, opts.sessionTries ?? DEFAULTS.sessionTries),
      retryDelayMs: opts.retryDelayMs ?? DEFAULTS.retryDelayMs,
      // The SDK's per-request timeout; a JSON answer cut short leaves it waiting this long.
      requestTimeoutMs: opts.requestTimeoutMs ?? opts.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs,
      stallTimeoutMs: opts.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs,
      listPageSize: Math.min(Math.max(1, opts.listPageSize ?? DEFAULTS.listPageSize), 1000),
    };
    if (this.o.chunkSize % CHUNK_GRANULE !== 0) {
      throw new CairnError('INVALID_ARGUMENT', `gs: chunk size ${this.o.chunkSize} is not a multiple of 256 KiB`);
    }
    this.projectId = opts.projectId || (opts.keyFilename ? readKeyFileProject(opts.keyFilename) : undefined);
    const base: StorageOptions = { timeout: this.o.requestTimeoutMs, userAgent: 'cairn' };
    // Never let the SDK look a project up: without one it asks google-auth-library, which may
    // probe the metadata server. Only bucket creation needs it, and create() checks first.
    if (this.projectId) base.projectId = this.projectId;
    if (opts.keyFilename) base.keyFilename = opts.keyFilename;
    if (opts.apiEndpoint) {
      base.apiEndpoint = opts.apiEndpoint;
      base.useAuthWithCustomEndpoint = opts.useAuthWithCustomEndpoint ?? false;
    }
    // The SDK's own retries are off: the retry wrapper above repeats failed requests (honouring
    // Retry-After, which the SDK ignores), and resumable sessions are resumed by save() itself.
    // (7.22's uploader can also run two resume attempts at once after a failed status query
    // and then throw from a timer.)
    this.bucket = new Storage({ ...base, retryOptions: { autoRetry: false } }).bucket(loc.bucket);
  }

  private watchdog(outer?: AbortSignal): StallWatchdog {
    return new StallWatchdog(this.o.stallTimeoutMs, outer);
  }

  /** A JSON API call (no abort hook in the SDK): a stall rejects it; the request then times out on its own. */
  private async call<T>(op: string, what: string, fn: () => Promise<T>, outer?: AbortSignal): Promise<T> {
    const wd = this.watchdog(outer);
    try {
      return await new Promise<T>((resolve, reject) => {
        const onAbort = () => reject(wd.signal.reason);
        wd.signal.addEventListener('abort', onAbort, { once: true });
        fn()
          .then(resolve, reject)
          .finally(() => wd.signal.removeEventListener('abort', onAbort));
      });
    } catch (e) {
      throw this.fail(e, op, what, wd, outer);
    } finally {
      wd.stop();
    }
  }

  async create(): Promise<void> {
    const cfg = objectKey(this.prefix, { type: 'config', name: 'config' });
    const [exists] = await this.call('create', 'repository', () => this.bucket.file(cfg).exists());
    if (exists) throw new CairnError('REPO_EXISTS', `repository ${this.location} already exists (config file present)`, { object: this.location });
    let bucketExists = true;
    try {
      [bucketExists] = await this.call('create', 'bucket', () => this.bucket.exists());
    } catch (e) {
      // 403: credentials limited to objects may not read bucket metadata; assume the bucket
      // exists, as restic does, and let the first write tell.
      if (!(e instanceof CairnError && e.code === 'PERMISSION')) throw e;
    }
    if (bucketExists) return;
    if (!this.projectId) {
      throw new CairnError('INVALID_ARGUMENT', `the bucket of ${this.location} does not exist; to create it, set GOOGLE_PROJECT_ID (or use a key file with a project_id)`);
    }
    try {
      await this.call('create', 'bucket', () => this.bucket.create());
    } catch (e) {
      // 409: created by someone else meanwhile
      if (!(e instanceof BackendError && e.status === 409)) throw e;
    }
  }

  async save(h: FileHandle, data: Uint8Array): Promise<void> {
    const buf = asBuffer(data);
    await this.put(h, {
      size: buf.length,
      md5: md5(buf).toString('base64'),
      send: (ws) => ws.end(buf),
      bytes: async () => buf,
    });
  }

  /**
   * Streams a local file into the upload (a single request up to the resumable threshold, a
   * chunked resumable session above it; every attempt reads the file again). The MD5 the service
   * checks is computed first, in one read of the file (hot in the page cache: it was just written).
   */
  async saveFile(h: FileHandle, src: FileSource): Promise<void> {
    const { md5: digest } = await digestSource(src);
    const streams = new SourceStreams(src);
    try {
      await this.put(h, {
        size: src.size,
        md5: digest.toString('base64'),
        send: (ws) => {
          const r = streams.open();
          // a failed read fails the upload at once (the write stream would wait for more)
          r.once('error', (e) => ws.destroy(e));
          r.pipe(ws);
        },
        bytes: () => readSource(src),
      });
    } catch (e) {
      if (streams.error !== undefined) throw sourceReadError(streams.error, describeHandle(h));
      throw e;
    }
  }

  private async put(h: FileHandle, c: Content): Promise<void> {
    const key = objectKey(this.prefix, h);
    const file = this.bucket.file(key);
    // md5Hash in the resource makes the service verify what it received (400 on mismatch). The
    // SDK's own check after an upload is off: it deletes the object whenever the answer lacks a
    // checksum, even when only the answer was damaged; verifyStored() asks before it removes.
    const metadata: Record<string, unknown> = { contentType: 'application/octet-stream', md5Hash: c.md5 };
    // create-only: 412 when the object exists
    const preconditionOpts = { ifGenerationMatch: 0 };
    try {
      if (c.size <= this.o.resumableThreshold) {
        await this.write(file, c, { resumable: false, metadata, preconditionOpts, validation: false }, h);
      } else {
        await this.saveResumable(file, c, { ...metadata, contentLength: c.size }, h);
      }
      await this.verifyStored(file, h, c);
    } catch (e) {
      if (e instanceof BackendError && e.status === 412) {
        await this.checkExisting(h, key, c);
        return;
      }
      throw e;
    }
  }

  /**
   * A resumable session for a large file. Chunks are acknowledged one by one (308); after a
   * failure the next attempt writes the same bytes into the same session, and the uploader asks
   * the service how much it holds and sends only the rest.
   */
  private async saveResumable(file: GcsFile, c: Content, metadata: Record<string, unknown>, h: FileHandle): Promise<void> {
    const what = describeHandle(h);
    const preconditionOpts = { ifGenerationMatch: 0 };
    let uri: string | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        // The first attempt lets the uploader open the session (and remembers its URI); later
        // ones continue it.
        const options: CreateWriteStreamOptions = { resumable: true, metadata, preconditionOpts, validation: false };
        if (uri) options.uri = uri;
        if (this.o.chunkSize > 0 && c.size > this.o.chunkSize) options.chunkSize = this.o.chunkSize;
        await this.write(file, c, options, h, (u) => (uri = u));
        return;
      } catch (e) {
        if (!(e instanceof CairnError)) throw e;
        if (e instanceof BackendError && e.status === 412) throw e;
        // 404/410: the session is gone (expired, cancelled): start a new one.
        const gone = uri !== undefined && (e.code === 'NOT_FOUND' || (e instanceof BackendError && e.status === 410));
        if (gone) uri = undefined;
        else if (!e.retryable) throw e;
        if (attempt >= this.o.sessionTries) throw e;
        const wait = Math.max(e instanceof BackendError ? (e.retryAfterMs ?? 0) : 0, this.o.retryDelayMs * 2 ** (attempt - 1));
        await systemClock.sleep(wait);
      }
    }
  }

  /**
   * Checks the object an upload reported against what was sent (size and MD5; CRC32C where a
   * store keeps no MD5). An answer that cannot be read is not taken as a verdict: the object is
   * looked up. Only an object proven different is removed (that exact generation), and the
   * failure is retryable.
   */
  private async verifyStored(file: GcsFile, h: FileHandle, c: Content): Promise<void> {
    const what = describeHandle(h);
    type Resource = { size?: unknown; md5Hash?: unknown; crc32c?: unknown; generation?: unknown };
    const usable = (m: unknown): m is Resource =>
      !!m && typeof m === 'object' && /^\d+$/.test(String((m as Resource).size)) && (typeof (m as Resource).md5Hash === 'string' || typeof (m as Resource).crc32c === 'string');
    let meta: unknown = file.metadata;
    if (!usable(meta)) {
      try {
        [meta] = await this.call('save (verifying)', what, () => file.getMetadata());
      } catch (e) {
        if (e instanceof CairnError && e.code === 'NOT_FOUND') {
          throw new BackendError(`cannot save ${what} in ${this.location}: the upload reported success but the object is missing`, { object: what, retryable: true });
        }
        throw e;
      }
      if (!usable(meta)) throw new BackendError(`cannot save ${what} in ${this.location}: malformed metadata response`, { object: what, retryable: true });
    }
    let same = Number(meta.size) === c.size;
    if (same && typeof meta.md5Hash === 'string') same = meta.md5Hash === c.md5;
    else if (same && typeof meta.crc32c === 'string') {
      const crc = new CRC32C();
      crc.update(await c.bytes());
      same = crc.toString() === meta.crc32c;
    }
    if (same) return;
    const generation = typeof meta.generation === 'string' || typeof meta.generation === 'number' ? meta.generation : undefined;
    if (generation !== undefined) {
      await this.call('save (removing a damaged upload)', what, () => file.delete({ ifGenerationMatch: generation })).catch(() => undefined);
    }
    throw new BackendError(`cannot save ${what} in ${this.location}: the stored object does not match what was sent`, { object: what, retryable: true });
  }

  /** One upload through the SDK's write stream, watched for stalls; errors come back mapped. */
  private async write(file: GcsFile, c: Content, options: CreateWriteStreamOptions, h: FileHandle, onUri?: (uri: string) => void): Promise<void> {
    const wd = this.watchdog();
    file.metadata = {}; // what this upload's answer says, nothing older
    try {
      await new Promise<void>((resolve, reject) => {
        const ws = file.createWriteStream(options);
        const onStall = () => ws.destroy(wd.signal.reason as Error);
        wd.signal.addEventListener('abort', onStall, { once: true });
        ws.on('progress', () => wd.kick());
        if (onUri) ws.on('uri', onUri);
        ws.on('error', reject);
        ws.on('finish', resolve);
        c.send(ws);
      });
    } catch (e) {
      throw this.fail(e, 'save', describeHandle(h), wd);
    } finally {
      wd.stop();
    }
  }

  /**
   * Files are content-addressed: an existing object with our bytes means an earlier try of this
   * same save went through and only its answer was lost.
   */
  private async checkExisting(h: FileHandle, key: string, c: Content): Promise<void> {
    const [meta] = await this.call('save (checking the existing file)', describeHandle(h), () => this.bucket.file(key).getMetadata());
    let same = this.sizeOf(meta, describeHandle(h)) === c.size;
    if (same && typeof meta.md5Hash === 'string' && meta.md5Hash) same = meta.md5Hash === c.md5;
    else if (same) same = (await this.load(h)).equals(await c.bytes()); // composite objects have no MD5
    if (same) return;
    if (h.type === 'config') {
      throw new CairnError('REPO_EXISTS', `repository ${this.location} already exists (config file present)`, { object: this.location });
    }
    throw new CairnError('BACKEND', `${describeHandle(h)} already exists in ${this.location} with different content (${key})`, { object: describeHandle(h) });
  }

  async load(h: FileHandle, offset = 0, length?: number): Promise<Buffer> {
    const key = objectKey(this.prefix, h);
    const what = describeHandle(h);
    if (length === 0) {
      await this.stat(h);
      return Buffer.alloc(0);
    }
    const ranged = offset > 0 || length !== undefined;
    const wd = this.watchdog();
    let announced: number | undefined;
    let total: number | undefined;
    const parts: Buffer[] = [];
    let got = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        // A whole-object read is checked by the SDK against the stored crc32c (x-goog-hash);
        // ranges cannot be, so their length is checked here and the repository's MACs do the rest.
        const rs = this.bucket
          .file(key)
          .createReadStream(ranged ? { start: offset, end: length !== undefined ? offset + length - 1 : undefined } : { validation: 'crc32c' });
        const onStall = () => rs.destroy(wd.signal.reason as Error);
        wd.signal.addEventListener('abort', onStall, { once: true });
        rs.on('response', (res: { headers?: unknown }) => {
          const cl = headerOf(res?.headers, 'content-length');
          if (!headerOf(res?.headers, 'content-encoding') && cl && /^\d+$/.test(cl)) announced = Number(cl);
          const m = /\/(\d+)\s*$/.exec(headerOf(res?.headers, 'content-range') ?? '');
          if (m) total = Number(m[1]);
        });
        rs.on('data', (chunk: Buffer) => {
          parts.push(chunk);
          got += chunk.length;
          wd.kick();
        });
        rs.on('error', reject);
        rs.on('end', resolve);
      });
    } catch (e) {
      throw this.fail(e, 'load', what, wd);
    } finally {
      wd.stop();
    }
    const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
    const where = `cannot load ${what} from ${this.location}`;
    if (announced !== undefined && got !== announced) {
      throw new BackendError(`${where}: truncated body (${got} of ${announced} bytes)`, { object: what, retryable: true });
    }
    if (length !== undefined && got !== length) {
      if (got < length && total !== undefined && total < offset + length) {
        throw new CairnError('CORRUPT', `${what}: short read (file has ${total} bytes, ${length} requested at offset ${offset})`, { object: what });
      }
      throw new BackendError(`${where}: ${got} bytes returned for a ${length}-byte range`, { object: what, retryable: true });
    }
    return body;
  }

  async stat(h: FileHandle): Promise<FileInfo> {
    const key = objectKey(this.prefix, h);
    const [meta] = await this.call('stat', describeHandle(h), () => this.bucket.file(key).getMetadata());
    return { name: h.name, size: this.sizeOf(meta, describeHandle(h)) };
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
    let pageToken: string | undefined;
    do {
      signal?.throwIfAborted();
      const page = await fetchPage(async () => {
        let files, next, resp;
        try {
          [files, next, resp] = await this.call(
            'list',
            `${type} files`,
            () => this.bucket.getFiles({ prefix, autoPaginate: false, maxResults: this.o.listPageSize, pageToken, fields: 'kind,items(name,size),nextPageToken' }),
            signal,
          );
        } catch (e) {
          // A missing bucket lists as empty, as a missing directory does for the local backend.
          if (e instanceof CairnError && e.code === 'NOT_FOUND') return undefined;
          throw e;
        }
        // The SDK takes a body that is not JSON (a page cut short) for an empty page; a listing
        // that silently misses files must never be taken for the truth.
        if (!resp || typeof resp !== 'object' || (resp as { kind?: unknown }).kind !== 'storage#objects') {
          throw new BackendError(`cannot list ${type} files in ${this.location}: malformed listing response`, { object: `${type} files`, retryable: true });
        }
        return { files, next };
      }, signal);
      if (!page) return;
      const { files, next } = page;
      // With `fields` set the SDK hands back the raw items ({name, size}) instead of File objects.
      for (const f of files as unknown as Array<{ name: string; size?: string; metadata?: { size?: string | number } }>) {
        const name = nameFromKey(f.name);
        if (name) yield { name, size: this.sizeOf(f.metadata ?? f, `${type} files`) };
      }
      pageToken = (next as { pageToken?: string } | null | undefined)?.pageToken || undefined;
    } while (pageToken);
  }

  /**
   * The size from an object resource. The SDK hands a body that is not JSON (cut short) back as a
   * string instead of failing, so the shape is checked before anything is believed.
   */
  private sizeOf(meta: unknown, what: string): number {
    const size = (meta as { size?: unknown } | null)?.size;
    if (meta && typeof meta === 'object' && (typeof size === 'string' || typeof size === 'number') && /^\d+$/.test(String(size))) return Number(size);
    throw new BackendError(`cannot read the metadata of ${what} in ${this.location}: malformed response`, { object: what, retryable: true });
  }

  async remove(h: FileHandle): Promise<void> {
    const key = objectKey(this.prefix, h);
    await this.call('remove', describeHandle(h), () => this.bucket.file(key).delete());
  }

  async close(): Promise<void> {}

  private fail(e: unknown, op: string, what: string, wd?: StallWatchdog, outer?: AbortSignal): CairnError {
    if (e instanceof CairnError && !wd?.fired) return e;
    const where = `cannot ${op} ${what} in ${this.location}`;
    if (wd?.fired) return new BackendError(`${where}: no progress for ${this.o.stallTimeoutMs} ms`, { object: what, cause: e, retryable: true });
    if (outer?.aborted) return new CairnError('CANCELLED', `${where}: cancelled`, { object: what, cause: e });
    const err = e as GcsErrorLike | undefined;
    const status = statusOf(e);
    const reason = err?.errors?.find((x) => x?.reason)?.reason;
    const detail = `${status ? `HTTP ${status} ` : ''}${reason ? `${reason}: ` : ''}${firstLine(errorMessage(e))}`;
    if (status === 404) return new CairnError('NOT_FOUND', `${what} does not exist in ${this.location}`, { object: what, cause: e });
    if (status === 401 || status === 403) return new CairnError('PERMISSION', `${where}: access denied (${detail})`, { object: what, cause: e });
    if (status === 416) return new CairnError('CORRUPT', `${where}: range outside the file (${detail})`, { object: what, cause: e });
    const code = typeof err?.code === 'string' ? err.code : undefined;
    // FILE_NO_UPLOAD*: the checksum the service reported differs from what was sent (the SDK
    // removed the object); CONTENT_DOWNLOAD_MISMATCH: a download did not match x-goog-hash.
    // A RangeError from the resumable uploader: the session lost bytes; a new one starts clean.
    const retryable =
      status !== undefined
        ? isRetryableStatus(status)
        : code === 'FILE_NO_UPLOAD' ||
          code === 'FILE_NO_UPLOAD_DELETE' ||
          code === 'CONTENT_DOWNLOAD_MISMATCH' ||
          (e instanceof RangeError && /offset is lower/.test(errorMessage(e))) ||
          isRetryableNetworkError(e) ||
          isConnectionProblem(e);
    return new BackendError(`${where}: ${detail}`, {
      object: what,
      cause: e,
      status,
      retryable,
      retryAfterMs: parseRetryAfter(headerOf(err?.response?.headers, 'retry-after'), Date.now()),
    });
  }
}

/** Transport failures as the SDK's HTTP stacks (teeny-request/node-fetch, gaxios) report them. */
function isConnectionProblem(e: unknown): boolean {
  for (let cur = e, depth = 0; cur && typeof cur === 'object' && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const c = cur as { code?: unknown; type?: unknown; message?: unknown; errors?: Array<{ reason?: unknown }> };
    if (typeof c.code === 'string' && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|ESOCKETTIMEDOUT|EAI_AGAIN|ERR_STREAM_PREMATURE_CLOSE)$/i.test(c.code)) return true;
    if (c.type === 'request-timeout' || c.type === 'body-timeout' || c.type === 'system') return true;
    if (typeof c.message === 'string' && /socket hang up|premature close|ECONNRESET|network timeout|unexpected end|aborted/i.test(c.message)) return true;
    if (c.errors?.some((x) => typeof x?.reason === 'string' && /econnreset|epipe|eai_again|connection/i.test(x.reason))) return true;
  }
  return false;
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i >= 0 ? s.slice(0, i) : s).trim().slice(0, 500);
}
