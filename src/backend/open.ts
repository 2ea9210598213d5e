import * as path from 'node:path';
import { CairnError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local.js';
import { LimitedBackend } from './limit.js';
import { RetryBackend, type RetryOptions } from './retry.js';
import { withTempSpool } from './spool.js';
import { stripCredentials } from './errors.js';
import { normalizePrefix } from './layout.js';
import { isAwsHost, regionFromAwsHost, type S3Config } from './s3/config.js';
import type { RestConfig } from './rest/rest.js';
import type { AzureBslConfig, AzureOptions } from './azure/options.js';
import type { GcsBslConfig, GcsOptions } from './gcs/options.js';

export const ACCEPTED_FORMS = [
  '/path/to/repo or local:/path/to/repo',
  's3:http(s)://host[:port]/bucket[/prefix] (MinIO, Ceph, any S3-compatible endpoint)',
  's3:s3.amazonaws.com/bucket[/prefix] or s3:s3-REGION.amazonaws.com/bucket[/prefix] (AWS)',
  's3:host[:port]/bucket[/prefix] (https)',
  'azure:container:/prefix',
  'gs:bucket:/prefix',
  'rest:http(s)://[user:password@]host[:port]/path',
];

/** A repository location as data: what an identifier says, or what the agent builds from a BSL. */
export type BackendConfig =
  | { type: 'local'; path: string }
  | ({ type: 's3' } & S3Config)
  | ({ type: 'rest' } & RestConfig)
  | { type: 'azure'; container: string; prefix: string }
  | { type: 'gs'; bucket: string; prefix: string };

export interface BackendOptions {
  /** restic-style extended options (`-o key=value`): s3.region, s3.bucket-lookup, s3.storage-class, s3.connections, rest.connections, ... */
  extended?: Record<string, string>;
  /** --limit-upload / --limit-download in KiB/s (0 = unlimited). */
  limitUploadKiB?: number;
  limitDownloadKiB?: number;
  /** Extra CA certificates (PEM) trusted for https endpoints (--cacert, a BSL's caCert). */
  caCerts?: Array<string | Buffer>;
  /** Skip TLS verification (--insecure-tls, Velero's insecureSkipTLSVerify). */
  insecureSkipTLSVerify?: boolean;
  /** Explicit settings laid over what the identifier and environment say (the agent's BSL config). */
  s3?: Partial<S3Config>;
  rest?: Partial<RestConfig>;
  azure?: Partial<AzureOptions> & { bsl?: AzureBslConfig };
  gs?: Partial<GcsOptions> & { bsl?: GcsBslConfig };
  /**
   * Folder for the temporary files packs are spooled to before an object store upload (default
   * os.tmpdir(): $TMPDIR or /tmp). It must be writable; each pack being written or uploaded
   * takes up to its size (16–24 MiB) there.
   */
  spoolDir?: string;
  /** Retry policy; false disables the retry wrapper (tests of a raw backend). */
  retry?: RetryOptions | false;
  /** Environment to read restic's variables from (default process.env). */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  clock?: Clock;
}

function malformed(repo: string, why: string): CairnError {
  return new CairnError(
    'INVALID_ARGUMENT',
    `invalid repository ${JSON.stringify(stripCredentials(repo))}: ${why}; accepted forms are:\n  ${ACCEPTED_FORMS.join('\n  ')}`,
  );
}

/**
 * Parses a repository identifier exactly as restic and Velero write it. Pure: no I/O, no
 * environment. Errors show the accepted forms and never the credentials inside the identifier.
 */
export function parseRepository(repo: string): BackendConfig {
  if (!repo) throw new CairnError('INVALID_ARGUMENT', 'no repository given: use -r/--repo or RESTIC_REPOSITORY');
  const scheme = /^([a-z][a-z0-9]*):/.exec(repo)?.[1];
  if (scheme === 's3') return parseS3(repo);
  if (scheme === 'rest') {
    const url = repo.slice('rest:'.length);
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw malformed(repo, 'rest: needs an http(s) URL');
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.host) throw malformed(repo, 'rest: needs an http(s) URL');
    return { type: 'rest', url };
  }
  if (scheme === 'azure' || scheme === 'gs') {
    const m = /^[a-z]+:([^:/\s]+):(\/[^\s]*)?$/.exec(repo);
    if (!m) throw malformed(repo, `expected ${scheme}:<${scheme === 'azure' ? 'container' : 'bucket'}>:/<path>`);
    const prefix = normalizePrefix(m[2] ?? '');
    return scheme === 'azure' ? { type: 'azure', container: m[1]!, prefix } : { type: 'gs', bucket: m[1]!, prefix };
  }
  if (scheme === 'local') {
    const p = repo.slice('local:'.length);
    if (!p) throw malformed(repo, 'local: needs a path');
    return { type: 'local', path: path.resolve(p) };
  }
  // A one-letter "scheme" is a Windows drive (C:\...), anything else is a backend we do not have.
  if (scheme && scheme.length > 1) {
    throw new CairnError('UNSUPPORTED', `unsupported repository type "${scheme}": accepted forms are:\n  ${ACCEPTED_FORMS.join('\n  ')}`);
  }
  return { type: 'local', path: path.resolve(repo) };
}

function parseS3(repo: string): BackendConfig {
  let rest = repo.slice('s3:'.length);
  let scheme = 'https';
  const m = /^(https?):\/\/(.*)$/.exec(rest);
  if (m) {
    scheme = m[1]!;
    rest = m[2]!;
  } else if (rest.startsWith('//')) {
    rest = rest.slice(2); // old restic form s3://host/bucket
  }
  const parts = rest.split('/');
  const host = parts.shift() ?? '';
  const bucket = parts.shift() ?? '';
  if (!host || /[\s@]/.test(host)) throw malformed(repo, 'expected s3:<host>[:port]/<bucket>[/<prefix>]');
  if (!bucket) throw malformed(repo, 'no bucket name after the host');
  if (!/^[A-Za-z0-9._-]+$/.test(bucket)) throw malformed(repo, `invalid bucket name ${JSON.stringify(bucket)}`);
  const prefix = normalizePrefix(parts.join('/'));
  const cfg: { type: 's3' } & S3Config = { type: 's3', bucket, prefix, endpoint: `${scheme}://${host}` };
  // AWS: s3.amazonaws.com means "discover the region"; s3-REGION names it.
  if (isAwsHost(host.replace(/:\d+$/, ''))) {
    const region = regionFromAwsHost(host.replace(/:\d+$/, ''));
    if (region) cfg.region = region;
  }
  return cfg;
}

// ------------------------------------------------------------------------------------------------
// extended options (-o key=value)

type OptKind = 'int' | 'string' | 'bool' | 'size' | 'duration' | 'enum';
interface OptDef {
  kind: OptKind;
  help: string;
  values?: string[];
}

/** The extended options cairn understands (restic's names where restic has one). */
export const EXTENDED_OPTIONS: Record<string, OptDef> = {
  's3.connections': { kind: 'int', help: 'requests in flight (default 5)' },
  's3.region': { kind: 'string', help: 'region (default: from the host name or discovered from the bucket)' },
  's3.bucket-lookup': { kind: 'enum', values: ['auto', 'dns', 'path'], help: 'bucket addressing: auto (virtual-host for AWS, path elsewhere), dns or path' },
  's3.storage-class': { kind: 'string', help: 'storage class for data files (e.g. STANDARD_IA)' },
  's3.list-objects-v1': { kind: 'bool', help: 'use ListObjects v1 (old S3 implementations)' },
  's3.layout': { kind: 'enum', values: ['default'], help: 'repository layout (only "default")' },
  's3.checksum': { kind: 'enum', values: ['when_required', 'when_supported'], help: 'SDK checksums (when_required works with Ceph/MinIO)' },
  's3.conditional-writes': { kind: 'bool', help: 'create-only writes with If-None-Match (default true)' },
  's3.direct': { kind: 'bool', help: 'data reads and uploads at path-style endpoints through cairn\'s own lean HTTP client (default true)' },
  's3.multipart-threshold': { kind: 'size', help: 'files at least this large use multipart upload (default 64MiB)' },
  's3.part-size': { kind: 'size', help: 'multipart part size (default 16MiB)' },
  's3.profile': { kind: 'string', help: 'profile of the shared credentials file' },
  's3.credentials-file': { kind: 'string', help: 'AWS shared credentials file' },
  's3.idle-timeout': { kind: 'duration', help: 'abort a request idle this long (default 60s)' },
  'rest.connections': { kind: 'int', help: 'requests in flight (default 5)' },
  'rest.idle-timeout': { kind: 'duration', help: 'abort a request idle this long (default 60s)' },
  'azure.connections': { kind: 'int', help: 'requests in flight (default 5)' },
  'azure.endpoint-suffix': { kind: 'string', help: 'DNS suffix of the Azure cloud (default core.windows.net)' },
  'azure.idle-timeout': { kind: 'duration', help: 'abort a request idle this long (default 60s)' },
  'gs.connections': { kind: 'int', help: 'requests in flight (default 5)' },
  'gs.project-id': { kind: 'string', help: 'project for bucket creation (default $GOOGLE_PROJECT_ID)' },
  'gs.idle-timeout': { kind: 'duration', help: 'abort a request idle this long (default 60s)' },
  'local.connections': { kind: 'int', help: 'file operations in flight (default: unlimited)' },
  'retry.max-attempts': { kind: 'int', help: 'attempts per backend operation (default 10)' },
  'retry.max-elapsed': { kind: 'duration', help: 'give up retrying an operation after this long (default 10m)' },
  'retry.initial-delay': { kind: 'duration', help: 'first retry delay, doubled each time (default 500ms)' },
};

/** Parses "-o key=value" strings into a map ("key" alone means "true"). */
export function parseExtendedOptions(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).trim();
    const value = eq < 0 ? 'true' : item.slice(eq + 1).trim();
    if (!key) throw new CairnError('INVALID_ARGUMENT', `invalid option ${JSON.stringify(item)}: expected key=value`);
    checkOption(key, value);
    out[key] = value;
  }
  return out;
}

function checkOption(key: string, value: string): void {
  const def = EXTENDED_OPTIONS[key];
  if (!def) {
    throw new CairnError('INVALID_ARGUMENT', `unknown option ${JSON.stringify(key)}; known options: ${Object.keys(EXTENDED_OPTIONS).join(', ')}`);
  }
  const bad = (what: string) => new CairnError('INVALID_ARGUMENT', `option ${key}: ${what}, got ${JSON.stringify(value)}`);
  switch (def.kind) {
    case 'int':
      if (!/^\d+$/.test(value) || Number(value) < 1) throw bad('expected a positive integer');
      break;
    case 'bool':
      if (!/^(true|false|1|0|yes|no)$/i.test(value)) throw bad('expected true or false');
      break;
    case 'size':
      parseSize(value, key);
      break;
    case 'duration':
      parseDurationMs(value, key);
      break;
    case 'enum':
      if (!def.values!.includes(value)) throw bad(`expected one of ${def.values!.join(', ')}`);
      break;
    default:
      if (!value) throw bad('expected a value');
  }
}

function boolOpt(v: string | undefined): boolean | undefined {
  return v === undefined ? undefined : /^(true|1|yes)$/i.test(v);
}

function intOpt(v: string | undefined): number | undefined {
  return v === undefined ? undefined : Number(v);
}

/** "16MiB", "64M", "1048576" → bytes. */
export function parseSize(v: string, what = 'size'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new CairnError('INVALID_ARGUMENT', `invalid ${what} ${JSON.stringify(v)} (examples: 16MiB, 512k, 1048576)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}

/** "500ms", "30s", "5m", "1h30m" → milliseconds. */
export function parseDurationMs(v: string, what = 'duration'): number {
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let used = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
    used += m[0].length;
  }
  if (!used || used !== v.length) throw new CairnError('INVALID_ARGUMENT', `invalid ${what} ${JSON.stringify(v)} (examples: 500ms, 30s, 5m)`);
  return total;
}

// ------------------------------------------------------------------------------------------------
// opening

/**
 * Fills a parsed S3 location from restic's environment variables, the extended options and the
 * explicit overrides (in that order of precedence, lowest first).
 */
export function resolveS3Config(base: S3Config, o: BackendOptions = {}): S3Config {
  const env = o.env ?? process.env;
  const x = o.extended ?? {};
  const c: S3Config = { ...base };
  const over = o.s3 ?? {};
  // Credentials given explicitly (a BSL's own secret) win over whatever the process environment holds.
  const explicitCreds = over.accessKeyId !== undefined || over.sharedCredentials !== undefined || over.credentialsFile !== undefined;
  if (!explicitCreds && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    c.accessKeyId = env.AWS_ACCESS_KEY_ID;
    c.secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
    if (env.AWS_SESSION_TOKEN) c.sessionToken = env.AWS_SESSION_TOKEN;
  }
  if (env.AWS_PROFILE) c.profile = env.AWS_PROFILE;
  c.region ??= env.AWS_DEFAULT_REGION || env.AWS_REGION || undefined;
  if (env.AWS_REQUEST_CHECKSUM_CALCULATION?.toLowerCase() === 'when_supported') c.checksumMode = 'WHEN_SUPPORTED';
  if (x['s3.region']) c.region = x['s3.region'];
  if (x['s3.bucket-lookup']) c.bucketLookup = x['s3.bucket-lookup'] as S3Config['bucketLookup'];
  if (x['s3.storage-class']) c.storageClass = x['s3.storage-class'];
  if (x['s3.list-objects-v1'] !== undefined) c.listObjectsV1 = boolOpt(x['s3.list-objects-v1']);
  if (x['s3.checksum']) c.checksumMode = x['s3.checksum'] === 'when_supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
  if (x['s3.conditional-writes'] !== undefined) c.conditionalWrites = boolOpt(x['s3.conditional-writes']);
  if (x['s3.direct'] !== undefined) c.directRequests = boolOpt(x['s3.direct']);
  if (x['s3.multipart-threshold']) c.multipartThreshold = parseSize(x['s3.multipart-threshold']);
  if (x['s3.part-size']) c.partSize = parseSize(x['s3.part-size']);
  if (x['s3.profile']) c.profile = x['s3.profile'];
  if (x['s3.credentials-file']) c.credentialsFile = x['s3.credentials-file'];
  if (x['s3.idle-timeout']) c.idleTimeoutMs = parseDurationMs(x['s3.idle-timeout']);
  if (x['s3.connections']) c.connections = intOpt(x['s3.connections']);
  if (o.caCerts?.length) c.caCerts = [...(c.caCerts ?? []), ...o.caCerts];
  if (o.insecureSkipTLSVerify) c.insecureSkipTLSVerify = true;
  for (const [k, v] of Object.entries(over)) if (v !== undefined) (c as unknown as Record<string, unknown>)[k] = v;
  return c;
}

export function resolveRestConfig(base: RestConfig, o: BackendOptions = {}): RestConfig {
  const env = o.env ?? process.env;
  const x = o.extended ?? {};
  const c: RestConfig = { ...base };
  let hasUserInfo = false;
  try {
    const u = new URL(c.url);
    hasUserInfo = !!(u.username || u.password);
  } catch {
    /* reported by the backend */
  }
  if (!hasUserInfo) {
    if (env.RESTIC_REST_USERNAME) c.username ??= env.RESTIC_REST_USERNAME;
    if (env.RESTIC_REST_PASSWORD) c.password ??= env.RESTIC_REST_PASSWORD;
  }
  if (x['rest.connections']) c.connections = intOpt(x['rest.connections']);
  if (x['rest.idle-timeout']) c.idleTimeoutMs = parseDurationMs(x['rest.idle-timeout']);
  if (o.caCerts?.length) c.caCerts = [...(c.caCerts ?? []), ...o.caCerts];
  if (o.insecureSkipTLSVerify) c.insecureSkipTLSVerify = true;
  for (const [k, v] of Object.entries(o.rest ?? {})) if (v !== undefined) (c as unknown as Record<string, unknown>)[k] = v;
  return c;
}

function retryOptions(o: BackendOptions): RetryOptions {
  const x = o.extended ?? {};
  const r: RetryOptions = { logger: o.logger, clock: o.clock, ...(o.retry || {}) };
  if (x['retry.max-attempts']) r.maxAttempts = Number(x['retry.max-attempts']);
  if (x['retry.max-elapsed']) r.maxElapsedMs = parseDurationMs(x['retry.max-elapsed']);
  if (x['retry.initial-delay']) r.initialDelayMs = parseDurationMs(x['retry.initial-delay']);
  return r;
}

/**
 * Opens a backend from an identifier (`s3:…`, `rest:…`, `azure:…`, `gs:…`, a path) or an
 * explicit configuration, wrapped in the cross-cutting layers: a connection and bandwidth limit,
 * then retries with backoff. Nothing is contacted until the first operation.
 */
export async function openBackend(repo: string | BackendConfig, o: BackendOptions = {}): Promise<Backend> {
  for (const [k, v] of Object.entries(o.extended ?? {})) checkOption(k, v);
  const cfg = typeof repo === 'string' ? parseRepository(repo) : repo;
  const x = o.extended ?? {};
  const env = o.env ?? process.env;
  const limits = { uploadKiBs: o.limitUploadKiB || undefined, downloadKiBs: o.limitDownloadKiB || undefined, clock: o.clock };
  let raw: Backend;
  let connections: number | undefined;
  switch (cfg.type) {
    case 'local': {
      raw = new LocalBackend(cfg.path);
      connections = intOpt(x['local.connections']);
      // A local disk needs neither retries nor a limit unless asked for.
      if (!connections && !limits.uploadKiBs && !limits.downloadKiBs) return raw;
      return new LimitedBackend(raw, { ...limits, connections: connections ?? 64 });
    }
    case 's3': {
      const { type: _t, ...base } = cfg;
      const s3 = resolveS3Config(base, o);
      if (x['s3.layout'] && x['s3.layout'] !== 'default') throw new CairnError('UNSUPPORTED', `s3.layout ${x['s3.layout']} is not supported (only "default")`);
      const { openS3Backend } = await import('./s3/index.js');
      raw = openS3Backend(s3, { logger: o.logger });
      connections = s3.connections;
      break;
    }
    case 'rest': {
      const { type: _t, ...base } = cfg;
      const rc = resolveRestConfig(base, o);
      const { openRestBackend } = await import('./rest/index.js');
      raw = openRestBackend(rc, { logger: o.logger });
      connections = rc.connections;
      break;
    }
    case 'azure': {
      // Loaded on demand: the Azure SDK is big, and a CLI run against S3 never needs it.
      const az = await import('./azure/index.js');
      const { bsl, ...over } = o.azure ?? {};
      const opts: AzureOptions = { ...az.azureOptionsFromEnv(env, bsl) };
      if (x['azure.endpoint-suffix']) opts.endpointSuffix = x['azure.endpoint-suffix'];
      if (x['azure.idle-timeout']) opts.stallTimeoutMs = parseDurationMs(x['azure.idle-timeout']);
      Object.assign(opts, dropUndefined(over));
      raw = az.openAzureBackend({ container: cfg.container, prefix: cfg.prefix }, opts);
      connections = intOpt(x['azure.connections']);
      break;
    }
    case 'gs': {
      const gs = await import('./gcs/index.js');
      const { bsl, ...over } = o.gs ?? {};
      const opts: GcsOptions = { ...gs.gcsOptionsFromEnv(env, bsl) };
      if (x['gs.project-id']) opts.projectId = x['gs.project-id'];
      if (x['gs.idle-timeout']) opts.stallTimeoutMs = parseDurationMs(x['gs.idle-timeout']);
      Object.assign(opts, dropUndefined(over));
      raw = gs.openGcsBackend({ bucket: cfg.bucket, prefix: cfg.prefix }, opts);
      connections = intOpt(x['gs.connections']);
      break;
    }
  }
  const limited = new LimitedBackend(raw, { ...limits, connections: connections ?? 5 });
  // The spool is outermost: a pack's upload then passes the limit and is retried as one save.
  return withTempSpool(o.retry === false ? limited : new RetryBackend(limited, retryOptions(o)), { dir: o.spoolDir });
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The identifier as it may be printed: user:password@ removed from URLs. */
export function displayRepository(repo: string): string {
  return stripCredentials(repo);
}
