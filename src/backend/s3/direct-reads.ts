/**
 * Ranged object reads at a path-style S3 endpoint without the SDK: the request is signed with the
 * SDK's own Signature V4 signer (same credentials provider, same region) and sent by the lean
 * client of ../range-get.ts, which reads the body straight into the caller's buffer (why, with
 * numbers: range-get.ts). Only for what that client can address without the SDK's endpoint
 * rules: a custom endpoint at the root of its host, path-style addressing.
 */
import { createHash, createHmac } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { RangeGetter, type RangeGetResult, type RangeGetterOptions } from '../range-get.js';

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

export class DirectReads {
  private readonly getter: RangeGetter;

  private constructor(
    private readonly origin: string,
    private readonly bucket: string,
    private readonly signer: SignatureV4,
    opts: RangeGetterOptions,
  ) {
    this.getter = new RangeGetter(opts);
  }

  /**
   * Direct reads for a client, or undefined when its endpoint is not one they can address: no
   * custom endpoint (AWS: the SDK resolves the host), an endpoint with a path, or virtual-host
   * addressing.
   */
  static async forClient(client: S3Client, endpoint: string | undefined, bucket: string, pathStyle: boolean, opts: RangeGetterOptions): Promise<DirectReads | undefined> {
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
    return new DirectReads(url.origin, bucket, signer, opts);
  }

  /** `length` bytes of object `key` from `offset`, into `into` when it is large enough; `{ ok: false }` for any answer but the expected one. */
  async read(key: string, offset: number, length: number, into: Buffer | undefined, what: string): Promise<RangeGetResult> {
    const path = `/${encodeKey(this.bucket)}/${encodeKey(key)}`;
    const url = new URL(this.origin + path);
    const signed = await this.signer.sign({
      method: 'GET',
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path,
      query: {},
      headers: { host: url.host, range: `bytes=${offset}-${offset + length - 1}`, 'x-amz-content-sha256': EMPTY_SHA256 },
    });
    return this.getter.get(url, signed.headers, length, { into, what });
  }

  close(): void {
    this.getter.close();
  }
}
