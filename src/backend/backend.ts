import type { Readable } from 'node:stream';

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
  /**
   * Stores the file under its name (an ID) — made durable in place on a local disk, uploaded by
   * an object store — and closes the spool; a failed commit leaves nothing behind either.
   */
  commit(name: string): Promise<void>;
  /** Closes and deletes the unfinished file. */
  discard(): Promise<void>;
}

/**
 * The content of a file to store that lives in a local file (a spooled pack), not in memory. It
 * can be read as often as needed, whole or in ranges: every attempt of a save reads it afresh,
 * so a retry sends the same bytes again without anyone holding them all.
 */
export interface FileSource {
  readonly size: number;
  /** A new stream of the bytes [start, end) (default: all of them). */
  stream(start?: number, end?: number): Readable;
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
   * Optional: a new file of this type written piece by piece and stored under its name only by
   * commit(), so a writer need not hold a whole pack in memory. Local disks write it where it
   * will live (until commit() it has no valid name, lists skip it; after a crash it is an orphan
   * no reader sees); object stores opened by openBackend write it to a local temporary file that
   * commit() uploads (spool.ts). Backends without it get whole files through save().
   */
  createSpool?(type: FileType): Promise<SpoolFile>;
  /**
   * Optional (object stores): save() for content in a local file, streamed from it (one request
   * below the backend's multipart threshold, a multipart/block/resumable upload above). Same
   * semantics as save(). openBackend gives such backends a createSpool() that spools to a local
   * temporary file and commits through this (see spool.ts).
   */
  saveFile?(h: FileHandle, src: FileSource): Promise<void>;
  stat(h: FileHandle): Promise<FileInfo>;
  /** Lists files of a type (names that are not IDs are skipped, as restic does). */
  list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo>;
  remove(h: FileHandle): Promise<void>;
  close(): Promise<void>;
}
