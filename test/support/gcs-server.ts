/**
 * A Google Cloud Storage JSON-API test server on node:http (loopback, free port), faithful to what
 * @google-cloud/storage 7.x sends (shared/spec/test-servers.md §3c): buckets, multipart/media and
 * resumable uploads (one request, or chunks acknowledged with 308 + Range, resume queries,
 * interrupted requests keeping whole 256 KiB units), ranged media downloads, metadata, paginated
 * listing, deletes, generation/metageneration preconditions, object resources with string sizes,
 * md5Hash and crc32c, and error bodies shaped like the real service's.
 *
 * What it cannot do it rejects (matchGlob, unknown upload types) instead of answering wrongly.
 * Paths are served both under /storage/v1 (apiEndpoint) and without it (STORAGE_EMULATOR_HOST).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

const GRANULE = 256 * 1024;

// ---------------------------------------------------------------- CRC32C (Castagnoli)

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C of data, as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC32C_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** The form GCS uses in resources and x-goog-hash: base64 of the big-endian 4 bytes. */
export function crc32cBase64(data: Uint8Array): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32c(data));
  return b.toString('base64');
}

function md5Base64(data: Uint8Array): string {
  return createHash('md5').update(data).digest('base64');
}

// ---------------------------------------------------------------- model

interface StoredObject {
  name: string;
  data: Buffer;
  generation: bigint;
  metageneration: bigint;
  contentType: string;
  metadata?: Record<string, string>;
  md5: string;
  crc: string;
  created: Date;
  updated: Date;
}

interface StoredBucket {
  name: string;
  created: Date;
  metageneration: bigint;
  objects: Map<string, StoredObject>;
}

interface Preconditions {
  ifGenerationMatch?: bigint;
  ifGenerationNotMatch?: bigint;
  ifMetagenerationMatch?: bigint;
  ifMetagenerationNotMatch?: bigint;
}

interface UploadSession {
  id: string;
  bucket: string;
  name: string;
  resource: Record<string, unknown>;
  contentType: string;
  conditions: Preconditions;
  /** Total size announced at start (X-Upload-Content-Length) or in a Content-Range. */
  total?: number;
  parts: Buffer[];
  size: number;
  done?: StoredObject;
  failed?: { status: number; reason: string; message: string };
}

export interface LoggedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  status?: number;
  /** Bytes of request body received (for uploads). */
  bodyBytes: number;
}

export interface GcsTestServer {
  /** e.g. http://127.0.0.1:41234 — pass as `apiEndpoint` (or STORAGE_EMULATOR_HOST). */
  readonly url: string;
  readonly port: number;
  /** Every request served, oldest first (for tests that assert on the wire). */
  readonly requests: LoggedRequest[];
  createBucket(name: string): void;
  /** The bytes of an object, or undefined. */
  getObject(bucket: string, name: string): Buffer | undefined;
  /** Object names of a bucket, sorted. */
  listObjects(bucket: string): string[];
  /** Puts an object directly (bypassing the API), e.g. to set up a conflict. */
  putObject(bucket: string, name: string, data: Uint8Array): void;
  /** Removes a bucket and everything in it (test cleanup; frees the memory). */
  dropBucket(name: string): void;
  /** Open resumable sessions (not yet finalised). */
  openSessions(): number;
  stop(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }
}

const notFoundBucket = () => new HttpError(404, 'notFound', 'The specified bucket does not exist.');
const notFoundObject = (b: string, n: string) => new HttpError(404, 'notFound', `No such object: ${b}/${n}`);
const preconditionFailed = () =>
  new HttpError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.', { locationType: 'header', location: 'If-Match' });
const invalid = (msg: string) => new HttpError(400, 'invalid', msg);

function parseConditions(q: URLSearchParams): Preconditions {
  const out: Preconditions = {};
  for (const k of ['ifGenerationMatch', 'ifGenerationNotMatch', 'ifMetagenerationMatch', 'ifMetagenerationNotMatch'] as const) {
    const v = q.get(k);
    if (v === null) continue;
    if (!/^-?\d+$/.test(v)) throw invalid(`Invalid value for ${k}: ${v}`);
    out[k] = BigInt(v);
  }
  return out;
}

function checkConditions(c: Preconditions, obj: StoredObject | undefined): void {
  const gen = obj ? obj.generation : 0n;
  if (c.ifGenerationMatch !== undefined && c.ifGenerationMatch !== gen) throw preconditionFailed();
  if (c.ifGenerationNotMatch !== undefined && c.ifGenerationNotMatch === gen) throw preconditionFailed();
  if (c.ifMetagenerationMatch !== undefined && (!obj || c.ifMetagenerationMatch !== obj.metageneration)) throw preconditionFailed();
  if (c.ifMetagenerationNotMatch !== undefined && obj && c.ifMetagenerationNotMatch === obj.metageneration) throw preconditionFailed();
}

// ---------------------------------------------------------------- server

export async function startGcsServer(opts: { host?: string; port?: number } = {}): Promise<GcsTestServer> {
  const host = opts.host ?? '127.0.0.1';
  const buckets = new Map<string, StoredBucket>();
  const sessions = new Map<string, UploadSession>();
  const requests: LoggedRequest[] = [];
  let lastGeneration = BigInt(Date.now()) * 1000n;
  const nextGeneration = (): bigint => {
    const now = BigInt(Date.now()) * 1000n;
    lastGeneration = now > lastGeneration ? now : lastGeneration + 1n;
    return lastGeneration;
  };

  const getBucket = (name: string): StoredBucket => {
    const b = buckets.get(name);
    if (!b) throw notFoundBucket();
    return b;
  };

  const makeBucket = (name: string): StoredBucket => {
    const b: StoredBucket = { name, created: new Date(), metageneration: 1n, objects: new Map() };
    buckets.set(name, b);
    return b;
  };

  const store = (bucket: StoredBucket, name: string, data: Buffer, contentType: string, metadata?: Record<string, string>): StoredObject => {
    const now = new Date();
    const obj: StoredObject = {
      name,
      data,
      generation: nextGeneration(),
      metageneration: 1n,
      contentType,
      metadata,
      md5: md5Base64(data),
      crc: crc32cBase64(data),
      created: now,
      updated: now,
    };
    bucket.objects.set(name, obj);
    return obj;
  };

  const server = http.createServer((req, res) => {
    const entry: LoggedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes: 0 };
    requests.push(entry);
    handle(req, res, entry).catch((e: unknown) => {
      // Answer without waiting for an unread body; Node discards the rest of it.
      req.resume();
      if (e instanceof HttpError) sendError(res, entry, e);
      else sendError(res, entry, new HttpError(500, 'backendError', `internal error: ${(e as Error)?.message ?? String(e)}`));
    });
  });
  // Idle keep-alive sockets stay open for the whole test run: a server closing one just as the
  // client reuses it resets that request (ECONNRESET), which the checks that use a backend
  // without the retry layer would report as a failure (resets are tested through the fault proxy).
  server.keepAliveTimeout = 120_000;

  function baseUrl(req: http.IncomingMessage): string {
    return `http://${req.headers.host ?? `${host}:${port}`}`;
  }

  function send(res: http.ServerResponse, entry: LoggedRequest, status: number, body?: unknown, headers: Record<string, string> = {}): void {
    entry.status = status;
    if (res.headersSent || res.destroyed) return;
    if (body === undefined) {
      res.writeHead(status, { 'Content-Length': '0', ...headers });
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  }

  function sendError(res: http.ServerResponse, entry: LoggedRequest, e: HttpError): void {
    send(res, entry, e.status, {
      error: { code: e.status, message: e.message, errors: [{ message: e.message, domain: 'global', reason: e.reason, ...e.extra }] },
    });
  }

  function objectResource(req: http.IncomingMessage, bucket: string, o: StoredObject): Record<string, unknown> {
    const enc = encodeURIComponent(o.name);
    const r: Record<string, unknown> = {
      kind: 'storage#object',
      id: `${bucket}/${o.name}/${o.generation}`,
      selfLink: `${baseUrl(req)}/storage/v1/b/${bucket}/o/${enc}`,
      mediaLink: `${baseUrl(req)}/download/storage/v1/b/${bucket}/o/${enc}?generation=${o.generation}&alt=media`,
      name: o.name,
      bucket,
      generation: String(o.generation),
      metageneration: String(o.metageneration),
      contentType: o.contentType,
      storageClass: 'STANDARD',
      size: String(o.data.length),
      md5Hash: o.md5,
      crc32c: o.crc,
      etag: etagOf(o),
      timeCreated: o.created.toISOString(),
      updated: o.updated.toISOString(),
      timeStorageClassUpdated: o.created.toISOString(),
      timeFinalized: o.created.toISOString(),
    };
    if (o.metadata && Object.keys(o.metadata).length > 0) r.metadata = o.metadata;
    return r;
  }

  function bucketResource(b: StoredBucket): Record<string, unknown> {
    return {
      kind: 'storage#bucket',
      id: b.name,
      name: b.name,
      projectNumber: '123456789012',
      metageneration: String(b.metageneration),
      location: 'US',
      locationType: 'multi-region',
      storageClass: 'STANDARD',
      etag: 'CAE=',
      timeCreated: b.created.toISOString(),
      updated: b.created.toISOString(),
    };
  }

  async function readBody(req: http.IncomingMessage, entry: LoggedRequest, limit = 1 << 30): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of req) {
      n += (chunk as Buffer).length;
      entry.bodyBytes = n;
      if (n > limit) throw new HttpError(413, 'uploadTooLarge', 'Request body too large for the test server');
      parts.push(chunk as Buffer);
    }
    return Buffer.concat(parts);
  }

  async function readJson(req: http.IncomingMessage, entry: LoggedRequest): Promise<Record<string, unknown>> {
    const body = await readBody(req, entry, 1 << 20);
    if (body.length === 0) return {};
    try {
      const v = JSON.parse(body.toString('utf8'));
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      return v as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'parseError', 'Parse Error');
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, entry: LoggedRequest): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    let path = url.pathname;
    const method = req.method ?? 'GET';

    if (path.startsWith('/upload/storage/v1/b/')) return handleUpload(req, res, entry, path.slice('/upload/storage/v1/b/'.length), q);
    if (path.startsWith('/download/storage/v1/')) path = path.slice('/download'.length);
    if (path.startsWith('/storage/v1/')) path = path.slice('/storage/v1'.length);
    const seg = path.split('/').slice(1); // ['b', bucket, 'o', name, ...]
    if (seg[0] !== 'b') throw new HttpError(404, 'notFound', `Not Found: ${url.pathname}`);

    if (seg.length === 1 || (seg.length === 2 && seg[1] === '')) {
      if (method === 'POST') {
        const body = await readJson(req, entry);
        if (!q.get('project')) throw new HttpError(400, 'required', 'Required parameter: project');
        const name = body.name;
        if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(name)) throw invalid('Invalid bucket name');
        if (buckets.has(name)) {
          throw new HttpError(409, 'conflict', 'Your previous request to create the named bucket succeeded and you already own it.');
        }
        return send(res, entry, 200, bucketResource(makeBucket(name)));
      }
      if (method === 'GET') {
        await readBody(req, entry);
        const items = [...buckets.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(bucketResource);
        return send(res, entry, 200, items.length ? { kind: 'storage#buckets', items } : { kind: 'storage#buckets' });
      }
      throw new HttpError(405, 'methodNotAllowed', 'Method not allowed');
    }

    const bucketName = decodeURIComponent(seg[1]);
    if (seg.length === 2) {
      await readBody(req, entry);
      const b = getBucket(bucketName);
      if (method === 'GET') return send(res, entry, 200, bucketResource(b));
      if (method === 'DELETE') {
        if (b.objects.size > 0) throw new HttpError(409, 'conflict', 'The bucket you tried to delete is not empty.');
        buckets.delete(bucketName);
        return send(res, entry, 204);
      }
      throw new HttpError(405, 'methodNotAllowed', 'Method not allowed');
    }
    if (seg[2] !== 'o') throw new HttpError(404, 'notFound', `Not Found: ${url.pathname}`);
    if (seg.length === 3 || (seg.length === 4 && seg[3] === '')) {
      await readBody(req, entry);
      if (method === 'GET') return list(req, res, entry, getBucket(bucketName), q);
      throw new HttpError(405, 'methodNotAllowed', 'Method not allowed');
    }
    const objectName = decodeURIComponent(seg[3]);
    if (seg.length > 4) {
      // POST …/o/N/rewriteTo/b/B2/o/N2 (and copyTo, same shape)
      if (method === 'POST' && (seg[4] === 'rewriteTo' || seg[4] === 'copyTo') && seg[5] === 'b' && seg[7] === 'o' && seg.length === 9) {
        const body = await readJson(req, entry);
        const src = getBucket(bucketName);
        const o = src.objects.get(objectName);
        if (!o) throw notFoundObject(bucketName, objectName);
        const dstBucketName = decodeURIComponent(seg[6]);
        const dst = getBucket(dstBucketName);
        const dstName = decodeURIComponent(seg[8]);
        checkConditions(parseConditions(q), dst.objects.get(dstName));
        const meta = (body.metadata as Record<string, string> | undefined) ?? o.metadata;
        const copy = store(dst, dstName, o.data, typeof body.contentType === 'string' ? body.contentType : o.contentType, meta);
        const resource = objectResource(req, dstBucketName, copy);
        if (seg[4] === 'copyTo') return send(res, entry, 200, resource);
        return send(res, entry, 200, {
          kind: 'storage#rewriteResponse',
          totalBytesRewritten: String(o.data.length),
          objectSize: String(o.data.length),
          done: true,
          resource,
        });
      }
      throw new HttpError(404, 'notFound', `Not Found: ${url.pathname}`);
    }

    const b = getBucket(bucketName);
    const o = b.objects.get(objectName);
    if (method === 'GET') {
      await readBody(req, entry);
      if (!o) throw notFoundObject(bucketName, objectName);
      const gen = q.get('generation');
      if (gen !== null && gen !== String(o.generation)) throw notFoundObject(bucketName, objectName);
      checkConditions(parseConditions(q), o);
      if (q.get('alt') === 'media') return media(req, res, entry, o);
      return send(res, entry, 200, objectResource(req, bucketName, o));
    }
    if (method === 'DELETE') {
      await readBody(req, entry);
      if (!o) throw notFoundObject(bucketName, objectName);
      checkConditions(parseConditions(q), o);
      b.objects.delete(objectName);
      return send(res, entry, 204);
    }
    if (method === 'PATCH' || method === 'PUT') {
      const body = await readJson(req, entry);
      if (!o) throw notFoundObject(bucketName, objectName);
      checkConditions(parseConditions(q), o);
      if (typeof body.contentType === 'string') o.contentType = body.contentType;
      if (body.metadata === null) o.metadata = undefined;
      else if (body.metadata && typeof body.metadata === 'object') {
        const m: Record<string, string> = method === 'PATCH' ? { ...(o.metadata ?? {}) } : {};
        for (const [k, v] of Object.entries(body.metadata as Record<string, unknown>)) {
          if (v === null) delete m[k];
          else m[k] = String(v);
        }
        o.metadata = m;
      }
      o.metageneration += 1n;
      o.updated = new Date();
      return send(res, entry, 200, objectResource(req, bucketName, o));
    }
    throw new HttpError(405, 'methodNotAllowed', 'Method not allowed');
  }

  function media(req: http.IncomingMessage, res: http.ServerResponse, entry: LoggedRequest, o: StoredObject): void {
    const size = o.data.length;
    const headers: Record<string, string> = {
      'Content-Type': o.contentType,
      'X-Goog-Generation': String(o.generation),
      'X-Goog-Metageneration': String(o.metageneration),
      'X-Goog-Stored-Content-Encoding': 'identity',
      'X-Goog-Stored-Content-Length': String(size),
      'X-Goog-Hash': `crc32c=${o.crc},md5=${o.md5}`,
      ETag: etagOf(o),
      'Last-Modified': o.updated.toUTCString(),
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-cache, no-store, max-age=0, must-revalidate',
    };
    const range = req.headers.range;
    let start = 0;
    let end = size - 1;
    let partial = false;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      // A Range header GCS cannot parse is ignored (whole object), as HTTP says.
      if (m && (m[1] !== '' || m[2] !== '')) {
        if (m[1] === '') {
          const n = Number(m[2]);
          if (n === 0) throw new HttpError(416, 'requestedRangeNotSatisfiable', 'Request range not satisfiable');
          start = Math.max(0, size - n);
        } else {
          start = Number(m[1]);
          if (m[2] !== '') end = Math.min(end, Number(m[2]));
          if (m[2] !== '' && Number(m[2]) < start) {
            // syntactically invalid range: ignored
            start = 0;
            end = size - 1;
          } else if (start >= size) {
            entry.status = 416;
            res.writeHead(416, { 'Content-Range': `bytes */${size}`, 'Content-Type': 'application/json; charset=UTF-8' });
            res.end(
              JSON.stringify({
                error: {
                  code: 416,
                  message: 'Request range not satisfiable',
                  errors: [{ message: 'Request range not satisfiable', domain: 'global', reason: 'requestedRangeNotSatisfiable' }],
                },
              }),
            );
            return;
          }
        }
        partial = true;
      }
    }
    const body = o.data.subarray(start, end + 1);
    headers['Content-Length'] = String(body.length);
    if (partial) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    entry.status = partial ? 206 : 200;
    res.writeHead(entry.status, headers);
    res.end(body);
  }

  function list(req: http.IncomingMessage, res: http.ServerResponse, entry: LoggedRequest, b: StoredBucket, q: URLSearchParams): void {
    if (q.get('matchGlob') !== null) throw new HttpError(400, 'invalid', 'matchGlob is not supported by this test server');
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const startOffset = q.get('startOffset') ?? '';
    const endOffset = q.get('endOffset') ?? '';
    const includeTrailing = q.get('includeTrailingDelimiter') === 'true';
    let max = 1000;
    const mr = q.get('maxResults');
    if (mr !== null) {
      if (!/^\d+$/.test(mr)) throw invalid(`Invalid value for maxResults: ${mr}`);
      max = Math.min(1000, Number(mr));
      if (max === 0) max = 1000;
    }
    let after = '';
    const token = q.get('pageToken');
    if (token) {
      try {
        after = Buffer.from(token, 'base64url').toString('utf8');
      } catch {
        throw invalid('Invalid pageToken');
      }
      if (!after.startsWith('n:')) throw invalid('Invalid pageToken');
      after = after.slice(2);
    }
    const names = [...b.objects.keys()].sort(compareNames);
    const items: StoredObject[] = [];
    const prefixes: string[] = [];
    const seen = new Set<string>();
    let last = '';
    let more = false;
    for (const name of names) {
      if (!name.startsWith(prefix)) continue;
      if (startOffset && compareNames(name, startOffset) < 0) continue;
      if (endOffset && compareNames(name, endOffset) >= 0) continue;
      let entryKey = name;
      let isPrefix = false;
      if (delimiter) {
        const i = name.indexOf(delimiter, prefix.length);
        if (i >= 0) {
          entryKey = name.slice(0, i + delimiter.length);
          isPrefix = true;
        }
      }
      if (after && compareNames(entryKey, after) <= 0) continue;
      if (isPrefix && seen.has(entryKey)) continue;
      if (items.length + prefixes.length >= max) {
        more = true;
        break;
      }
      if (isPrefix) {
        seen.add(entryKey);
        prefixes.push(entryKey);
        if (includeTrailing) {
          const o = b.objects.get(entryKey);
          if (o) items.push(o);
        }
      } else {
        items.push(b.objects.get(name)!);
      }
      last = entryKey;
    }
    const out: Record<string, unknown> = { kind: 'storage#objects' };
    if (more) out.nextPageToken = Buffer.from(`n:${last}`).toString('base64url');
    if (prefixes.length) out.prefixes = prefixes;
    if (items.length) out.items = items.map((o) => objectResource(req, b.name, o));
    send(res, entry, 200, out);
  }

  async function handleUpload(req: http.IncomingMessage, res: http.ServerResponse, entry: LoggedRequest, rest: string, q: URLSearchParams): Promise<void> {
    const method = req.method ?? '';
    const seg = rest.split('/'); // [bucket, 'o']
    if (seg.length !== 2 || seg[1] !== 'o') throw new HttpError(404, 'notFound', 'Not Found');
    const bucketName = decodeURIComponent(seg[0]);
    const uploadId = q.get('upload_id');
    if (uploadId !== null) return resumablePut(req, res, entry, uploadId);
    if (method !== 'POST') throw new HttpError(405, 'methodNotAllowed', 'Method not allowed');
    const b = getBucket(bucketName);
    const conditions = parseConditions(q);
    const uploadType = q.get('uploadType');

    if (uploadType === 'multipart') {
      const ct = req.headers['content-type'] ?? '';
      const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(ct);
      if (!/^multipart\/related/i.test(ct) || !m) throw invalid('Content-Type must be multipart/related with a boundary');
      const body = await readBody(req, entry);
      const parts = parseMultipart(body, m[1] ?? m[2]);
      if (parts.length !== 2) throw invalid(`Multipart upload needs 2 parts, got ${parts.length}`);
      let meta: Record<string, unknown>;
      try {
        meta = JSON.parse(parts[0].body.toString('utf8'));
      } catch {
        throw new HttpError(400, 'parseError', 'Parse Error');
      }
      const name = q.get('name') ?? (typeof meta.name === 'string' ? meta.name : undefined);
      if (!name) throw new HttpError(400, 'required', 'Required');
      const data = parts[1].body;
      verifyDeclaredHashes(meta, data, undefined);
      checkConditions(conditions, b.objects.get(name));
      const contentType = typeof meta.contentType === 'string' ? meta.contentType : (parts[1].headers['content-type'] ?? 'application/octet-stream');
      const o = store(b, name, data, contentType, metadataOf(meta));
      return send(res, entry, 200, objectResource(req, bucketName, o));
    }
    if (uploadType === 'media') {
      const name = q.get('name');
      if (!name) throw new HttpError(400, 'required', 'Required');
      const data = await readBody(req, entry);
      checkConditions(conditions, b.objects.get(name));
      const o = store(b, name, data, req.headers['content-type'] ?? 'application/octet-stream');
      return send(res, entry, 200, objectResource(req, bucketName, o));
    }
    if (uploadType === 'resumable') {
      const meta = await readJson(req, entry);
      const name = q.get('name') ?? (typeof meta.name === 'string' ? meta.name : undefined);
      if (!name) throw new HttpError(400, 'required', 'Required');
      // The service checks preconditions when the session starts and again when it completes.
      checkConditions(conditions, b.objects.get(name));
      const xlen = req.headers['x-upload-content-length'];
      let total: number | undefined;
      if (typeof xlen === 'string') {
        if (!/^\d+$/.test(xlen)) throw invalid('Invalid X-Upload-Content-Length');
        total = Number(xlen);
      }
      const id = randomBytes(16).toString('hex');
      const contentType =
        (typeof req.headers['x-upload-content-type'] === 'string' ? req.headers['x-upload-content-type'] : undefined) ??
        (typeof meta.contentType === 'string' ? meta.contentType : 'application/octet-stream');
      sessions.set(id, { id, bucket: bucketName, name, resource: meta, contentType, conditions, total, parts: [], size: 0 });
      const location = `${baseUrl(req)}/upload/storage/v1/b/${encodeURIComponent(bucketName)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
      return send(res, entry, 200, undefined, { Location: location, 'X-GUploader-UploadID': id });
    }
    throw invalid(`Invalid upload type: ${uploadType}`);
  }

  async function resumablePut(req: http.IncomingMessage, res: http.ServerResponse, entry: LoggedRequest, id: string): Promise<void> {
    const s = sessions.get(id);
    const method = req.method ?? '';
    if (!s) {
      await readBody(req, entry).catch(() => undefined);
      throw new HttpError(404, 'notFound', 'No such upload session');
    }
    if (method === 'DELETE') {
      await readBody(req, entry);
      sessions.delete(id);
      entry.status = 499;
      res.writeHead(499, { 'Content-Length': '0' });
      res.end();
      return;
    }
    if (method !== 'PUT' && method !== 'POST') throw new HttpError(405, 'methodNotAllowed', 'Method not allowed');
    const cr = (req.headers['content-range'] ?? '').trim();
    // Forms: "bytes */TOTAL|*" (status query), "bytes A-B/TOTAL|*" (a chunk), "bytes A-*/TOTAL|*"
    // (the rest of the data in this request; what the SDK sends without chunkSize).
    const mq = /^bytes \*\/(\d+|\*)$/.exec(cr);
    const mc = /^bytes (\d+)-(\d+|\*)\/(\d+|\*)$/.exec(cr);
    if (cr && !mq && !mc) {
      await readBody(req, entry);
      throw invalid(`Failed to parse Content-Range header: ${cr}`);
    }
    const replyState = (): void => {
      if (s.failed) throw new HttpError(s.failed.status, s.failed.reason, s.failed.message);
      if (s.done) return send(res, entry, 200, objectResource(req, s.bucket, s.done));
      send(res, entry, 308, undefined, s.size > 0 ? { Range: `bytes=0-${s.size - 1}` } : {});
    };
    if (s.done || s.failed) {
      await readBody(req, entry);
      return replyState();
    }
    if (mq || !cr) {
      const body = await readBody(req, entry);
      if (!cr) {
        // No Content-Range: the body is the whole object in one go.
        s.parts = [body];
        s.size = body.length;
        s.total = body.length;
        return finalize(req, res, entry, s);
      }
      if (body.length > 0) throw invalid('A status query must not have a body');
      const total = mq![1] === '*' ? undefined : Number(mq![1]);
      if (total !== undefined) {
        if (s.total !== undefined && s.total !== total) throw invalid('Content-Range total does not match the upload');
        s.total = total;
        // All bytes were received but the final answer got lost: the query completes it.
        if (s.size === total) return finalize(req, res, entry, s);
      }
      return replyState();
    }

    const start = Number(mc![1]);
    const declaredEnd = mc![2] === '*' ? undefined : Number(mc![2]);
    const total = mc![3] === '*' ? undefined : Number(mc![3]);
    if (total !== undefined) {
      if (s.total !== undefined && s.total !== total) {
        await readBody(req, entry).catch(() => undefined);
        throw invalid('Content-Range total does not match the upload');
      }
    }
    if (declaredEnd !== undefined && declaredEnd < start) {
      await readBody(req, entry).catch(() => undefined);
      throw invalid(`Failed to parse Content-Range header: ${cr}`);
    }
    if (start > s.size) {
      await readBody(req, entry).catch(() => undefined);
      throw invalid(`Invalid request: upload starts at byte ${start} but only ${s.size} bytes were persisted`);
    }
    // Receive the body. Bytes already persisted (start < size) are skipped. If the connection
    // breaks, whole 256 KiB units of what arrived stay persisted, as with the real service.
    const skip = s.size - start;
    const received: Buffer[] = [];
    let receivedBytes = 0;
    let complete = false;
    try {
      for await (const chunk of req) {
        received.push(chunk as Buffer);
        receivedBytes += (chunk as Buffer).length;
        entry.bodyBytes = receivedBytes;
      }
      complete = req.complete;
    } catch {
      complete = false;
    }
    const body = Buffer.concat(received);
    if (!complete) {
      const keepable = Math.max(0, body.length - skip);
      const keep = Math.floor((s.size + keepable) / GRANULE) * GRANULE - s.size;
      if (keep > 0) {
        s.parts.push(body.subarray(skip, skip + keep));
        s.size += keep;
      }
      entry.status = 0;
      return;
    }
    if (declaredEnd !== undefined && body.length !== declaredEnd - start + 1) {
      throw invalid(`Content-Range ${cr} does not match the ${body.length} bytes sent`);
    }
    const isFinal = total !== undefined ? start + body.length === total : declaredEnd === undefined;
    if (total !== undefined && start + body.length > total) throw invalid('More bytes sent than the announced total');
    if (!isFinal && declaredEnd !== undefined && body.length < GRANULE) {
      throw invalid(
        `Invalid request. The number of bytes uploaded is required to be equal or greater than 262144, except for the final request (it's recommended to be the exact multiple of 262144). The received request contained ${body.length} bytes, which does not meet this requirement.`,
      );
    }
    if (body.length > skip) {
      s.parts.push(body.subarray(skip));
      s.size += body.length - skip;
    }
    if (total !== undefined) s.total = total;
    if (!isFinal) return replyState();
    if (s.total === undefined) s.total = s.size;
    const hash = req.headers['x-goog-hash'];
    return finalize(req, res, entry, s, typeof hash === 'string' ? hash : undefined);
  }

  function finalize(req: http.IncomingMessage, res: http.ServerResponse, entry: LoggedRequest, s: UploadSession, xGoogHash?: string): void {
    const data = Buffer.concat(s.parts);
    s.parts = [data];
    try {
      if (s.total !== undefined && data.length !== s.total) throw invalid(`Upload has ${data.length} bytes, ${s.total} announced`);
      verifyDeclaredHashes(s.resource, data, xGoogHash);
      const b = getBucket(s.bucket);
      checkConditions(s.conditions, b.objects.get(s.name));
      s.done = store(b, s.name, data, s.contentType, metadataOf(s.resource));
      s.parts = [];
      send(res, entry, 200, objectResource(req, s.bucket, s.done));
    } catch (e) {
      if (e instanceof HttpError) {
        s.failed = { status: e.status, reason: e.reason, message: e.message };
        s.parts = [];
      }
      throw e;
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host}:${port}`;

  return {
    url,
    port,
    requests,
    createBucket(name: string) {
      if (!buckets.has(name)) makeBucket(name);
    },
    getObject(bucket: string, name: string) {
      return buckets.get(bucket)?.objects.get(name)?.data;
    },
    listObjects(bucket: string) {
      return [...(buckets.get(bucket)?.objects.keys() ?? [])].sort(compareNames);
    },
    putObject(bucket: string, name: string, data: Uint8Array) {
      const b = buckets.get(bucket) ?? makeBucket(bucket);
      store(b, name, Buffer.from(data), 'application/octet-stream');
    },
    dropBucket(name: string) {
      buckets.delete(name);
      for (const [id, s] of sessions) if (s.bucket === name) sessions.delete(id);
    },
    openSessions() {
      let n = 0;
      for (const s of sessions.values()) if (!s.done && !s.failed) n++;
      return n;
    },
    stop() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** GCS orders names by their UTF-8 bytes. */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function etagOf(o: StoredObject): string {
  return Buffer.from(`${o.generation}/${o.metageneration}`).toString('base64');
}

function metadataOf(meta: Record<string, unknown>): Record<string, string> | undefined {
  const m = meta.metadata;
  if (!m || typeof m !== 'object') return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m as Record<string, unknown>)) if (v !== null && v !== undefined) out[k] = String(v);
  return out;
}

/** md5Hash/crc32c given in the resource, or an X-Goog-Hash header, must match the data (400 otherwise). */
function verifyDeclaredHashes(meta: Record<string, unknown>, data: Buffer, xGoogHash: string | undefined): void {
  const want: Array<[string, string]> = [];
  if (typeof meta.md5Hash === 'string') want.push(['md5', meta.md5Hash]);
  if (typeof meta.crc32c === 'string') want.push(['crc32c', meta.crc32c]);
  if (xGoogHash) {
    for (const kv of xGoogHash.split(',')) {
      const i = kv.indexOf('=');
      if (i > 0) want.push([kv.slice(0, i).trim(), kv.slice(i + 1).trim()]);
    }
  }
  for (const [kind, value] of want) {
    if (kind === 'md5') {
      const got = md5Base64(data);
      if (got !== value) throw invalid(`Provided MD5 hash "${value}" doesn't match calculated MD5 hash "${got}".`);
    } else if (kind === 'crc32c') {
      const got = crc32cBase64(data);
      if (got !== value) throw invalid(`Provided CRC32C "${value}" doesn't match calculated CRC32C "${got}".`);
    }
  }
}

interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

/** multipart/related per RFC 2046: parts between "--boundary" lines, ended by "--boundary--". */
function parseMultipart(body: Buffer, boundary: string): Part[] {
  const delim = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let pos = body.indexOf(delim);
  if (pos < 0) throw invalid('Multipart body without boundary');
  for (;;) {
    pos += delim.length;
    if (body.subarray(pos, pos + 2).toString() === '--') break; // closing delimiter
    // skip transport padding and the CRLF after the delimiter
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), pos);
    if (next < 0) throw invalid('Multipart body not terminated');
    const raw = body.subarray(pos, next);
    const sep = raw.indexOf('\r\n\r\n');
    const headers: Record<string, string> = {};
    let content: Buffer;
    if (raw[0] === 0x0d && raw[1] === 0x0a) {
      content = raw.subarray(2); // a part without headers
    } else if (sep < 0) {
      content = raw;
    } else {
      for (const line of raw.subarray(0, sep).toString('utf8').split('\r\n')) {
        const c = line.indexOf(':');
        if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
      }
      content = raw.subarray(sep + 4);
    }
    parts.push({ headers, body: content });
    pos = next + 2;
  }
  return parts;
}
