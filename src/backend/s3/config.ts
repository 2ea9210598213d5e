/**
 * Configuration of the S3 backend. Plain data without SDK types, so the engine and the agent can
 * build it (e.g. from a Velero BackupStorageLocation) without loading the AWS SDK.
 */
export interface S3Config {
  bucket: string;
  /** Key prefix of the repository inside the bucket ("" = bucket root). */
  prefix: string;
  /**
   * Endpoint URL with scheme, e.g. "http://minio.velero.svc:9000" or "https://s3-eu-west-1.amazonaws.com".
   * Undefined means AWS, addressed by region.
   */
  endpoint?: string;
  /** AWS region; when absent it is taken from the host name or discovered from the bucket. */
  region?: string;
  /** "auto" (default): virtual-host style for AWS, path style elsewhere (restic's s3.bucket-lookup). */
  bucketLookup?: 'auto' | 'dns' | 'path';
  /** Static credentials; when absent the AWS credential chain is used (env, shared file, web identity, IMDS). */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** AWS shared-credentials file (Velero mounts one); read with `profile`, re-read when it changes. */
  credentialsFile?: string;
  /**
   * Content of an AWS shared-credentials file (e.g. a Velero BSL credential read from a Secret),
   * used with `profile`. Only static keys are read from it (aws_access_key_id,
   * aws_secret_access_key, aws_session_token); role chains need `credentialsFile`.
   */
  sharedCredentials?: string | Buffer;
  /** Profile in the shared credentials/config file (AWS_PROFILE, Velero's config.profile). */
  profile?: string;
  /** Storage class for data (pack) files, like restic's s3.storage-class; metadata stays STANDARD. */
  storageClass?: string;
  /**
   * SDK checksum mode. WHEN_REQUIRED (default) works with Ceph RGW and MinIO: with WHEN_SUPPORTED
   * the SDK sends aws-chunked bodies with trailing CRC32, which RGW rejects with 411.
   */
  checksumMode?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  /** Requests in flight (restic's s3.connections, default 5); also the HTTP agent's socket limit. */
  connections?: number;
  /** Files at least this large go up as multipart uploads (default 64 MiB; restic packs are 16 MiB). */
  multipartThreshold?: number;
  /** Part size of multipart uploads (default 16 MiB, at least 5 MiB). */
  partSize?: number;
  /** Parts of one file uploaded at once (default 4). Memory held by an upload ≈ the file itself. */
  partConcurrency?: number;
  /** Use ListObjects (v1) instead of ListObjectsV2, for old S3 implementations (s3.list-objects-v1). */
  listObjectsV1?: boolean;
  /**
   * Create-only writes with If-None-Match: * (default true). Turned off automatically when the
   * server answers 501 Not Implemented.
   */
  conditionalWrites?: boolean;
  /**
   * Ranged reads and uploads of packs and other content-named files below the multipart threshold
   * at a path-style custom endpoint (Ceph RGW, MinIO, …) go through cairn's lean HTTP client
   * (backend/lean-http.ts) instead of the SDK (default true); AWS's own endpoints and virtual-host
   * addressing always use the SDK.
   */
  directRequests?: boolean;
  /** TLS: extra trusted CA certificates (PEM), added to the system roots. */
  caCerts?: Array<string | Buffer>;
  /** TLS: skip certificate verification (Velero's insecureSkipTLSVerify). */
  insecureSkipTLSVerify?: boolean;
  /** Abort a request when its socket is idle this long (default 60 s). */
  idleTimeoutMs?: number;
  /** Abort a connection attempt after this long (default 10 s). */
  connectTimeoutMs?: number;
}

/** True for AWS's own S3 endpoints (s3.amazonaws.com, s3-eu-west-1.amazonaws.com, s3.eu-west-1.amazonaws.com, China). */
export function isAwsHost(host: string): boolean {
  return /(^|\.)amazonaws\.com(\.cn)?$/i.test(host);
}

/** The region encoded in an AWS S3 host name (s3-REGION / s3.REGION), if any. */
export function regionFromAwsHost(host: string): string | undefined {
  const m = /^s3[.-](?!external-1\.)(?!dualstack\.)([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)\.amazonaws\.com(\.cn)?$/i.exec(host);
  if (m) return m[1]!.toLowerCase();
  // s3.dualstack.REGION.amazonaws.com
  const d = /^s3\.dualstack\.([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)\.amazonaws\.com(\.cn)?$/i.exec(host);
  if (d) return d[1]!.toLowerCase();
  if (/^s3-external-1\.amazonaws\.com$/i.test(host)) return 'us-east-1';
  return undefined;
}

export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * Reads static keys for `profile` from an AWS shared-credentials file's text (INI: `[name]`
 * sections, `key = value` lines, `#`/`;` comments). Returns undefined when the profile is missing
 * or has no key pair.
 */
export function parseSharedCredentials(text: string, profile = 'default'): StaticCredentials | undefined {
  const sections = new Map<string, Record<string, string>>();
  let cur: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (sec) {
      cur = sections.get(sec[1]!) ?? {};
      sections.set(sec[1]!, cur);
      continue;
    }
    const kv = /^([A-Za-z0-9_.-]+)\s*=\s*(.*)$/.exec(line);
    if (kv && cur) cur[kv[1]!.toLowerCase()] = kv[2]!.trim();
  }
  const p = sections.get(profile);
  if (!p?.aws_access_key_id || !p.aws_secret_access_key) return undefined;
  return { accessKeyId: p.aws_access_key_id, secretAccessKey: p.aws_secret_access_key, sessionToken: p.aws_session_token || undefined };
}
