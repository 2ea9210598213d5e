/** JSON logs (pino) for the agent, behind the core Logger port. Secrets never reach a log line. */
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';
import type { Logger } from '../core/logger.js';

/** Field names whose values are replaced, at any of the first two levels. */
const SECRET_KEYS = ['password', 'secret', 'secretAccessKey', 'accessKey', 'accountKey', 'credentials', 'token', 'authorization', 'caCert'];

/** Removes userinfo (user:password@) from a repository identifier or URL. */
export function redactRepo(id: string | undefined): string | undefined {
  if (!id) return id;
  return id.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s]+)@/gi, '$1***@');
}

function wrap(p: PinoLogger): Logger {
  const call = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: Record<string, unknown>) => {
    if (fields) p[level](fields, msg);
    else p[level](msg);
  };
  return {
    debug: call('debug'),
    info: call('info'),
    warn: call('warn'),
    error: call('error'),
    child: (fields) => wrap(p.child(fields)),
  };
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const p = pino(
    {
      level,
      base: { component: 'cairn-agent' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`)], censor: '[redacted]' },
    },
    destination ?? pino.destination({ fd: 1, sync: true }),
  );
  return wrap(p);
}
