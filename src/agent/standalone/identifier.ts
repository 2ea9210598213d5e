/**
 * The restic repository identifier of a (BackupStorageLocation, volume namespace) pair, computed
 * exactly as Velero's server computes it (contract §5.1), so that cairn's own backups land in the
 * repositories Velero would have used and the two stay interchangeable.
 */
import { posix } from 'node:path';
import { CairnError } from '../../core/errors.js';
import type { BackupStorageLocation } from '../velero.js';

export interface IdentifierDeps {
  /**
   * The AWS region of a bucket (Velero asks S3 when the BSL names no region). Injected so tests
   * and offline callers decide; the default asks s3.amazonaws.com.
   */
  bucketRegion?(bucket: string): Promise<string>;
}

/** Provider names without a `/` are read as `velero.io/<name>`. */
export function normaliseProvider(provider: string | undefined): string {
  const p = provider ?? '';
  return p.includes('/') ? p : `velero.io/${p}`;
}

/** Go's path.Join: empty elements are ignored and the result is cleaned (no trailing slash). */
function goJoin(...parts: string[]): string {
  const nonEmpty = parts.filter((p) => p !== '');
  if (nonEmpty.length === 0) return '';
  const j = posix.normalize(nonEmpty.join('/'));
  return j.length > 1 ? j.replace(/\/+$/, '') : j;
}

/**
 * Velero's object store layout: the restic directory is `<prefix>/restic/` (prefix optional),
 * joined the Go way.
 */
export function resticDir(prefix: string | undefined): string {
  return goJoin(prefix ?? '', 'restic') + '/';
}

/** Everything of the identifier except the final `/<namespace>`. */
export async function repositoryPrefix(bsl: BackupStorageLocation, deps: IdentifierDeps = {}): Promise<string> {
  const spec = bsl.spec ?? {};
  const config = spec.config ?? {};
  const bucket = spec.objectStorage?.bucket ?? '';
  const layoutPrefix = spec.objectStorage ? resticDir(spec.objectStorage.prefix) : '';
  if (config.resticRepoPrefix) return config.resticRepoPrefix;
  const provider = normaliseProvider(spec.provider);
  // 1.10+: any provider with an s3Url is an S3-compatible store
  if (provider === 'velero.io/aws' || config.s3Url) {
    let url: string;
    if (config.s3Url) {
      url = config.s3Url.replace(/\/+$/, '');
    } else {
      let region = config.region;
      if (!region) {
        const lookup = deps.bucketRegion ?? awsBucketRegion;
        try {
          region = await lookup(bucket);
        } catch (e) {
          throw new CairnError('BACKEND', `failed to detect the region via bucket: ${bucket}: ${(e as Error).message}`, { cause: e });
        }
      }
      url = `s3-${region}.amazonaws.com`;
    }
    return `s3:${url}/${goJoin(bucket, layoutPrefix)}`;
  }
  if (provider === 'velero.io/azure') return `azure:${bucket}:/${layoutPrefix}`;
  if (provider === 'velero.io/gcp') return `gs:${bucket}:/${layoutPrefix}`;
  throw new CairnError(
    'UNSUPPORTED',
    `backup storage location ${bsl.metadata?.name ?? ''}: provider ${JSON.stringify(spec.provider ?? '')} has no restic repository layout (use aws, azure or gcp, or set config.resticRepoPrefix)`,
  );
}

/** The identifier of the repository that holds the pod volumes of one namespace. */
export async function repositoryIdentifier(bsl: BackupStorageLocation, volumeNamespace: string, deps: IdentifierDeps = {}): Promise<string> {
  if (!volumeNamespace) throw new CairnError('INVALID_ARGUMENT', 'no volume namespace for the repository identifier');
  const prefix = await repositoryPrefix(bsl, deps);
  return `${prefix.replace(/\/+$/, '')}/${volumeNamespace}`;
}

/**
 * What the AWS SDK's bucket-region lookup does: a HEAD request on the bucket at the global
 * endpoint; S3 names the region in `x-amz-bucket-region` even when it refuses the request.
 */
export async function awsBucketRegion(bucket: string): Promise<string> {
  if (!bucket) throw new Error('no bucket');
  const res = await fetch(`https://${bucket}.s3.amazonaws.com/`, { method: 'HEAD', redirect: 'manual', signal: AbortSignal.timeout(15_000) });
  const region = res.headers.get('x-amz-bucket-region');
  if (!region) throw new Error(`S3 did not name the region of bucket ${bucket} (HTTP ${res.status})`);
  return region;
}
