import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CairnError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { EXTENDED_OPTIONS, parseExtendedOptions, type BackendOptions } from '../engine/index.js';

/** Global flags that configure the storage backend (restic's names). */
export interface BackendFlags {
  option?: string[];
  limitUpload?: string;
  limitDownload?: string;
  cacert?: string[];
  insecureTls?: boolean;
  quiet?: boolean;
  verbose?: number;
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export function registerBackendOptions(program: Command): void {
  program
    .option('-o, --option <key=value>', `set an extended backend option (repeatable; e.g. s3.region=eu-west-1). Known: ${Object.keys(EXTENDED_OPTIONS).join(', ')}`, collect, [])
    .option('--limit-upload <KiB/s>', 'limit upload bandwidth to this many KiB/s (default: unlimited)')
    .option('--limit-download <KiB/s>', 'limit download bandwidth to this many KiB/s (default: unlimited)')
    .option('--cacert <file>', 'trust the PEM certificate(s) in this file for https backends (repeatable)', collect, [])
    .option('--insecure-tls', 'skip TLS certificate verification for https backends (insecure)');
}

function rate(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new CairnError('INVALID_ARGUMENT', `${flag} expects a whole number of KiB/s, got ${JSON.stringify(v)}`);
  return Number(v) || undefined;
}

/** Turns the global flags into backend options for the engine. */
export function backendOptionsFrom(g: BackendFlags): BackendOptions {
  const caCerts = (g.cacert ?? []).map((f) => {
    try {
      return readFileSync(f);
    } catch (e) {
      throw new CairnError('INVALID_ARGUMENT', `cannot read --cacert file ${f}: ${errorMessage(e)}`);
    }
  });
  return {
    extended: parseExtendedOptions(g.option ?? []),
    limitUploadKiB: rate(g.limitUpload, '--limit-upload'),
    limitDownloadKiB: rate(g.limitDownload, '--limit-download'),
    caCerts: caCerts.length ? caCerts : undefined,
    insecureSkipTLSVerify: g.insecureTls || undefined,
    logger: stderrLogger(g.quiet ? -1 : (g.verbose ?? 0)),
  };
}

/**
 * Backend messages for a terminal: retries and other warnings on stderr (like restic's "Save(...)
 * returned error, retrying after ..."), details only with -v. Fields never hold secrets.
 */
function stderrLogger(verbosity: number): Logger {
  const line = (level: string, msg: string, fields?: Record<string, unknown>) => {
    const f = fields ? Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ') : '';
    process.stderr.write(`${level}: ${msg}${f ? ' ' + f : ''}\n`);
  };
  const make = (bound: Record<string, unknown>): Logger => ({
    debug: (m, f) => verbosity >= 2 && line('debug', m, { ...bound, ...f }),
    info: (m, f) => verbosity >= 1 && line('info', m, { ...bound, ...f }),
    warn: (m, f) => verbosity >= 0 && line('warning', m, { ...bound, ...f }),
    error: (m, f) => line('error', m, { ...bound, ...f }),
    child: (f) => make({ ...bound, ...f }),
  });
  return make({});
}
