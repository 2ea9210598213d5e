/** Google Cloud Storage backend. `@google-cloud/*` is imported only inside this folder. */
export { openGcsBackend } from './gcs.js';
export { gcsOptionsFromEnv, type GcsOptions, type GcsBslConfig } from './options.js';
