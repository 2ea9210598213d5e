/**
 * From a PVB/PVR to repository access: parse `spec.repoIdentifier` (contract §5.2), load the BSL
 * and its credentials (§6), and read the installation's repository password (§5.3).
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { CairnError } from '../core/errors.js';
import type { RepoAccess } from '../engine/index.js';
import type { Logger } from '../core/logger.js';
import { redactRepo } from './log.js';
import type { BackupStorageLocation, SecretKeySelector } from './velero.js';

export type RepoScheme = 's3' | 'azure' | 'gs' | 'rest' | 'local';

export interface ParsedRepo {
  scheme: RepoScheme;
  /** The identifier as given (handed to the engine). */
  identifier: string;
  /** For logs and messages (userinfo removed). */
  display: string;
}

/** Parses a restic repository identifier as Velero writes it; malformed ones are INVALID_ARGUMENT. */
export function parseRepoIdentifier(id: string | undefined): ParsedRepo {
  const raw = (id ?? '').trim();
  if (!raw) throw new CairnError('INVALID_ARGUMENT', 'the repoIdentifier is empty');
  const display = redactRepo(raw)!;
  const bad = (why: string) => new CairnError('INVALID_ARGUMENT', `malformed repoIdentifier ${JSON.stringify(display)}: ${why}`);
  if (raw.startsWith('s3:')) {
    const rest = raw.slice(3);
    const m = /^(?:(https?):\/\/)?([^/\s]+)\/([^/\s]+)(?:\/(.*))?$/.exec(rest);
    if (!m) throw bad('expected s3:<host>/<bucket>/<path> or s3:http(s)://<host>/<bucket>/<path>');
    return { scheme: 's3', identifier: raw, display };
  }
  if (raw.startsWith('azure:') || raw.startsWith('gs:')) {
    const scheme = raw.startsWith('azure:') ? 'azure' : 'gs';
    const m = /^[a-z]+:([^:/\s]+):(\/.*)?$/.exec(raw);
    if (!m) throw bad(`expected ${scheme}:<${scheme === 'azure' ? 'container' : 'bucket'}>:/<path>`);
    return { scheme, identifier: raw, display };
  }
  if (raw.startsWith('rest:')) {
    if (!/^rest:https?:\/\/[^/\s]+/.test(raw)) throw bad('expected rest:http(s)://<host>/<path>');
    return { scheme: 'rest', identifier: raw, display };
  }
  if (raw.startsWith('local:') || raw.startsWith('/')) {
    const p = raw.startsWith('local:') ? raw.slice(6) : raw;
    if (!p.startsWith('/')) throw bad('a local repository must be an absolute path');
    return { scheme: 'local', identifier: raw, display };
  }
  const scheme = /^([a-z0-9]+):/.exec(raw)?.[1];
  if (scheme) throw new CairnError('UNSUPPORTED', `unsupported repository backend "${scheme}" in repoIdentifier ${JSON.stringify(display)}`);
  throw bad('no repository scheme');
}

/** Backend options of the engine (TLS, credentials, BSL overrides). */
export type BackendOptions = NonNullable<RepoAccess['options']>;

export interface AccessSources {
  getSecret(name: string): Promise<Record<string, Buffer> | undefined>;
  /** Writes a credential to a private file (mode 0600) and returns its path (Velero: /tmp/credentials/<ns>/<secret>-<key>). */
  materialize(secret: string, key: string, content: Buffer): Promise<string>;
  env: NodeJS.ProcessEnv;
}

/**
 * AccessSources over the secrets of one namespace: credentials are written to
 * <credentialsDir>/<namespace>/<secret>-<key> with mode 0600, as Velero does.
 */
export function namespaceAccessSources(
  getSecretData: (namespace: string, name: string) => Promise<Record<string, Buffer> | undefined>,
  namespace: string,
  credentialsDir: string,
): AccessSources {
  return {
    getSecret: (name) => getSecretData(namespace, name),
    materialize: async (secret, key, content) => {
      const dir = path.join(credentialsDir, namespace);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const file = path.join(dir, `${secret}-${key}`);
      await writeFile(file, content, { mode: 0o600 });
      await chmod(file, 0o600);
      return file;
    },
    env: process.env,
  };
}

async function secretKey(src: AccessSources, sel: SecretKeySelector, what: string): Promise<Buffer> {
  const data = await src.getSecret(sel.name);
  if (!data) throw new CairnError('NOT_FOUND', `secret ${sel.name} (${what}) not found`);
  const v = data[sel.key];
  if (!v) throw new CairnError('NOT_FOUND', `secret ${sel.name} (${what}) has no key ${sel.key}`);
  return v;
}

/**
 * The backend options for a repository of a BSL (contract §6): CA bundle (caCertRef before caCert),
 * insecureSkipTLSVerify, the per-BSL credential (else the DaemonSet-wide files the backends read
 * from the environment), and the provider settings restic's path honours.
 */
export async function backendOptions(repo: ParsedRepo, bsl: BackupStorageLocation, src: AccessSources): Promise<BackendOptions> {
  const config = bsl.spec.config ?? {};
  const o: BackendOptions = { env: src.env };
  // Packs bound for an object store are spooled to the DaemonSet's scratch volume (an emptyDir on
  // the node's disk), not the container's writable layer under /tmp.
  if (src.env.VELERO_SCRATCH_DIR) o.spoolDir = src.env.VELERO_SCRATCH_DIR;
  if (config.insecureSkipTLSVerify === 'true') o.insecureSkipTLSVerify = true;
  const os = bsl.spec.objectStorage ?? {};
  if (os.caCertRef) o.caCerts = [await secretKey(src, os.caCertRef, `CA certificate of backup storage location ${bsl.metadata.name}`)];
  else if (os.caCert) o.caCerts = [Buffer.from(os.caCert, 'base64')];
  let credentialsFile: string | undefined;
  if (bsl.spec.credential) {
    const content = await secretKey(src, bsl.spec.credential, `credential of backup storage location ${bsl.metadata.name}`);
    credentialsFile = await src.materialize(bsl.spec.credential.name, bsl.spec.credential.key, content);
  }
  switch (repo.scheme) {
    case 's3': {
      const s3: NonNullable<BackendOptions['s3']> = {};
      credentialsFile ??= src.env.AWS_SHARED_CREDENTIALS_FILE || undefined;
      if (credentialsFile) s3.credentialsFile = credentialsFile;
      if (config.profile) s3.profile = config.profile;
      if (config.region) s3.region = config.region;
      if (config.s3ForcePathStyle === 'true') s3.bucketLookup = 'path';
      o.s3 = s3;
      break;
    }
    case 'azure':
      o.azure = {
        bsl: {
          storageAccount: config.storageAccount,
          storageAccountKeyEnvVar: config.storageAccountKeyEnvVar,
          storageAccountURI: config.storageAccountURI,
          resourceGroup: config.resourceGroup,
          subscriptionId: config.subscriptionId,
          activeDirectoryAuthorityURI: config.activeDirectoryAuthorityURI,
          credentialsFile: credentialsFile ?? (src.env.AZURE_CREDENTIALS_FILE || undefined),
        },
      };
      break;
    case 'gs':
      o.gs = { bsl: { credentialsFile: credentialsFile ?? (src.env.GOOGLE_APPLICATION_CREDENTIALS || undefined) } };
      break;
    default:
      break;
  }
  return o;
}

/** The engine's RepoAccess for a repository of a BSL. */
export function repoAccessFor(repo: ParsedRepo, password: string, options: BackendOptions | undefined, logger: Logger, keyHint?: string): RepoAccess {
  return { repo: repo.identifier, password, logger, keyHint, options: options ? { ...options, logger } : undefined };
}

export const PASSWORD_SECRETS = ['velero-repo-credentials', 'velero-restic-credentials'] as const;
export const PASSWORD_KEY = 'repository-password';

/** Reads the repository password, trying the secret names in the given order (contract §5.3). */
export async function repositoryPassword(src: AccessSources, order: readonly string[]): Promise<string> {
  for (const name of order) {
    const data = await src.getSecret(name);
    if (!data) continue;
    const v = data[PASSWORD_KEY];
    if (v === undefined) throw new CairnError('NOT_FOUND', `secret ${name} has no key ${PASSWORD_KEY}`);
    return v.toString('utf8');
  }
  throw new CairnError('NOT_FOUND', `repository password secret not found (looked for ${order.join(' and ')}, key ${PASSWORD_KEY})`);
}

export type { BackupStorageLocation };
