/**
 * The agent's logger: pino, JSON by default (one object per line, `level` as a word, ISO time), or
 * logrus-style text like Velero's default `--log-format text`. Every finished line is scrubbed
 * (redact.ts) before it is written, so a secret handed to the logger by mistake never reaches output.
 */
import pino from 'pino';
import { CairnError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { redactFields, redactText } from './redact.js';

export type LogFormat = 'json' | 'text';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** Something lines can be written to (a stream, or a test's collector). */
export interface LogSink {
  write(line: string): unknown;
}

export interface LoggerOptions {
  /** pino levels, plus Velero's (logrus) names `warning` and `panic`. Default info. */
  level?: string;
  format?: LogFormat;
  /** Default: standard output, written synchronously so nothing is lost when the process exits. */
  destination?: LogSink;
  /** Fields on every line (e.g. { node }). Default: none (not even pid/hostname). */
  base?: Record<string, unknown>;
}

/** Maps a user-given level (pino or logrus spelling) to pino's. */
export function normalizeLevel(level: string): LogLevel {
  const l = level.trim().toLowerCase();
  switch (l) {
    case 'warning':
      return 'warn';
    case 'panic':
      return 'fatal';
    case 'trace':
    case 'debug':
    case 'info':
    case 'warn':
    case 'error':
    case 'fatal':
    case 'silent':
      return l;
    default:
      throw new CairnError('INVALID_ARGUMENT', `invalid log level ${JSON.stringify(level)} (one of trace, debug, info, warning, error, fatal, panic)`);
  }
}

export function parseLogFormat(format: string): LogFormat {
  const f = format.trim().toLowerCase();
  if (f === 'json' || f === 'text') return f;
  throw new CairnError('INVALID_ARGUMENT', `invalid log format ${JSON.stringify(format)} (json or text)`);
}

export function createLogger(o: LoggerOptions = {}): pino.Logger {
  const level = normalizeLevel(o.level ?? 'info');
  const sink: LogSink = o.destination ?? pino.destination({ fd: 1, sync: true });
  return pino(
    {
      level,
      base: o.base ?? null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    redactingStream(sink, o.format ?? 'json'),
  );
}

/** The core Logger port over a pino logger, for engine code that takes a Logger. */
export function toLoggerPort(p: pino.Logger): Logger {
  const call = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: Record<string, unknown>) => {
    if (fields) p[level](fields, msg);
    else p[level](msg);
  };
  return {
    debug: call('debug'),
    info: call('info'),
    warn: call('warn'),
    error: call('error'),
    child: (fields) => toLoggerPort(p.child(fields)),
  };
}

/**
 * The one place every line passes: pino's finished JSON record (message, child bindings, serialized
 * errors included) is scrubbed here, then written as JSON or as text. Redacting at this point,
 * rather than in pino's formatters, also covers bindings of child loggers, which pino does not
 * route through formatters.
 */
function redactingStream(sink: LogSink, format: LogFormat): pino.DestinationStream {
  return {
    write(line: string) {
      let rec: Record<string, unknown>;
      try {
        rec = redactFields(JSON.parse(line) as Record<string, unknown>);
      } catch {
        sink.write(redactText(line));
        return;
      }
      sink.write((format === 'text' ? formatTextRecord(rec) : JSON.stringify(rec)) + '\n');
    },
  };
}

// --- text format ---------------------------------------------------------------------------

export function formatTextRecord(rec: Record<string, unknown>): string {
  const { time, level, msg, err, ...rest } = rec;
  const parts: string[] = [];
  if (time !== undefined) parts.push(`time=${quote(String(time))}`);
  // logrus spells warn as "warning"
  if (level !== undefined) parts.push(`level=${level === 'warn' ? 'warning' : String(level)}`);
  parts.push(`msg=${quote(msg === undefined ? '' : String(msg))}`);
  if (err && typeof err === 'object') {
    const e = err as { message?: unknown };
    parts.push(`error=${quote(String(e.message ?? JSON.stringify(err)))}`);
  } else if (err !== undefined) {
    parts.push(`error=${quote(String(err))}`);
  }
  for (const k of Object.keys(rest).sort()) {
    const v = rest[k];
    parts.push(`${k}=${quote(typeof v === 'string' ? v : JSON.stringify(v))}`);
  }
  return parts.join(' ');
}

/** Quotes like logrus: bare when the value is a plain token, else a JSON string. */
function quote(s: string): string {
  return /^[A-Za-z0-9_\-.:/@+]+$/.test(s) ? s : JSON.stringify(s);
}
