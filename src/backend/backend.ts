/**
 * A backend stores opaque named files of a few types. It knows nothing of packs, keys or
 * encryption (that is the repository's job). Every implementation runs the same contract tests.
 */
export type FileType = 'config' | 'key' | 'snapshot' | 'index' | 'lock' | 'pack';

export const FILE_TYPES: readonly FileType[] = ['config', 'key', 'snapshot', 'index', 'lock', 'pack'];

export interface FileHandle {
  type: FileType;
  /** The file's ID (64 hex characters), or "config" for the config file. */
  name: string;
}

/** A file being written by a Backend's createSpool(). */
export interface SpoolFile {
  /** Writes bytes at a position (writes may be in flight at once, for different ranges). */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Makes the file durable and gives it its name (an ID); the spool is closed afterwards. */
  commit(name: string): Promise<void>;
  /** Closes and deletes the unfinished file. */
  discard(): Promise<void>;
}

export interface FileInfo {
  name: string;
  size: number;
}

export interface Backend {
  /** Where the repository lives, for messages (never contains credentials). */
  readonly location: string;
  /**
   * How many requests this backend serves well at once (its connection limit), when it has one:
   * engines size their pack upload/download parallelism by it. Absent for local disks.
   */
  readonly connections?: number;
  /** Prepares an empty repository (directories, bucket prefix). Fails if a config already exists. */
  create(): Promise<void>;
  /**
   * Stores a file. The data can be sent again (a retry is always possible). Files are
   * content-addressed and never modified: save fails with REPO_EXISTS-like semantics only where
   * the store supports create-only writes; otherwise identical content may be rewritten.
   */
  save(h: FileHandle, data: Uint8Array): Promise<void>;
  /**
   * Reads a file or a byte range of it. Throws CairnError NOT_FOUND when it does not exist.
   * `into` (optional, for ranged reads): a buffer the backend may read into instead of allocating
   * one — the result is then a view of it; backends that cannot fill it in place ignore it.
   */
  load(h: FileHandle, offset?: number, length?: number, into?: Buffer): Promise<Buffer>;
  /**
   * Optional (local disks): a new file of this type written piece by piece where it will live
   * and published under its name only by commit(), so a writer need not hold a whole pack in
   * memory. Until commit() it has no valid name (lists skip it); after a crash it is an orphan
   * no reader sees. Backends without it get whole files through save().
   */
  createSpool?(type: FileType): Promise<SpoolFile>;
  stat(h: FileHandle): Promise<FileInfo>;
  /** Lists files of a type (names that are not IDs are skipped, as restic does). */
  list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo>;
  remove(h: FileHandle): Promise<void>;
  close(): Promise<void>;
}
