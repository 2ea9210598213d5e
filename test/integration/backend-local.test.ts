import { LocalBackend } from '../../src/backend/local.js';
import { LimitedBackend } from '../../src/backend/limit.js';
import { RetryBackend } from '../../src/backend/retry.js';
import { tempDir } from '../support/env.js';
import { backendContract } from './backend-contract.js';

backendContract('local', async () => {
  const t = tempDir('cairn-backend-local-');
  return { backend: new LocalBackend(`${t.dir}/repo`), cleanup: async () => t.cleanup() };
}, { savesFromFiles: false }); // packs are written in place (createSpool), there is nothing to upload

// The wrappers must not change what a backend does.
backendContract('local behind limit + retry', async () => {
  const t = tempDir('cairn-backend-local-');
  const backend = new RetryBackend(new LimitedBackend(new LocalBackend(`${t.dir}/repo`), { connections: 3 }), { maxAttempts: 3, initialDelayMs: 1 });
  return { backend, cleanup: async () => t.cleanup() };
}, { listFiles: 300, largeFileBytes: 3 << 20, spools: false, savesFromFiles: false }); // the wrappers pass neither through for a local disk
