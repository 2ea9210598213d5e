/**
 * Velero's command lines, translated to cairn's, for the image's `/velero` shim (contract §12.1):
 * a user who swaps only the image of Velero's node-agent DaemonSet keeps
 *
 *   command: [/velero]   args: [node-agent, server, --features=…, --metrics-address=…, …]   (1.10+)
 *   command: [/velero]   args: [restic, server, …]                                          (≤1.9)
 *
 * and gets `cairn agent` with the flags cairn understands. Flags that only matter to Velero's own
 * agent are dropped with a warning instead of failing, so the pod does not crash-loop.
 */
import { CairnError } from '../core/errors.js';

/** Velero flags passed through to `cairn agent` unchanged (same name, same meaning). */
export const FORWARDED_FLAGS: ReadonlySet<string> = new Set(['metrics-address', 'log-level', 'log-format', 'node-agent-configmap']);

/**
 * Velero node-agent/restic server flags that take a value. Needed to parse the `--flag value`
 * spelling; Velero's installer always writes `--flag=value`, which needs no table.
 */
const VALUE_FLAGS: ReadonlySet<string> = new Set([
  'log-level',
  'log-format',
  'features',
  'metrics-address',
  'node-agent-configmap',
  'resource-timeout',
  'data-mover-prepare-timeout',
  'kube-client-qps',
  'kube-client-burst',
  'kube-client-content-type',
  'backup-repository-configmap',
  'priority-class-name',
  'kubeconfig',
  'kubecontext',
  'namespace',
  'n',
]);

export interface Translation {
  /** Arguments for cairn's CLI (without node and the script path). */
  argv: string[];
  /** Human-readable notes about what was dropped or changed. */
  warnings: string[];
}

/** Translates the arguments given to `/velero` into cairn's. Throws INVALID_ARGUMENT for shapes we do not serve. */
export function translateVeleroArgs(args: readonly string[]): Translation {
  const [first, second, ...rest] = args;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    return { argv: ['agent', '--help'], warnings: [] };
  }
  if (first === 'version') return { argv: ['--version'], warnings: [] };
  if ((first === 'node-agent' || first === 'restic') && second === 'server') {
    const warnings: string[] = [];
    return { argv: ['agent', ...translateServerFlags(rest, `${first} server`, warnings)], warnings };
  }
  throw new CairnError(
    'INVALID_ARGUMENT',
    `this image runs cairn, which serves only Velero's node agent: "/velero node-agent server [flags]" (or "restic server" for Velero ≤1.9); got "/velero ${args.join(' ')}"`,
  );
}

function translateServerFlags(args: readonly string[], what: string, warnings: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-') || a === '-' || a === '--') {
      warnings.push(`ignoring unexpected argument ${JSON.stringify(a)} of "${what}"`);
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (value === undefined && VALUE_FLAGS.has(name)) {
      const next = args[i + 1];
      if (next === undefined) {
        warnings.push(`ignoring --${name}: it needs a value`);
        continue;
      }
      value = next;
      i++;
    }
    if (FORWARDED_FLAGS.has(name)) {
      if (value === undefined) warnings.push(`ignoring --${name}: it needs a value`);
      else out.push(`--${name}=${value}`);
    } else {
      warnings.push(`ignoring Velero flag --${name}${value !== undefined ? `=${value}` : ''}: not used by cairn`);
    }
  }
  return out;
}
