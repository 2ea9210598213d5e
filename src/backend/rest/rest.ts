import { CairnError } from '../../core/errors.js';
import { isId } from '../../core/ids.js';
import { nullLogger, type Logger } from '../../core/logger.js';
import { mapLimit } from '../../core/semaphore.js';
import type { Backend, FileHandle, FileInfo, FileSource, FileType } from '../backend.js';
import { readBody } from '../body.js';
import { BackendError, describeHandle, isRetryableStatus, parseRetryAfter, stripCredentials } from '../errors.js';
import { HttpClient, drain, smallText, type HttpResponse } from '../http.js';
import { checkHandle, TYPE_DIRS } from '../layout.js';

/** API v2 lists files with their sizes; v1 (names only) is still understood. */
const V2 = 'application/vnd.x.restic.rest.v2';

export interface RestConfig {
  /** Repository URL (http or https), with or without user:password. */
  url: string;
  /** Basic-auth credentials; taken from the URL when absent there (RESTIC_REST_USERNAME/PASSWORD). */
  username?: string;
  password?: string;
  /** Requests in flight (restic's rest.connections, default 5). */
  connections?: number;
  caCerts?: Array<string | Buffer>;
  insecureSkipTLSVerify?: boolean;
  idleTimeoutMs?: number;
  /**
   * How long an interrupted upload is given to be cleaned up by the server before the same file
   * is sent again, and before a resent file is read back to confirm it (default 1000 ms).
   */
  interruptedUploadSettleMs?: number;
}

/** How often a file whose upload was interrupted is sent again before the save fails. */
const CONFIRM_ATTEMPTS = 3;

/**
 * restic's REST protocol (rest-server, `rclone serve restic`): `POST /?create=true`,
 * `HEAD|GET|POST /config`, `GET /{type}/` (v2: `[{"name","size"}]`), and
 * `HEAD|GET|POST|DELETE /{type}/{name}` with Range for partial reads. Packs are `data/<id>` on
 * the wire; the server keeps them in `data/XX/`.
 */
export class RestBackend implements Backend {
  readonly location: string;
  private readonly base: URL;
  private readonly auth?: string;
  private readonly http: HttpClient;
  private readonly logger: Logger;
  private readonly settleMs: number;
  /**
   * Paths whose last upload broke off mid-request. The server removes a partly written file when
   * it notices the broken connection (rclone serve restic, rest-server before 0.11 write in place),
   * which can be after a retry has already stored the file again: the retry's success is only
   * believed once the file reads back intact after that cleanup had time to happen.
   */
  private readonly interrupted = new Set<string>();

  constructor(cfg: RestConfig, opts: { logger?: Logger } = {}) {
    let u: URL;
    try {
      u = new URL(cfg.url);
    } catch {
      throw new CairnError('INVALID_ARGUMENT', `rest: invalid URL ${JSON.stringify(stripCredentials(cfg.url))}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CairnError('INVALID_ARGUMENT', `rest: URL must start with http:// or https://, got ${u.protocol}`);
    const user = cfg.username ?? decodeURIComponent(u.username);
    const pass = cfg.password ?? decodeURIComponent(u.password);
    u.username = '';
    u.password = '';
    if (!u.pathname.endsWith('/')) u.pathname += '/';
    u.search = '';
    u.hash = '';
    this.base = u;
    if (user || pass) this.auth = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
    this.location = `rest:${u.toString()}`;
    this.logger = (opts.logger ?? nullLogger).child({ backend: 'rest' });
    this.settleMs = cfg.interruptedUploadSettleMs ?? 1000;
    this.http = new HttpClient({ maxSockets: cfg.connections ?? 5, caCerts: cfg.caCerts, insecureSkipTLSVerify: cfg.insecureSkipTLSVerify, idleTimeoutMs: cfg.idleTimeoutMs });
  }

  private url(rel: string): URL {
    return new URL(rel, this.base);
  }

  private pathOf(h: FileHandle): string {
    checkHandle(h);
    return h.type === 'config' ? 'config' : `${TYPE_DIRS[h.type]}/${h.name}`;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { Accept: V2, ...extra };
    if (this.auth) h.Authorization = this.auth;
    return h;
  }

  private async send(method: string, rel: string, what: string, extra?: Record<string, string>, body?: Uint8Array | FileSource, signal?: AbortSignal): Promise<HttpResponse> {
    try {
      return await this.http.request(method, this.url(rel), this.headers(extra), body, signal);
    } catch (e) {
      if (e instanceof BackendError) throw new BackendError(`${method} ${what} at ${this.location}: ${e.message}`, { object: what, cause: e.cause ?? e, retryable: e.retryable });
      throw e;
    }
  }

  /** Turns a non-success response into the matching error (and frees the socket). */
  private async fail(res: HttpResponse, what: string, op: string): Promise<never> {
    const text = res.body.readableEnded ? '' : await smallText(res, 512);
    const detail = text ? `: ${text.split('\n')[0]}` : '';
    if (res.status === 404) throw new CairnError('NOT_FOUND', `${what} does not exist in ${this.location}`, { object: what });
    if (res.status === 401 || res.status === 403) {
      throw new CairnError('PERMISSION', `cannot ${op} ${what} in ${this.location}: HTTP ${res.status}${detail}; check the user name and password`, { object: what });
    }
    if (res.status === 416) throw new CairnError('CORRUPT', `cannot ${op} ${what}: requested range is beyond the end of the file`, { object: what });
    throw new BackendError(`cannot ${op} ${what} in ${this.location}: HTTP ${res.status}${detail}`, {
      object: what,
      status: res.status,
      retryable: isRetryableStatus(res.status),
      retryAfterMs: parseRetryAfter(res.headers['retry-after'], Date.now()),
    });
  }

  async create(): Promise<void> {
    let exists = true;
    try {
      await this.stat({ type: 'config', name: 'config' });
    } catch (e) {
      if (!(e instanceof CairnError && e.code === 'NOT_FOUND')) throw e;
      exists = false;
    }
    if (exists) throw new CairnError('REPO_EXISTS', `repository ${this.location} already exists (config file present)`, { object: this.location });
    const res = await this.send('POST', '?create=true', 'repository');
    if (res.status !== 200 && res.status !== 201) await this.fail(res, 'repository', 'create');
    drain(res);
  }

  async save(h: FileHandle, data: Uint8Array): Promise<void> {
    await this.post(h, data, data.length, async () => Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  /** One POST whose body is streamed from the file (the protocol has no multipart uploads). */
  async saveFile(h: FileHandle, src: FileSource): Promise<void> {
    await this.post(h, src, src.size, async () => {
      const parts: Buffer[] = [];
      for await (const c of src.stream()) parts.push(c as Buffer);
      return Buffer.concat(parts);
    });
  }

  private async post(h: FileHandle, body: Uint8Array | FileSource, size: number, bytes: () => Promise<Buffer>): Promise<void> {
    const path = this.pathOf(h);
    const resent = this.interrupted.has(path);
    await this.postOnce(h, path, body, size, bytes);
    if (resent) await this.confirmResent(h, path, body, size, bytes);
    this.interrupted.delete(path);
  }

  private async postOnce(h: FileHandle, path: string, body: Uint8Array | FileSource, size: number, bytes: () => Promise<Buffer>): Promise<void> {
    const what = describeHandle(h);
    let res: HttpResponse;
    try {
      res = await this.send('POST', path, what, { 'Content-Type': 'application/octet-stream' }, body);
    } catch (e) {
      this.interrupted.add(path);
      // the next attempt waits until the server has had time to clean up after this one
      if (e instanceof BackendError && e.retryable) throw new BackendError(e.message, { object: what, cause: e.cause ?? e, retryable: true, retryAfterMs: Math.max(e.retryAfterMs ?? 0, this.settleMs) });
      throw e;
    }
    if (res.status >= 200 && res.status < 300) {
      drain(res);
      return;
    }
    if (res.status === 403) {
      // rest-server refuses to overwrite (and append-only servers answer 403 too): the file may be
      // there already from an attempt whose answer was lost. Same name = same content (hash).
      drain(res);
      if (await this.sameFileThere(h, size, bytes)) return;
      return this.fail(res, what, 'save');
    }
    return this.fail(res, what, 'save');
  }

  /**
   * After a save that follows an interrupted one: waits for the server's clean-up of the broken
   * request, then reads the file back; sends it again while it is missing or differs.
   */
  private async confirmResent(h: FileHandle, path: string, body: Uint8Array | FileSource, size: number, bytes: () => Promise<Buffer>): Promise<void> {
    const what = describeHandle(h);
    const expected = await bytes();
    for (let attempt = 1; attempt <= CONFIRM_ATTEMPTS; attempt++) {
      await new Promise((r) => setTimeout(r, this.settleMs));
      let stored: Buffer | undefined;
      try {
        stored = await this.load(h);
      } catch (e) {
        if (!(e instanceof CairnError && e.code === 'NOT_FOUND')) throw e;
      }
      if (stored?.equals(expected)) return;
      this.logger.warn('file sent again after an interrupted upload', { object: what, found: stored ? `${stored.length} other bytes` : 'nothing', attempt });
      if (stored) await this.remove(h);
      await this.postOnce(h, path, body, size, bytes);
    }
    throw new BackendError(`save ${what} at ${this.location}: the file did not stay in place after an interrupted upload (${CONFIRM_ATTEMPTS} attempts)`, { object: what, retryable: true, retryAfterMs: this.settleMs });
  }

  private async sameFileThere(h: FileHandle, size: number, bytes: () => Promise<Buffer>): Promise<boolean> {
    try {
      if (h.type === 'config') return (await this.load(h)).equals(await bytes());
      return (await this.stat(h)).size === size;
    } catch (e) {
      if (e instanceof CairnError && e.code === 'NOT_FOUND') return false;
      throw e;
    }
  }

  async load(h: FileHandle, offset = 0, length?: number, into?: Buffer): Promise<Buffer> {
    const what = describeHandle(h);
    if (offset < 0 || (length !== undefined && length < 0)) throw new CairnError('INVALID_ARGUMENT', `${what}: invalid range ${offset}+${length}`);
    if (length === 0) {
      await this.stat(h);
      return Buffer.alloc(0);
    }
    const extra: Record<string, string> = {};
    if (length !== undefined) extra.Range = `bytes=${offset}-${offset + length - 1}`;
    else if (offset > 0) extra.Range = `bytes=${offset}-`;
    const res = await this.send('GET', this.pathOf(h), what, extra);
    if (res.status !== 200 && res.status !== 206) return this.fail(res, what, 'load');
    const announced = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
    const idle = this.http.idleTimeoutMs;
    if (extra.Range && res.status === 200) {
      // no range support on the server: read everything and cut the range out
      const whole = await readBody(res.body, announced, what, idle);
      if (length !== undefined && offset + length > whole.length) {
        throw new CairnError('CORRUPT', `${what}: file has ${whole.length} bytes, cannot read ${length} at offset ${offset}`, { object: what });
      }
      return whole.subarray(offset, length !== undefined ? offset + length : undefined);
    }
    const total = /\/(\d+)\s*$/.exec(String(res.headers['content-range'] ?? ''));
    if (length !== undefined && total && offset + length > Number(total[1])) {
      drain(res);
      throw new CairnError('CORRUPT', `${what}: file has ${total[1]} bytes, cannot read ${length} at offset ${offset}`, { object: what });
    }
    const expected = announced ?? length;
    if (length !== undefined && expected !== length) {
      res.body.destroy();
      throw new BackendError(`${what}: server announced ${expected} bytes for a ${length}-byte range`, { object: what, retryable: true });
    }
    return readBody(res.body, expected, what, idle, undefined, into);
  }

  async stat(h: FileHandle): Promise<FileInfo> {
    const what = describeHandle(h);
    const res = await this.send('HEAD', this.pathOf(h), what);
    if (res.status !== 200) return this.fail(res, what, 'stat');
    drain(res);
    const len = Number(res.headers['content-length']);
    if (!Number.isFinite(len)) throw new BackendError(`stat ${what}: no Content-Length in the answer`, { object: what, retryable: true });
    return { name: h.name, size: len };
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
    const rel = `${TYPE_DIRS[type]}/`;
    const res = await this.send('GET', rel, type, {}, undefined, signal);
    // a repository without this folder yet lists as empty (rest-server answers 404 then)
    if (res.status === 404) {
      drain(res);
      return;
    }
    if (res.status !== 200) await this.fail(res, type, 'list');
    const v2 = String(res.headers['content-type'] ?? '').includes(V2);
    const raw = await readBody(res.body, undefined, `list ${type}`, this.http.idleTimeoutMs, 512 << 20);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      // a cut-off JSON array is a transport problem, not a server bug: try again
      throw new BackendError(`list ${type} at ${this.location}: invalid JSON answer (${raw.length} bytes)`, { object: type, cause: e, retryable: true });
    }
    if (!Array.isArray(parsed)) throw new BackendError(`list ${type} at ${this.location}: expected a JSON array`, { object: type });
    if (v2) {
      for (const item of parsed as Array<{ name?: unknown; size?: unknown }>) {
        signal?.throwIfAborted();
        if (typeof item?.name === 'string' && isId(item.name)) yield { name: item.name, size: Number(item.size) };
      }
      return;
    }
    // v1: names only; sizes need a HEAD each (like restic), a few at a time
    const names = (parsed as unknown[]).filter((n): n is string => typeof n === 'string' && isId(n));
    this.logger.debug('REST server speaks API v1 only; stat-ing every listed file', { type, files: names.length });
    for (let i = 0; i < names.length; i += 64) {
      signal?.throwIfAborted();
      const batch = await mapLimit(names.slice(i, i + 64), 4, async (name) => {
        try {
          return await this.stat({ type, name });
        } catch (e) {
          if (e instanceof CairnError && e.code === 'NOT_FOUND') return undefined; // removed meanwhile
          throw e;
        }
      });
      for (const f of batch) if (f) yield f;
    }
  }

  async remove(h: FileHandle): Promise<void> {
    const what = describeHandle(h);
    const res = await this.send('DELETE', this.pathOf(h), what);
    if (res.status < 200 || res.status >= 300) return this.fail(res, what, 'remove');
    drain(res);
  }

  async close(): Promise<void> {
    this.http.close();
  }
}
