/** Progress port: engines report through this; front ends turn it into progress lines, JSON or CR status. */
export interface BackupProgress {
  filesDone: number;
  dirsDone: number;
  bytesDone: number;
  /** Totals found by the scanner so far (may still grow while scanning). */
  totalFiles: number;
  totalBytes: number;
  scanFinished: boolean;
  errors: number;
  currentFiles: string[];
  elapsedMs: number;
}

export interface Reporter {
  /** Called at most a few times per second. */
  progress?(p: BackupProgress): void;
  /** A non-fatal problem with one item (unreadable file, metadata that could not be restored...). */
  itemError?(path: string, err: Error): void;
  /** A verbose per-item message (new/changed/unmodified file...). */
  item?(action: string, path: string, size?: number): void;
}

export const nullReporter: Reporter = {};
