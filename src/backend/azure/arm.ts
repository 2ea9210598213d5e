/**
 * Velero's default Azure credential path (contract §6.2 b): no storage key is configured, so the
 * key is fetched from Azure Resource Manager ("list keys" on the storage account) with an Azure AD
 * token of a service principal (client secret), a workload identity (federated token file) or a
 * managed identity (instance metadata service). Plain HTTPS requests; no Azure identity SDK.
 */
import { readFileSync } from 'node:fs';
import { CairnError, errorMessage } from '../../core/errors.js';
import { BackendError, isRetryableStatus, parseRetryAfter } from '../errors.js';

export interface ArmKeySource {
  subscriptionId: string;
  resourceGroup: string;
  accountName: string;
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  /** Workload identity: a file holding a federated token (AZURE_FEDERATED_TOKEN_FILE). */
  federatedTokenFile?: string;
  /** Azure AD authority, e.g. https://login.microsoftonline.com (AZURE_AUTHORITY_HOST, a BSL's activeDirectoryAuthorityURI). */
  authorityHost: string;
  /** Resource Manager endpoint, e.g. https://management.azure.com. */
  resourceManagerEndpoint: string;
  /** Managed identity endpoint (default: the instance metadata service). */
  imdsEndpoint?: string;
}

/** Azure AD authority and Resource Manager endpoint per cloud (go-autorest names). */
export const CLOUD_ENDPOINTS: Record<string, { authority: string; arm: string }> = {
  'core.windows.net': { authority: 'https://login.microsoftonline.com', arm: 'https://management.azure.com' },
  'core.usgovcloudapi.net': { authority: 'https://login.microsoftonline.us', arm: 'https://management.usgovcloudapi.net' },
  'core.chinacloudapi.cn': { authority: 'https://login.chinacloudapi.cn', arm: 'https://management.chinacloudapi.cn' },
  'core.cloudapi.de': { authority: 'https://login.microsoftonline.de', arm: 'https://management.microsoftazure.de' },
};

const TIMEOUT_MS = 30_000;
/** The metadata service answers at once on Azure VMs; elsewhere nothing listens, so give up soon. */
const IMDS_TIMEOUT_MS = 5_000;

async function request(url: string, init: RequestInit, what: string, timeoutMs = TIMEOUT_MS): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new BackendError(`azure: ${what} failed: ${errorMessage(e)}`, { cause: e, retryable: true });
  }
  const text = await res.text().catch(() => '');
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    if (res.ok) throw new BackendError(`azure: ${what}: answer is not JSON`, { retryable: true });
  }
  if (!res.ok) {
    // AAD: {error, error_description}; ARM: {error: {code, message}}
    const err = body.error as { code?: string; message?: string } | string | undefined;
    const detail = typeof err === 'string' ? `${err}: ${String(body.error_description ?? '').split('\n')[0]}` : err ? `${err.code}: ${err.message}` : text.slice(0, 200);
    if (res.status === 400 || res.status === 401 || res.status === 403) {
      throw new CairnError('PERMISSION', `azure: ${what} refused (HTTP ${res.status} ${detail})`);
    }
    if (res.status === 404) throw new CairnError('NOT_FOUND', `azure: ${what}: not found (${detail})`);
    throw new BackendError(`azure: ${what} failed: HTTP ${res.status} ${detail}`, {
      status: res.status,
      retryable: isRetryableStatus(res.status),
      retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), Date.now()),
    });
  }
  return body;
}

/** An Azure AD access token for Resource Manager. */
export async function armToken(s: ArmKeySource): Promise<string> {
  const scope = `${s.resourceManagerEndpoint.replace(/\/+$/, '')}/.default`;
  const tokenUrl = () => `${s.authorityHost.replace(/\/+$/, '')}/${encodeURIComponent(s.tenantId!)}/oauth2/v2.0/token`;
  let body: Record<string, unknown>;
  if (s.clientSecret || s.federatedTokenFile) {
    if (!s.tenantId || !s.clientId) throw new CairnError('INVALID_ARGUMENT', 'azure: a service principal needs AZURE_TENANT_ID and AZURE_CLIENT_ID');
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: s.clientId, scope });
    if (s.clientSecret) form.set('client_secret', s.clientSecret);
    else {
      let assertion: string;
      try {
        assertion = readFileSync(s.federatedTokenFile!, 'utf8').trim();
      } catch (e) {
        throw new CairnError('INVALID_ARGUMENT', `azure: cannot read the federated token file ${s.federatedTokenFile}: ${errorMessage(e)}`, { cause: e });
      }
      form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      form.set('client_assertion', assertion);
    }
    body = await request(tokenUrl(), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() }, 'Azure AD token request');
  } else {
    // managed identity through the instance metadata service
    const u = new URL(s.imdsEndpoint ?? 'http://169.254.169.254/metadata/identity/oauth2/token');
    u.searchParams.set('api-version', '2018-02-01');
    u.searchParams.set('resource', `${s.resourceManagerEndpoint.replace(/\/+$/, '')}/`);
    if (s.clientId) u.searchParams.set('client_id', s.clientId);
    body = await request(u.toString(), { headers: { Metadata: 'true' } }, 'managed identity token request', IMDS_TIMEOUT_MS);
  }
  if (typeof body.access_token !== 'string' || !body.access_token) throw new BackendError('azure: token answer without access_token', { retryable: true });
  return body.access_token;
}

/** The account key with full permission, as Velero picks it ("list keys" on the storage account). */
export async function listAccountKey(s: ArmKeySource): Promise<string> {
  const token = await armToken(s);
  const url =
    `${s.resourceManagerEndpoint.replace(/\/+$/, '')}/subscriptions/${encodeURIComponent(s.subscriptionId)}` +
    `/resourceGroups/${encodeURIComponent(s.resourceGroup)}/providers/Microsoft.Storage/storageAccounts/${encodeURIComponent(s.accountName)}` +
    `/listKeys?api-version=2019-06-01`;
  const body = await request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-length': '0' } }, `list keys of storage account ${s.accountName}`);
  const keys = Array.isArray(body.keys) ? (body.keys as Array<{ value?: unknown; permissions?: unknown }>) : [];
  const full = keys.find((k) => typeof k.value === 'string' && String(k.permissions).toLowerCase() === 'full');
  if (!full) throw new CairnError('PERMISSION', `azure: storage account ${s.accountName} has no key with full permission`);
  return full.value as string;
}
