/**
 * What the installed Velero version allows, read from its CRDs (contract §2.4, §5.3, §13): the
 * phase enums of PVB/PVR (never write a phase the CRD lacks), whether `incrementalBytes` exists,
 * and which repository CR kind and password secret the installation uses.
 */
import { BASE_PHASES, type Phase } from './velero.js';
import { PASSWORD_SECRETS } from './repo-access.js';

export interface Capabilities {
  pvbPhases: ReadonlySet<Phase>;
  pvrPhases: ReadonlySet<Phase>;
  /** PVB status.incrementalBytes is in the schema (1.18+), or the schema is unknown. */
  incrementalBytes: boolean;
  /** Plural of the repository CR: backuprepositories (≥1.10) or resticrepositories (≤1.9). */
  repoPlural: 'backuprepositories' | 'resticrepositories';
  /** Password secret names to try, in order. */
  passwordSecrets: readonly string[];
  /** Human summary for the startup log. */
  summary: string;
}

type Json = Record<string, unknown> | undefined;

function dig(o: unknown, ...path: string[]): unknown {
  let cur = o;
  for (const p of path) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** The status schema of the served v1 version of a CRD. */
function statusSchema(crd: Json): Record<string, unknown> | undefined {
  const versions = dig(crd, 'spec', 'versions');
  if (!Array.isArray(versions)) return undefined;
  const v = versions.find((x) => (x as { name?: string }).name === 'v1') ?? versions.find((x) => (x as { storage?: boolean }).storage);
  return dig(v, 'schema', 'openAPIV3Schema', 'properties', 'status') as Record<string, unknown> | undefined;
}

export function phasesOf(crd: Json): ReadonlySet<Phase> {
  const e = dig(statusSchema(crd), 'properties', 'phase', 'enum');
  if (Array.isArray(e) && e.length > 0) return new Set(e.filter((x): x is Phase => typeof x === 'string'));
  // Unknown or unconstrained: only the four values every version accepts.
  return new Set(BASE_PHASES);
}

export function detectCapabilities(pvbCrd: Json, pvrCrd: Json, backupRepoCrd: Json, resticRepoCrd: Json): Capabilities {
  const pvbPhases = phasesOf(pvbCrd);
  const pvrPhases = phasesOf(pvrCrd);
  const props = dig(statusSchema(pvbCrd), 'properties') as Record<string, unknown> | undefined;
  const incrementalBytes = !props || 'incrementalBytes' in props;
  const old = !backupRepoCrd && !!resticRepoCrd;
  const repoPlural = old ? 'resticrepositories' : 'backuprepositories';
  const passwordSecrets = old ? [PASSWORD_SECRETS[1], PASSWORD_SECRETS[0]] : [PASSWORD_SECRETS[0], PASSWORD_SECRETS[1]];
  const line = old ? 'Velero ≤1.9 (ResticRepository)' : pvbPhases.has('Canceled') ? 'Velero ≥1.17 (8-phase CRDs)' : 'Velero 1.10–1.16 (BackupRepository)';
  return { pvbPhases, pvrPhases, incrementalBytes, repoPlural, passwordSecrets, summary: line };
}
