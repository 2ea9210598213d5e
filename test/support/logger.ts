import type { Logger } from '../../src/core/logger.js';

export interface LoggedLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

/** A logger that keeps every line (children share the list), for asserting what was logged. */
export function recordingLogger(): Logger & { lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields });
  const l = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => l };
  return l;
}
