#!/usr/bin/env node
// The CLI's entry: starts the repository key's derivation (see cli/early-key.ts), then loads the
// CLI itself (cli/main.ts) while the derivation runs on the thread pool.
import { deriveKeyEarly } from './cli/early-key.js';

deriveKeyEarly(process.argv.slice(2));
await import('./cli/main.js');
