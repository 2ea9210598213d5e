export interface GcsOptions {
  /**
   * Project for bucket creation. Given explicitly (GOOGLE_PROJECT_ID, or the key file's
   * project_id) so the SDK never asks google-auth-library, which may probe a metadata server.
   */
  projectId?: string;
  /** Service-account (or other google-auth) JSON key file (GOOGLE_APPLICATION_CREDENTIALS). */
  keyFilename?: string;
  /** JSON API endpoint, e.g. http://127.0.0.1:PORT for a test server. No auth is sent to it. */
  apiEndpoint?: string;
  /** Send credentials to a custom endpoint too (private service connect endpoints). */
  useAuthWithCustomEndpoint?: boolean;
  /**
   * Files up to this size go up in one multipart request; larger ones in a resumable session.
   * 16 MiB: a default pack is one request; a big one survives a broken connection midway.
   */
  resumableThreshold?: number;
  /**
   * Resumable uploads send chunks of this size (a multiple of 256 KiB; 0 = one request for the
   * whole file). Each chunk is acknowledged with 308, so a failure repeats one chunk only.
   */
  chunkSize?: number;
  /**
   * Attempts per resumable session within one save: after a failure the session is asked how
   * many bytes it holds and only the rest is sent (default 4). Other requests are tried once;
   * the retry wrapper above the backend repeats them.
   */
  sessionTries?: number;
  /** First delay between session attempts, doubled each time (default 500 ms). */
  retryDelayMs?: number;
  /** Time limit of one JSON request (whole answer) and of a download's response headers (default: stallTimeoutMs). */
  requestTimeoutMs?: number;
  /** Abort a transfer that moves no bytes for this long; it then counts as retryable (default 60 s). */
  stallTimeoutMs?: number;
  /** Page size for listings (the service caps it at 1000). */
  listPageSize?: number;
}

/** What a Velero BackupStorageLocation adds for GCS (contract §6.2). */
export interface GcsBslConfig {
  /** The materialised BSL credential file; else GOOGLE_APPLICATION_CREDENTIALS. */
  credentialsFile?: string;
}

/**
 * Options from the environment, as restic and Velero use it: GOOGLE_APPLICATION_CREDENTIALS (key
 * file), GOOGLE_PROJECT_ID (restic; GOOGLE_CLOUD_PROJECT and GCLOUD_PROJECT also work), and
 * STORAGE_EMULATOR_HOST for a test server.
 */
export function gcsOptionsFromEnv(env: NodeJS.ProcessEnv = process.env, bsl: GcsBslConfig = {}): GcsOptions {
  return {
    keyFilename: bsl.credentialsFile || env.GOOGLE_APPLICATION_CREDENTIALS || undefined,
    projectId: env.GOOGLE_PROJECT_ID || env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || undefined,
    apiEndpoint: env.STORAGE_EMULATOR_HOST || undefined,
  };
}
