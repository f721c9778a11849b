// Structured logs (pino). Secrets are redacted by path so a careless `log.info({ key })` stays safe.
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'key', 'password', 'secret', 'token', 'accessKey', 'currentKey', 'previousKey', 'csrfToken', 'cookie',
  '*.key', '*.password', '*.secret', '*.token', '*.accessKey', '*.csrfToken', '*.cookie',
  'req.headers.cookie', 'req.headers.authorization', 'req.headers["x-csrf-token"]',
];

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', name = 'nemo'): Logger {
  const pretty = process.stdout.isTTY && process.env.LOG_FORMAT !== 'json' && process.env.NODE_ENV !== 'production';
  return pino({
    name,
    level,
    redact: { paths: REDACT, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss' } } } : {}),
  });
}

/** A logger that writes nothing: for tests and library defaults. */
export const silentLogger: Logger = pino({ level: 'silent' });

// pino appends a child's bindings to its parent's, so `child({ part })` under a logger that has a
// part already writes the key twice in one JSON line. Parts therefore nest through partLogger:
// each part logger is made from the logger without a part, with the joined name ("http/admin").
const partBases = new WeakMap<Logger, Logger>();

/** A logger for one part of the program; under another part logger the names join: `http/admin`. */
export function partLogger(log: Logger, part: string): Logger {
  const parent = log.bindings().part as string | undefined;
  const base = parent === undefined ? log : partBases.get(log);
  // A part bound some other way cannot be replaced: the sub-part goes under its own key.
  if (!base) return log.child({ subpart: part });
  const child = base.child({ part: parent === undefined ? part : `${parent}/${part}` });
  partBases.set(child, base);
  return child;
}
