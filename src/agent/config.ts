/** The agent's configuration (flags and environment) and Velero's node-agent ConfigMap format. */
import { CairnError } from '../core/errors.js';

export type KopiaItems = 'fail' | 'ignore';

export interface AgentConfig {
  kubeconfig?: string;
  nodeName: string;
  namespace: string;
  hostPodsDir: string;
  metricsAddress: string;
  /** Items processed at once on this node (PVB and PVR together). */
  concurrency: number;
  /** Items processed at once per repository. */
  perRepoConcurrency: number;
  /** Name of Velero's node-agent ConfigMap (its loadConcurrency overrides `concurrency`). */
  nodeAgentConfigMap?: string;
  kopiaItems: KopiaItems;
  /** Minimum time between two progress writes on one object. */
  progressIntervalMs: number;
  /** Re-examines every cached object this often (missed events, owner changes). */
  resyncIntervalMs: number;
  /** Time SIGTERM leaves for failing running items before the process exits. */
  shutdownGraceMs: number;
  /** Initialise missing restic repositories that a repository CR asks for. */
  initRepositories: boolean;
  logLevel: string;
  /** Directory for per-BSL credential files and CA bundles (Velero uses /tmp/credentials). */
  credentialsDir: string;
  /**
   * How long a backup waits for the repository while someone holds an exclusive lock (prune,
   * check) before failing; 0 fails at once, like restic without --retry-lock.
   */
  retryLockMs?: number;
  /** Node path prefixes whose hostPath volumes may be backed up and restored (none by default). */
  allowHostPaths?: string[];
  /** Where those node paths are mounted into the agent (node `/srv/x` at `<hostRootDir>/srv/x`). */
  hostRootDir?: string;
  /** Repository maintenance under a per-repository Lease (see standalone/maintenance-controller.ts); off when undefined. */
  maintenance?: MaintenanceConfig;
}

export interface MaintenanceConfig {
  /** Prune (after forgetting by the recorded retention policies) this often, unless a repository CR sets maintenanceFrequency. */
  pruneIntervalMs: number;
  /** Check this often (0: never). */
  checkIntervalMs: number;
  /** restic's --read-data-subset for the check; empty: metadata only. */
  readDataSubset: string;
  /** prune --max-unused. */
  maxUnused?: string;
  /** How often each agent looks for due work. */
  pollMs: number;
  leaseDurationMs: number;
  /** How long prune/check wait for running backups' locks. */
  retryLockMs: number;
}

export const DEFAULTS = {
  namespace: 'velero',
  hostPodsDir: '/host_pods',
  metricsAddress: ':8085',
  concurrency: 1,
  perRepoConcurrency: 1,
  kopiaItems: 'fail' as KopiaItems,
  // Velero's restic path samples every 10 s; never below 5 s so API writes stay rare.
  progressIntervalMs: 10_000,
  resyncIntervalMs: 60_000,
  shutdownGraceMs: 20_000,
  logLevel: 'info',
  credentialsDir: '/tmp/credentials',
  // A backup that finds prune's exclusive lock waits rather than failing the PVB.
  retryLockMs: 30 * 60_000,
  maintenance: {
    // Velero's default restic maintenance frequency
    pruneIntervalMs: 7 * 24 * 3600_000,
    checkIntervalMs: 7 * 24 * 3600_000,
    readDataSubset: '5%',
    pollMs: 5 * 60_000,
    leaseDurationMs: 60_000,
    retryLockMs: 30 * 60_000,
  } satisfies MaintenanceConfig,
};

export const MIN_PROGRESS_INTERVAL_MS = 5_000;

export function positiveInt(v: string | undefined, what: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CairnError('INVALID_ARGUMENT', `${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

// --- Velero node-agent ConfigMap (1.13+): {"loadConcurrency": {"globalConfig": N, "perNodeConfig": [...]}} ---

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface LoadConcurrency {
  globalConfig?: number;
  perNodeConfig?: Array<{ nodeSelector: LabelSelector; number: number }>;
}

export function selectorMatches(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.operator) {
      case 'In':
        if (!has || !(r.values ?? []).includes(labels[r.key]!)) return false;
        break;
      case 'NotIn':
        if (has && (r.values ?? []).includes(labels[r.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/**
 * Reads the ConfigMap's JSON document (created with `kubectl create cm --from-file`, so it is the
 * value of its only key) and returns its loadConcurrency section, if any.
 */
export function parseNodeAgentConfig(data: Record<string, string>): LoadConcurrency | undefined {
  const values = Object.values(data);
  if (values.length === 0) return undefined;
  if (values.length > 1) throw new CairnError('INVALID_ARGUMENT', `node-agent ConfigMap must hold one JSON document, found ${values.length} keys`);
  let doc: { loadConcurrency?: LoadConcurrency };
  try {
    doc = JSON.parse(values[0]!) as { loadConcurrency?: LoadConcurrency };
  } catch (e) {
    throw new CairnError('INVALID_ARGUMENT', `node-agent ConfigMap is not valid JSON: ${(e as Error).message}`);
  }
  return doc?.loadConcurrency;
}

/** Velero's rule: the smallest number among the matching per-node entries wins, else the global number. */
export function concurrencyFor(lc: LoadConcurrency, nodeLabels: Record<string, string>, fallback: number): number {
  let best: number | undefined;
  for (const e of lc.perNodeConfig ?? []) {
    if (!(e.number > 0)) continue;
    if (!selectorMatches(e.nodeSelector ?? {}, nodeLabels)) continue;
    if (best === undefined || e.number < best) best = e.number;
  }
  if (best !== undefined) return best;
  if (lc.globalConfig !== undefined && lc.globalConfig > 0) return lc.globalConfig;
  return fallback;
}
