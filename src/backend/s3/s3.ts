import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import {
  S3Client,
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type BucketLocationConstraint,
  type S3ClientConfig,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { CairnError, errorMessage } from '../../core/errors.js';
import { nullLogger, type Logger } from '../../core/logger.js';
import type { Backend, FileHandle, FileInfo, FileSource, FileType } from '../backend.js';
import { readBody, type BodyStream } from '../body.js';
import { BackendError, describeHandle, isRetryableNetworkError, isRetryableStatus, parseRetryAfter } from '../errors.js';
import { listPrefix, nameFromKey, normalizePrefix, objectKey } from '../layout.js';
import { readSource, sourceReadError } from '../object-store.js';
import { isAwsHost, parseSharedCredentials, regionFromAwsHost, type S3Config } from './config.js';
import { DirectS3, errorCode } from './direct.js';

const MiB = 1024 * 1024;

/** What an SDK error tells us, whatever its class. */
interface SdkErrorInfo {
  status?: number;
  name: string;
  headers: Record<string, string | undefined>;
}

function sdkInfo(e: unknown): SdkErrorInfo {
  const o = (e ?? {}) as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number }; $response?: { statusCode?: number; headers?: Record<string, string> } };
  return {
    status: o.$metadata?.httpStatusCode ?? o.$response?.statusCode,
    name: o.Code ?? o.name ?? 'Error',
    headers: o.$response?.headers ?? {},
  };
}

/**
 * Files in an S3 bucket (AWS or any S3-compatible store) in restic's layout:
 * `<prefix>/config`, `keys/`, `snapshots/`, `index/`, `locks/`, `data/XX/<id>`.
 *
 * - The region is taken from the configuration, the host name (s3-REGION.amazonaws.com), or
 *   discovered from the bucket (GetBucketLocation, then the x-amz-bucket-region header of
 *   HeadBucket), as Velero's restic path does.
 * - Writes are create-only (If-None-Match: *) where the store supports it; a 412 means the file is
 *   already there (an earlier attempt whose answer was lost, or the same content written twice:
 *   names are content hashes) and is checked, not blindly accepted.
 * - The SDK's own retries are off (maxAttempts 1): RetryBackend is the one retry layer, so every
 *   attempt is counted and logged once, and Retry-After is honoured.
 */
export class S3Backend implements Backend {
  readonly location: string;
  private readonly prefix: string;
  /** Connections to the store at most (the agents' and the direct client's limit). */
  private readonly sockets: number;
  /** Whom https connections trust (the agents' and the direct client's). */
  private readonly tls: { rejectUnauthorized: boolean; ca: string[] | undefined };
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly logger: Logger;
  private readonly idleMs: number;
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private conditional: boolean;
  private client: Promise<S3Client> | undefined;
  /** How the client addresses the store (set with the client). */
  private addressing: { endpoint: string | undefined; forcePathStyle: boolean } | undefined;
  private direct: Promise<DirectS3 | undefined> | undefined;
  private closed = false;

  constructor(private readonly cfg: S3Config, opts: { logger?: Logger } = {}) {
    if (!cfg.bucket) throw new CairnError('INVALID_ARGUMENT', 's3: no bucket given');
    this.prefix = normalizePrefix(cfg.prefix);
    this.location = `s3:${cfg.endpoint ? cfg.endpoint.replace(/\/+$/, '') : 's3.amazonaws.com'}/${cfg.bucket}${this.prefix ? '/' + this.prefix : ''}`;
    this.logger = (opts.logger ?? nullLogger).child({ backend: 's3' });
    this.sockets = Math.max(1, cfg.connections ?? 5) * Math.max(1, cfg.partConcurrency ?? 4);
    this.tls = {
      rejectUnauthorized: !cfg.insecureSkipTLSVerify,
      // extra CAs are trusted in addition to the system roots (Velero's caCert), not instead
      ca: cfg.caCerts?.length ? [...rootCertificates, ...cfg.caCerts.map((c) => c.toString())] : undefined,
    };
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: this.sockets });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: this.sockets, ...this.tls });
    this.idleMs = cfg.idleTimeoutMs ?? 60_000;
    this.threshold = cfg.multipartThreshold ?? 64 * MiB;
    this.partSize = Math.max(5 * MiB, cfg.partSize ?? 16 * MiB);
    this.partConcurrency = Math.max(1, cfg.partConcurrency ?? 4);
    this.conditional = cfg.conditionalWrites ?? true;
  }

  // ------------------------------------------------------------------------------------------
  // client set-up

  private endpointHost(): string | undefined {
    if (!this.cfg.endpoint) return undefined;
    try {
      return new URL(this.cfg.endpoint).host;
    } catch {
      throw new CairnError('INVALID_ARGUMENT', `s3: invalid endpoint URL ${JSON.stringify(this.cfg.endpoint)}`);
    }
  }

  private async credentials(): Promise<S3ClientConfig['credentials']> {
    const c = this.cfg;
    if (c.accessKeyId && c.secretAccessKey) {
      return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken };
    }
    if (c.sharedCredentials !== undefined) {
      const creds = parseSharedCredentials(c.sharedCredentials.toString(), c.profile ?? 'default');
      if (!creds) throw new CairnError('INVALID_ARGUMENT', `s3: the credentials have no aws_access_key_id/aws_secret_access_key for profile ${JSON.stringify(c.profile ?? 'default')}`);
      return creds;
    }
    if (c.credentialsFile) {
      // An explicit file (a Velero BSL credential) wins over the environment; ignoreCache re-reads
      // it so rotated secrets are picked up.
      const { fromIni } = await import('@aws-sdk/credential-provider-ini');
      return fromIni({ filepath: c.credentialsFile, profile: c.profile ?? 'default', ignoreCache: true });
    }
    return undefined; // the SDK's default chain (env, AWS_SHARED_CREDENTIALS_FILE + AWS_PROFILE, web identity, IMDS)
  }

  /** The endpoint given to the SDK (undefined: AWS's, by region) and whether buckets are addressed by path. */
  private addressingFor(forAws: boolean): { endpoint: string | undefined; forcePathStyle: boolean } {
    const c = this.cfg;
    const host = this.endpointHost();
    // AWS's standard hosts are addressed by region (the SDK picks the endpoint); anything else
    // (MinIO, Ceph, a VPC endpoint) is used as given.
    const endpoint = c.endpoint && !(host && forAws && /^s3([.-][a-z0-9-]+)*\.amazonaws\.com(\.cn)?$/i.test(host)) ? c.endpoint.replace(/\/+$/, '') : undefined;
    const lookup = c.bucketLookup ?? 'auto';
    return { endpoint, forcePathStyle: lookup === 'path' || (lookup === 'auto' && !forAws) };
  }

  private makeClient(region: string, creds: S3ClientConfig['credentials'], forAws: boolean): S3Client {
    const c = this.cfg;
    const { endpoint, forcePathStyle } = this.addressingFor(forAws);
    const mode = c.checksumMode ?? 'WHEN_REQUIRED';
    return new S3Client({
      region,
      endpoint,
      forcePathStyle,
      credentials: creds,
      profile: c.credentialsFile || c.sharedCredentials !== undefined ? undefined : c.profile,
      maxAttempts: 1,
      // Without a logger of its own the SDK prints some warnings to the console (e.g. "An error was
      // encountered in a non-retryable streaming request." for every failed upload from a file,
      // which RetryBackend then repeats and logs itself); they go to our logger, at debug level.
      logger: sdkLogger(this.logger),
      requestChecksumCalculation: mode,
      responseChecksumValidation: mode,
      requestHandler: {
        httpAgent: this.httpAgent,
        httpsAgent: this.httpsAgent,
        connectionTimeout: c.connectTimeoutMs ?? 10_000,
        socketTimeout: this.idleMs,
      },
    });
  }

  private getClient(): Promise<S3Client> {
    if (this.closed) throw new CairnError('INTERNAL', `${this.location}: backend is closed`);
    // The SDK prints a Node-20 deprecation notice on every CLI run otherwise; it is not actionable here.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client ??= this.setUp().catch((e) => {
      this.client = undefined; // a failed discovery is tried again on the next request
      throw e;
    });
    return this.client;
  }

  private async setUp(): Promise<S3Client> {
    const host = this.endpointHost();
    const forAws = !host || isAwsHost(host);
    const creds = await this.credentials();
    let region = this.cfg.region || (host ? regionFromAwsHost(host) : undefined);
    if (!region) region = await this.discoverRegion(creds, forAws);
    this.logger.debug('s3 client ready', { region, endpoint: this.cfg.endpoint ?? 'aws', bucket: this.cfg.bucket });
    this.addressing = this.addressingFor(forAws);
    return this.makeClient(region, creds, forAws);
  }

  /** Finds the bucket's region like Velero/minio-go: GetBucketLocation, then HeadBucket's x-amz-bucket-region. */
  private async discoverRegion(creds: S3ClientConfig['credentials'], forAws: boolean): Promise<string> {
    const probe = this.makeClient('us-east-1', creds, forAws);
    try {
      try {
        const r = await probe.send(new GetBucketLocationCommand({ Bucket: this.cfg.bucket }));
        const loc = r.LocationConstraint as BucketLocationConstraint | string | undefined;
        if (!loc) return 'us-east-1';
        if (loc === 'EU') return 'eu-west-1';
        // Ceph answers with its zonegroup name ("default"), which is not a signing region
        if (!forAws && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(loc)) return 'us-east-1';
        return loc;
      } catch (e) {
        const info = sdkInfo(e);
        const fromHeader = info.headers['x-amz-bucket-region'];
        if (fromHeader) return fromHeader;
        if (info.name === 'NoSuchBucket' || info.status === 404) return 'us-east-1'; // created later by init
        if (!forAws) return 'us-east-1';
      }
      try {
        const r = await probe.send(new HeadBucketCommand({ Bucket: this.cfg.bucket }));
        if (r.BucketRegion) return r.BucketRegion;
      } catch (e) {
        const fromHeader = sdkInfo(e).headers['x-amz-bucket-region'];
        if (fromHeader) return fromHeader;
        throw this.mapError(e, 'bucket', 'find the region of');
      }
      return 'us-east-1';
    } finally {
      probe.destroy();
    }
  }

  // ------------------------------------------------------------------------------------------
  // errors

  private mapError(e: unknown, what: string, op: string): CairnError {
    if (e instanceof CairnError) return e;
    const info = sdkInfo(e);
    const msg = errorMessage(e);
    const s = info.status;
    if (info.name === 'NoSuchKey' || info.name === 'NotFound' || (s === 404 && info.name !== 'NoSuchBucket')) {
      return new CairnError('NOT_FOUND', `${what} does not exist in ${this.location}`, { object: what, cause: e });
    }
    if (info.name === 'NoSuchBucket') {
      return new CairnError('NOT_FOUND', `bucket ${this.cfg.bucket} does not exist (${this.location})`, { object: what, cause: e });
    }
    if (s === 401 || s === 403 || info.name === 'AccessDenied' || info.name === 'InvalidAccessKeyId' || info.name === 'SignatureDoesNotMatch') {
      return new CairnError('PERMISSION', `cannot ${op} ${what} in ${this.location}: access denied (${info.name}); check the credentials and the bucket policy`, { object: what, cause: e });
    }
    if (info.name === 'XAmzContentSHA256Mismatch' || info.name === 'BadDigest') {
      return new CairnError('CORRUPT', `cannot ${op} ${what}: the store found that the content does not match its name (SHA-256)`, { object: what, cause: e });
    }
    if (s === 416 || info.name === 'InvalidRange') {
      return new CairnError('CORRUPT', `cannot ${op} ${what}: requested range is beyond the end of the file`, { object: what, cause: e });
    }
    if (s !== undefined && s >= 300) {
      return new BackendError(`cannot ${op} ${what} in ${this.location}: HTTP ${s} ${info.name}: ${msg}`, {
        object: what,
        cause: e,
        status: s,
        retryable: isRetryableStatus(s) || info.name === 'SlowDown' || info.name === 'RequestTimeout' || info.name === 'InternalError',
        retryAfterMs: parseRetryAfter(info.headers['retry-after'], Date.now()),
      });
    }
    return new BackendError(`cannot ${op} ${what} in ${this.location}: ${msg}`, { object: what, cause: e, retryable: isRetryableNetworkError(e) || isTransientSdkError(e) });
  }

  // ------------------------------------------------------------------------------------------
  // Backend

  async create(): Promise<void> {
    const client = await this.getClient();
    try {
      await client.send(new HeadBucketCommand({ Bucket: this.cfg.bucket }));
    } catch (e) {
      const info = sdkInfo(e);
      if (info.status !== 404 && info.name !== 'NotFound' && info.name !== 'NoSuchBucket') throw this.mapError(e, 'bucket', 'check');
      const region = await client.config.region();
      try {
        await client.send(
          new CreateBucketCommand({
            Bucket: this.cfg.bucket,
            CreateBucketConfiguration: region && region !== 'us-east-1' && isAwsHost(this.endpointHost() ?? 's3.amazonaws.com') ? { LocationConstraint: region as BucketLocationConstraint } : undefined,
          }),
        );
      } catch (ce) {
        const ci = sdkInfo(ce);
        // someone else (a parallel init) created it in between: fine
        if (ci.name !== 'BucketAlreadyOwnedByYou' && ci.name !== 'BucketAlreadyExists') throw this.mapError(ce, `bucket ${this.cfg.bucket}`, 'create');
      }
    }
    let exists = true;
    try {
      await this.stat({ type: 'config', name: 'config' });
    } catch (e) {
      if (!(e instanceof CairnError && e.code === 'NOT_FOUND')) throw e;
      exists = false;
    }
    if (exists) throw new CairnError('REPO_EXISTS', `repository ${this.location} already exists (config file present)`, { object: this.location });
  }

  async save(h: FileHandle, data: Uint8Array): Promise<void> {
    const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    await this.store(h, body.length, (client, key, conditional) => this.put(client, h, key, body, conditional), async () => body);
  }

  /**
   * Streams a local file: one PUT below the multipart threshold (signed with the file's name as
   * its SHA-256, so the store verifies it), else a multipart upload whose parts are ranges of
   * the file read as they are sent. Nothing of the file is held in memory beyond the streams'
   * read buffers; a failed attempt is repeated by RetryBackend, reading the file again.
   */
  async saveFile(h: FileHandle, src: FileSource): Promise<void> {
    await this.store(
      h,
      src.size,
      (client, key, conditional) => (src.size < this.threshold ? this.putStream(client, h, key, src, conditional) : this.putParts(client, h, key, src, conditional)),
      () => readSource(src),
    );
  }

  /** A create-only write with its fallbacks: plain writes when the store cannot do them, a check when the file is already there. */
  private async store(h: FileHandle, size: number, send: (client: S3Client, key: string, conditional: boolean) => Promise<void>, bytes: () => Promise<Buffer>): Promise<void> {
    const key = objectKey(this.prefix, h);
    const what = describeHandle(h);
    const client = await this.getClient();
    try {
      await send(client, key, this.conditional);
    } catch (e) {
      const info = sdkInfo(e);
      if (this.conditional && (info.status === 501 || info.name === 'NotImplemented')) {
        // The store does not do conditional writes: plain PUTs from now on (names are content
        // hashes, so a rewrite stores the same bytes).
        this.conditional = false;
        this.logger.info('store does not support If-None-Match; using unconditional writes', { location: this.location });
        try {
          await send(client, key, false);
          return;
        } catch (e2) {
          throw this.mapError(e2, what, 'save');
        }
      }
      if (info.status === 412 || info.name === 'PreconditionFailed') {
        await this.alreadyThere(h, size, bytes, () => send(client, key, false));
        return;
      }
      throw this.mapError(e, what, 'save');
    }
  }

  private objectParams(h: FileHandle, key: string) {
    return {
      Bucket: this.cfg.bucket,
      Key: key,
      ContentType: 'application/octet-stream',
      StorageClass: h.type === 'pack' && this.cfg.storageClass ? (this.cfg.storageClass as StorageClass) : undefined,
    };
  }

  /** Every file but the config is named by the SHA-256 of its content: that is the payload hash to sign. */
  private signWithName<T extends { middlewareStack: PutObjectCommand['middlewareStack'] }>(cmd: T, h: FileHandle): T {
    if (h.type === 'config') return cmd;
    // Handed to the signer instead of letting the SDK hash the body a second time (or, for a
    // stream, send it unsigned). The store checks it, so a body that does not match its name is
    // refused, never stored.
    cmd.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { headers?: Record<string, string> };
        if (req.headers) req.headers['x-amz-content-sha256'] = h.name;
        return next(args);
      },
      { step: 'build', name: 'cairnKnownPayloadHash' },
    );
    return cmd;
  }

  /**
   * Sends one request whose body is a stream of the file. A read error aborts the request (the
   * SDK would otherwise wait for the rest of the body until its idle timeout) and is what the
   * caller sees.
   */
  private async sendStream<T>(what: string, body: Readable, send: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    let readError: unknown;
    body.once('error', (e) => {
      readError ??= e;
      ac.abort(e);
    });
    try {
      return await send(ac.signal);
    } catch (e) {
      if (readError !== undefined) throw sourceReadError(readError, what);
      throw e;
    } finally {
      body.destroy();
    }
  }

  private async putStream(client: S3Client, h: FileHandle, key: string, src: FileSource, conditional: boolean): Promise<void> {
    // Files named by their content (all but the config) go up directly where that is possible.
    const direct = h.type !== 'config' ? await this.directRequests(client) : undefined;
    if (direct !== undefined) return this.putDirect(direct, h, key, src, conditional);
    const body = src.stream();
    const cmd = this.signWithName(new PutObjectCommand({ ...this.objectParams(h, key), Body: body, ContentLength: src.size, IfNoneMatch: conditional ? '*' : undefined }), h);
    await this.sendStream(describeHandle(h), body, (abortSignal) => client.send(cmd, { abortSignal }));
  }

  /**
   * putStream through the direct client. Any answer but 200 becomes an error shaped like the SDK's
   * (status, code, headers), so that store() and mapError() treat both alike (501 and 412 included).
   */
  private async putDirect(direct: DirectS3, h: FileHandle, key: string, src: FileSource, conditional: boolean): Promise<void> {
    const what = describeHandle(h);
    const headers: Record<string, string> = {};
    if (conditional) headers['if-none-match'] = '*';
    const sc = this.objectParams(h, key).StorageClass;
    if (sc) headers['x-amz-storage-class'] = sc;
    let r;
    try {
      r = await direct.put(key, src.size, h.name, headers, () => src.stream(), what);
    } catch (e) {
      // reading our own file failed: that is not the store's fault (and not worth a retry)
      const cause = (e as { cause?: { bodyRead?: boolean; cause?: unknown } }).cause;
      if (cause?.bodyRead) throw sourceReadError(cause.cause, what);
      throw e;
    }
    if (r.status === 200) return;
    const { code, message } = errorCode(r.body);
    throw Object.assign(new Error(message ?? `HTTP ${r.status}`), {
      name: code ?? (r.status === 412 ? 'PreconditionFailed' : `HTTP${r.status}`),
      $metadata: { httpStatusCode: r.status },
      $response: { statusCode: r.status, headers: r.headers },
    });
  }

  /**
   * A multipart upload of a local file: parts are ranges of it, at most `partConcurrency` in
   * flight, each streamed as it is sent (no part is buffered). A failure aborts the upload (no
   * orphaned parts); the create-only condition goes on the completion. Parts go with an unsigned
   * payload (hashing one would mean reading it twice); TLS guards them on the wire, and every
   * blob in a pack carries its own MAC. Packs only take this path above the multipart threshold
   * (64 MiB by default, larger than any pack).
   */
  private async putParts(client: S3Client, h: FileHandle, key: string, src: FileSource, conditional: boolean): Promise<void> {
    const base = this.objectParams(h, key);
    // S3 allows 10 000 parts per upload
    const partSize = Math.max(this.partSize, Math.ceil(src.size / 10_000));
    const count = Math.max(1, Math.ceil(src.size / partSize));
    const { UploadId } = await client.send(new CreateMultipartUploadCommand(base));
    if (!UploadId) throw new BackendError(`${describeHandle(h)}: the store started a multipart upload without an ID`, { object: describeHandle(h), retryable: true });
    try {
      const etags: string[] = [];
      let next = 0;
      let failed: unknown;
      const worker = async (): Promise<void> => {
        while (failed === undefined && next < count) {
          const i = next++;
          const start = i * partSize;
          const end = Math.min(src.size, start + partSize);
          try {
            const body = src.stream(start, end);
            const r = await this.sendStream(describeHandle(h), body, (abortSignal) =>
              client.send(new UploadPartCommand({ Bucket: base.Bucket, Key: key, UploadId, PartNumber: i + 1, Body: body, ContentLength: end - start }), { abortSignal }),
            );
            if (!r.ETag) throw new BackendError(`${describeHandle(h)}: part ${i + 1} stored without an ETag`, { object: describeHandle(h), retryable: true });
            etags[i] = r.ETag;
          } catch (e) {
            failed ??= e;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.partConcurrency, count) }, worker));
      if (failed !== undefined) throw failed;
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: base.Bucket,
          Key: key,
          UploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
          IfNoneMatch: conditional ? '*' : undefined,
        }),
      );
    } catch (e) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: base.Bucket, Key: key, UploadId })).catch(() => undefined);
      throw e;
    }
  }

  private async put(client: S3Client, h: FileHandle, key: string, body: Buffer, conditional: boolean): Promise<void> {
    const params = { ...this.objectParams(h, key), Body: body, IfNoneMatch: conditional ? '*' : undefined };
    if (body.length < this.threshold) {
      await client.send(this.signWithName(new PutObjectCommand({ ...params, ContentLength: body.length }), h));
      return;
    }
    // Multipart: the parts are views of `body`, so memory stays at the file itself; a failed part
    // aborts the upload (no orphaned parts) and RetryBackend repeats the whole save.
    const up = new Upload({ client, params, partSize: this.partSize, queueSize: this.partConcurrency, leavePartsOnError: false });
    await up.done();
  }

  /**
   * A create-only write found the file already present. For content-addressed files a file of the
   * same size is the same content (S3 writes are atomic); the config must match byte for byte.
   * Anything else is rewritten (once, unconditionally) or reported.
   */
  private async alreadyThere(h: FileHandle, size: number, bytes: () => Promise<Buffer>, rewrite: () => Promise<void>): Promise<void> {
    const what = describeHandle(h);
    if (h.type === 'config') {
      const existing = await this.load(h);
      if (existing.equals(await bytes())) return;
      throw new CairnError('REPO_EXISTS', `repository ${this.location} already has a different config file`, { object: this.location });
    }
    const st = await this.stat(h);
    if (st.size === size) return;
    this.logger.warn('replacing a stored file whose size does not match its name', { object: what, stored: st.size, expected: size });
    try {
      await rewrite();
    } catch (e) {
      throw this.mapError(e, what, 'save');
    }
  }

  async load(h: FileHandle, offset = 0, length?: number, into?: Buffer): Promise<Buffer> {
    const key = objectKey(this.prefix, h);
    const what = describeHandle(h);
    if (offset < 0 || (length !== undefined && length < 0)) throw new CairnError('INVALID_ARGUMENT', `${what}: invalid range ${offset}+${length}`);
    if (length === 0) {
      await this.stat(h); // keeps NOT_FOUND semantics for empty reads
      return Buffer.alloc(0);
    }
    const range = length !== undefined ? `bytes=${offset}-${offset + length - 1}` : offset > 0 ? `bytes=${offset}-` : undefined;
    const client = await this.getClient();
    if (length !== undefined) {
      const direct = await this.directRequests(client);
      if (direct !== undefined) {
        const r = await direct.read(objectKey(this.prefix, h), offset, length, into, what);
        if (r.ok) return r.data;
        // Any other answer (an error status, a store that ignored Range): the SDK's request below
        // gets it again and tells what it means.
      }
    }
    let out;
    try {
      out = await client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: key, Range: range }));
    } catch (e) {
      throw this.mapError(e, what, 'load');
    }
    const body = out.Body as unknown as BodyStream | undefined;
    if (!body) throw new BackendError(`${what}: response without a body`, { object: what, retryable: true });
    const total = parseContentRangeTotal(out.ContentRange);
    if (range && out.ContentRange === undefined) {
      // The store ignored Range and sent the whole file: read it and cut the range out.
      const whole = await readBody(body, out.ContentLength, what, this.idleMs);
      if (length !== undefined && offset + length > whole.length) {
        throw new CairnError('CORRUPT', `${what}: file has ${whole.length} bytes, cannot read ${length} at offset ${offset}`, { object: what });
      }
      return whole.subarray(offset, length !== undefined ? offset + length : undefined);
    }
    if (length !== undefined && total !== undefined && offset + length > total) {
      body.destroy?.();
      throw new CairnError('CORRUPT', `${what}: file has ${total} bytes, cannot read ${length} at offset ${offset}`, { object: what });
    }
    const expected = out.ContentLength ?? length;
    if (length !== undefined && expected !== length) {
      body.destroy?.();
      throw new BackendError(`${what}: server announced ${expected} bytes for a ${length}-byte range`, { object: what, retryable: true });
    }
    return readBody(body, expected, what, this.idleMs, undefined, into);
  }

  async stat(h: FileHandle): Promise<FileInfo> {
    const key = objectKey(this.prefix, h);
    const client = await this.getClient();
    try {
      const r = await client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: key }));
      return { name: h.name, size: r.ContentLength ?? 0 };
    } catch (e) {
      throw this.mapError(e, describeHandle(h), 'stat');
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
    const client = await this.getClient();
    const Prefix = listPrefix(this.prefix, type);
    let token: string | undefined;
    for (;;) {
      signal?.throwIfAborted();
      let entries: Array<{ Key?: string; Size?: number }>;
      let next: string | undefined;
      try {
        if (this.cfg.listObjectsV1) {
          const r = await client.send(new ListObjectsCommand({ Bucket: this.cfg.bucket, Prefix, Marker: token }), { abortSignal: signal });
          entries = r.Contents ?? [];
          next = r.IsTruncated ? (r.NextMarker ?? entries[entries.length - 1]?.Key) : undefined;
        } else {
          const r = await client.send(new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix, ContinuationToken: token }), { abortSignal: signal });
          entries = r.Contents ?? [];
          next = r.IsTruncated ? r.NextContinuationToken : undefined;
        }
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        throw this.mapError(e, type, 'list');
      }
      for (const o of entries) {
        const name = o.Key ? nameFromKey(o.Key) : undefined;
        if (name) yield { name, size: o.Size ?? 0 };
      }
      if (!next) return;
      token = next;
    }
  }

  async remove(h: FileHandle): Promise<void> {
    const key = objectKey(this.prefix, h);
    const client = await this.getClient();
    try {
      // S3 deletes are idempotent: deleting a missing key succeeds (the contract allows that).
      await client.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key: key }));
    } catch (e) {
      throw this.mapError(e, describeHandle(h), 'remove');
    }
  }

  /** Direct requests (direct.ts) when the store is addressed in a way they can follow and they are not turned off. */
  private directRequests(client: S3Client): Promise<DirectS3 | undefined> {
    if (this.cfg.directRequests === false || this.addressing === undefined) return Promise.resolve(undefined);
    const { endpoint, forcePathStyle } = this.addressing;
    this.direct ??= DirectS3.forClient(client, endpoint, this.cfg.bucket, forcePathStyle, {
      maxSockets: this.sockets,
      idleMs: this.idleMs,
      connectTimeoutMs: this.cfg.connectTimeoutMs ?? 10_000,
      tls: this.tls,
    }).then((d) => {
      this.logger.debug('s3 data requests', { via: d !== undefined ? 'direct' : 'sdk' });
      return d;
    });
    return this.direct;
  }

  async close(): Promise<void> {
    this.closed = true;
    const d = this.direct;
    this.direct = undefined;
    if (d) (await d.catch(() => undefined))?.close();
    const c = this.client;
    this.client = undefined;
    if (c) (await c.catch(() => undefined))?.destroy();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

function sdkLogger(logger: Logger): NonNullable<S3ClientConfig['logger']> {
  const text = (args: unknown[]) => args.map((a) => (typeof a === 'string' ? a : errorMessage(a))).join(' ');
  const debug = (...args: unknown[]) => logger.debug('s3 sdk', { message: text(args) });
  return { trace: () => undefined, debug: () => undefined, info: () => undefined, warn: debug, error: debug };
}

/** "bytes 0-99/1234" → 1234 (undefined for "*" or absent). */
function parseContentRangeTotal(v: string | undefined): number | undefined {
  const m = v ? /\/(\d+)\s*$/.exec(v) : null;
  return m ? Number(m[1]) : undefined;
}

/** SDK-level failures that are not HTTP answers but are worth another try (timeouts, bad XML from a cut body). */
function isTransientSdkError(e: unknown): boolean {
  const o = e as { name?: string; $retryable?: unknown; message?: string };
  if (o?.$retryable) return true;
  if (o?.name === 'TimeoutError' || o?.name === 'RequestTimeout') return true;
  // a truncated XML listing/error body surfaces as a deserialization error
  return typeof o?.message === 'string' && /deserializ|unexpected end|premature close|socket hang up/i.test(o.message);
}
