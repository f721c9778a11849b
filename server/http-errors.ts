// One error shape for the whole JSON API: {error: "<message for people>", code: "<for programs>"}.
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import { ZodError } from 'zod';
import { RedisUnavailableError } from '../core/redis.js';
import type { Logger } from '../core/logger.js';
import { noteRoute } from './metrics.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/**
 * Wraps an async handler so a rejection reaches the error handler (express 5 does this too;
 * explicit for clarity), noting the route pattern for the metrics first.
 */
export const handle =
  (fn: (req: Request, res: Response, next: NextFunction) => Promise<unknown>): RequestHandler =>
  (req, res, next) => {
    noteRoute(req, res);
    fn(req, res, next).catch(next);
  };

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (res.headersSent) {
      res.end();
      return;
    }
    if (err instanceof HttpError) {
      res.status(err.status).json({ error: err.message, code: err.code, ...err.extra });
      return;
    }
    if (err instanceof ZodError) {
      const first = err.issues[0];
      const where = first?.path.length ? `${first.path.join('.')}: ` : '';
      res.status(400).json({ error: `${where}${first?.message ?? 'invalid request'}`, code: 'invalid_request' });
      return;
    }
    if (err instanceof RedisUnavailableError) {
      log.warn({ path: req.path }, 'request failed: redis unavailable');
      res.status(503).json({ error: 'Storage is unavailable right now; try again shortly', code: 'storage_unavailable' });
      return;
    }
    const e = err as { type?: string; status?: number; message?: string };
    if (e?.type === 'entity.too.large') {
      res.status(413).json({ error: 'Request body too large', code: 'too_large' });
      return;
    }
    if (e?.type === 'entity.parse.failed' || e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
      res.status(400).json({ error: 'Request body is not valid JSON', code: 'invalid_json' });
      return;
    }
    log.error({ err, path: req.path }, 'request failed');
    res.status(500).json({ error: 'Internal error', code: 'internal' });
  };
}

export const notFound: RequestHandler = (req, res) => {
  res.status(404).json({ error: `No such endpoint: ${req.method} ${req.path}`, code: 'not_found' });
};
