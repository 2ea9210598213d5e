import { readFileSync } from 'node:fs';
import { CairnError } from '../../core/errors.js';
import { parseDotenv } from '../object-store.js';
import { CLOUD_ENDPOINTS, type ArmKeySource } from './arm.js';

export interface AzureOptions {
  /** Storage account name (restic: AZURE_ACCOUNT_NAME). */
  accountName?: string;
  /** Shared key of the account (restic: AZURE_ACCOUNT_KEY). */
  accountKey?: string;
  /** Shared access signature, with or without the leading "?" (restic: AZURE_ACCOUNT_SAS). */
  sasToken?: string;
  /** A full connection string (AccountName/AccountKey/SharedAccessSignature/BlobEndpoint…). */
  connectionString?: string;
  /**
   * No key given: fetch it from Azure Resource Manager ("list keys"), as Velero does, with a
   * service principal, workload identity or managed identity token.
   */
  listKeys?: Omit<ArmKeySource, 'accountName'>;
  /** Blob service URL, e.g. http://127.0.0.1:10000/devstoreaccount1 (Azurite) or a private endpoint. */
  endpoint?: string;
  /** DNS suffix of the cloud, default core.windows.net (restic: AZURE_ENDPOINT_SUFFIX). */
  endpointSuffix?: string;
  /**
   * Files up to this size go up in one Put Blob request; larger ones as staged blocks plus a
   * commit. 64 MiB: a pack (16 MiB by default) is one request, and a large one never has to
   * succeed in a single long request.
   */
  singlePutLimit?: number;
  /** Block size for large files. 8 MiB keeps a failed block cheap to repeat. */
  blockSize?: number;
  /**
   * Blocks of one file in flight at once. The file is already in memory and blocks are views of
   * it, so this bounds sockets, not memory.
   */
  blockConcurrency?: number;
  /** Tries per HTTP request inside the SDK (it repeats 500/503 and network errors). */
  maxTries?: number;
  /** First SDK retry delay; it doubles per try. */
  retryDelayMs?: number;
  /** Abort a request that moves no bytes for this long; it then counts as retryable (default 60 s). */
  stallTimeoutMs?: number;
  /** Page size for listings (the service caps it at 5000). */
  listPageSize?: number;
}

/** What a Velero BackupStorageLocation adds for Azure (contract §6.1/§6.2). */
export interface AzureBslConfig {
  storageAccount?: string;
  storageAccountKeyEnvVar?: string;
  storageAccountURI?: string;
  /** For the Resource Manager key lookup (else AZURE_RESOURCE_GROUP / AZURE_SUBSCRIPTION_ID). */
  resourceGroup?: string;
  subscriptionId?: string;
  activeDirectoryAuthorityURI?: string;
  /** The materialised BSL credential (dotenv format); else AZURE_CREDENTIALS_FILE. */
  credentialsFile?: string;
}

const CLOUD_SUFFIXES: Record<string, string> = {
  azurepubliccloud: 'core.windows.net',
  azurecloud: 'core.windows.net',
  azureusgovernmentcloud: 'core.usgovcloudapi.net',
  azureusgovernment: 'core.usgovcloudapi.net',
  azurechinacloud: 'core.chinacloudapi.cn',
  azuregermancloud: 'core.cloudapi.de',
};

/** Blob endpoint DNS suffix for an AZURE_CLOUD_NAME value (go-autorest names; default public cloud). */
export function endpointSuffixForCloud(cloudName: string | undefined): string {
  if (!cloudName) return 'core.windows.net';
  const s = CLOUD_SUFFIXES[cloudName.replace(/[\s_-]/g, '').toLowerCase()];
  if (!s) {
    throw new CairnError(
      'INVALID_ARGUMENT',
      `unknown AZURE_CLOUD_NAME ${JSON.stringify(cloudName)}: expected AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud or AzureGermanCloud`,
    );
  }
  return s;
}

/**
 * Builds Azure options from the environment the way restic and Velero hand them over:
 * restic's AZURE_ACCOUNT_NAME / AZURE_ACCOUNT_KEY / AZURE_ACCOUNT_SAS / AZURE_ENDPOINT_SUFFIX,
 * Azure's AZURE_STORAGE_ACCOUNT / AZURE_STORAGE_KEY / AZURE_STORAGE_CONNECTION_STRING, and
 * Velero's credentials file (AZURE_CREDENTIALS_FILE, dotenv) with AZURE_STORAGE_ACCOUNT_ID,
 * AZURE_STORAGE_ACCOUNT_ACCESS_KEY, AZURE_CLOUD_NAME, or the variable a BSL names in
 * `storageAccountKeyEnvVar`. AZURE_BLOB_ENDPOINT (cairn) overrides the service URL.
 * Without any key, SAS or connection string, but with AZURE_SUBSCRIPTION_ID and
 * AZURE_RESOURCE_GROUP, the key is listed through Resource Manager with AZURE_TENANT_ID /
 * AZURE_CLIENT_ID / AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE, or a managed identity).
 * Process variables win over the file.
 */
export function azureOptionsFromEnv(env: NodeJS.ProcessEnv = process.env, bsl: AzureBslConfig = {}): AzureOptions {
  const credFile = bsl.credentialsFile ?? env.AZURE_CREDENTIALS_FILE;
  let file: Record<string, string> = {};
  if (credFile) {
    try {
      file = parseDotenv(readFileSync(credFile, 'utf8'));
    } catch (e) {
      throw new CairnError('INVALID_ARGUMENT', `cannot read Azure credentials file ${credFile}: ${(e as Error).message}`, { cause: e });
    }
  }
  const get = (...names: string[]): string | undefined => {
    for (const n of names) {
      const v = env[n] ?? file[n];
      if (v) return v;
    }
    return undefined;
  };
  let accountKey: string | undefined;
  if (bsl.storageAccountKeyEnvVar) {
    // Velero ≥1.10 takes this one from the credentials file only; earlier versions also from the
    // process environment. Prefer the file, fall back to the environment.
    accountKey = file[bsl.storageAccountKeyEnvVar] || env[bsl.storageAccountKeyEnvVar] || undefined;
    if (!accountKey) {
      throw new CairnError(
        'INVALID_ARGUMENT',
        `storageAccountKeyEnvVar names ${bsl.storageAccountKeyEnvVar}, but neither the credentials file nor the environment sets it`,
      );
    }
  }
  accountKey ??= get('AZURE_ACCOUNT_KEY', 'AZURE_STORAGE_KEY', 'AZURE_STORAGE_ACCOUNT_ACCESS_KEY', 'AZURE_STORAGE_ACCOUNT_KEY');
  const cloudSuffix = endpointSuffixForCloud(get('AZURE_CLOUD_NAME'));
  const endpointSuffix = get('AZURE_ENDPOINT_SUFFIX') ?? cloudSuffix;
  const o: AzureOptions = {
    accountName: bsl.storageAccount || get('AZURE_ACCOUNT_NAME', 'AZURE_STORAGE_ACCOUNT', 'AZURE_STORAGE_ACCOUNT_ID'),
    accountKey,
    sasToken: get('AZURE_ACCOUNT_SAS', 'AZURE_STORAGE_SAS_TOKEN'),
    connectionString: get('AZURE_STORAGE_CONNECTION_STRING'),
    endpoint: bsl.storageAccountURI || get('AZURE_BLOB_ENDPOINT'),
    endpointSuffix,
  };
  // Velero's default: no key anywhere, so it is listed through Resource Manager with the
  // service principal (or workload / managed identity) of the credentials file.
  const subscriptionId = bsl.subscriptionId || get('AZURE_SUBSCRIPTION_ID');
  const resourceGroup = bsl.resourceGroup || get('AZURE_RESOURCE_GROUP');
  if (!o.accountKey && !o.sasToken && !o.connectionString && subscriptionId && resourceGroup) {
    const cloud = CLOUD_ENDPOINTS[cloudSuffix] ?? CLOUD_ENDPOINTS['core.windows.net']!;
    o.listKeys = {
      subscriptionId,
      resourceGroup,
      tenantId: get('AZURE_TENANT_ID'),
      clientId: get('AZURE_CLIENT_ID'),
      clientSecret: get('AZURE_CLIENT_SECRET'),
      federatedTokenFile: get('AZURE_FEDERATED_TOKEN_FILE'),
      authorityHost: bsl.activeDirectoryAuthorityURI || get('AZURE_AUTHORITY_HOST') || cloud.authority,
      resourceManagerEndpoint: get('AZURE_RESOURCE_MANAGER_ENDPOINT') || cloud.arm,
    };
  }
  return o;
}
