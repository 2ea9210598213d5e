#!/usr/bin/env node
/**
 * Entry point behind the image's `/velero` shim: translates Velero's node-agent command line
 * (see cli/velero-compat.ts) and runs cairn's CLI in this same process, so tini's signals reach
 * the agent directly.
 */
import { fileURLToPath } from 'node:url';
import { errorMessage } from './core/errors.js';
import { translateVeleroArgs } from './cli/velero-compat.js';

let argv: string[];
try {
  const t = translateVeleroArgs(process.argv.slice(2));
  for (const w of t.warnings) process.stderr.write(`cairn (velero compatibility): ${w}\n`);
  argv = t.argv;
} catch (e) {
  process.stderr.write(`cairn (velero compatibility): ${errorMessage(e)}\n`);
  process.exit(2);
}
process.argv = [process.argv[0]!, fileURLToPath(new URL('./cli.js', import.meta.url)), ...argv];
await import('./cli.js');
