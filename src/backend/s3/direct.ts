/**
 * Ranged reads and file uploads at a path-style S3 endpoint without the SDK: each request is signed
 * with the SDK's own Signature V4 signer (same credentials provider, same region) and sent by the
 * lean client of ../lean-http.ts, which reads bodies straight into the caller's buffer and writes
 * uploads to the socket as they are read (why, with numbers: lean-http.ts). Only for what that
 * client can address without the SDK's endpoint rules: a custom endpoint at the root of its
 * host, path-style addressing.
 */
import { createHash, createHmac } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { LeanHttp, type LeanHttpOptions, type RangeResult, type SmallResponse } from '../lean-http.js';

/** SHA-256 of an empty body (the payload hash of a GET). */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytes(d: SourceData): string | Uint8Array {
  if (typeof d === 'string') return d;
  return d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** The signer's hash (and HMAC, with a secret) from node:crypto. */
class NodeSha256 {
  private readonly secret: string | Uint8Array | undefined;
  private h;
  constructor(secret?: SourceData) {
    this.secret = secret === undefined ? undefined : bytes(secret);
    this.h = this.fresh();
  }
  private fresh() {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
  update(data: SourceData): void {
    this.h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
  reset(): void {
    this.h = this.fresh();
  }
}

/** Percent-encodes an object key for the path as S3 expects it (every byte but A–Z a–z 0–9 - . _ ~ and the slashes). */
function encodeKey(key: string): string {
  return key
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()))
    .join('/');
}

/** An S3 error answer's code and message (`<Error><Code>…</Code><Message>…</Message>`), if it has them. */
export function errorCode(body: Buffer): { code?: string; message?: string } {
  const text = body.subarray(0, 4096).toString('utf8');
  const code = /<Code>([^<]{1,128})<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]{0,512})<\/Message>/.exec(text)?.[1];
  return { code, message };
}

export class DirectS3 {
  private readonly http: LeanHttp;

  private constructor(
    private readonly origin: string,
    private readonly bucket: string,
    private readonly signer: SignatureV4,
    opts: LeanHttpOptions,
  ) {
    this.http = new LeanHttp(opts);
  }

  /**
   * Direct requests for a client, or undefined when its endpoint is not one they can address: no
   * custom endpoint (AWS: the SDK resolves the host), an endpoint with a path, or virtual-host
   * addressing.
   */
  static async forClient(client: S3Client, endpoint: string | undefined, bucket: string, pathStyle: boolean, opts: LeanHttpOptions): Promise<DirectS3 | undefined> {
    if (endpoint === undefined || !pathStyle) return undefined;
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      return undefined;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.username !== '') return undefined;
    const region = await client.config.region();
    const signer = new SignatureV4({ credentials: client.config.credentials, region, service: 's3', sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
    return new DirectS3(url.origin, bucket, signer, opts);
  }

  private async signed(method: string, key: string, headers: Record<string, string>): Promise<{ url: URL; headers: Record<string, string> }> {
    const path = `/${encodeKey(this.bucket)}/${encodeKey(key)}`;
    const url = new URL(this.origin + path);
    const req = await this.signer.sign({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path,
      query: {},
      headers: { host: url.host, ...headers },
    });
    return { url, headers: req.headers };
  }

  /** `length` bytes of object `key` from `offset`, into `into` when it is large enough; `{ ok: false }` for any answer but the expected one. */
  async read(key: string, offset: number, length: number, into: Buffer | undefined, what: string): Promise<RangeResult> {
    const r = await this.signed('GET', key, { range: `bytes=${offset}-${offset + length - 1}`, 'x-amz-content-sha256': EMPTY_SHA256 });
    return this.http.getRange(r.url, r.headers, length, { into, what });
  }

  /**
   * PUT of `size` bytes from `body()` (a new stream per attempt) as object `key`, signed with the
   * content's SHA-256 (the store checks it) and the given headers (If-None-Match, storage class);
   * returns the answer for the caller to interpret.
   */
  async put(key: string, size: number, sha256: string, headers: Record<string, string>, body: () => Readable, what: string): Promise<SmallResponse> {
    const r = await this.signed('PUT', key, { 'content-length': String(size), 'content-type': 'application/octet-stream', 'x-amz-content-sha256': sha256, ...headers });
    return this.http.send('PUT', r.url, r.headers, body, what);
  }

  close(): void {
    this.http.close();
  }
}
