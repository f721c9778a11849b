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
