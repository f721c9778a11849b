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

/** A malformed request (unreadable body, broken path): answered like an HttpError, logged as a warning. */
export class BadInputError extends HttpError {
  constructor(status: number, code: string, message: string) {
    super(status, code, message);
    this.name = 'BadInputError';
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
    if (err instanceof URIError) {
      // The router could not decode a path parameter.
      err = new BadInputError(400, 'bad_path', 'The path has a malformed percent-encoding (e.g. %E0%A4%A): encode ids with encodeURIComponent');
    }
    if (err instanceof BadInputError) {
      log.warn({ method: req.method, path: req.path, status: err.status, code: err.code, detail: err.message }, 'bad request');
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
    const e = err as { status?: number; expose?: boolean; message?: string };
    if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
      // Another middleware's client error (http-errors): its status, its message when meant for clients.
      log.warn({ method: req.method, path: req.path, status: e.status, detail: e.message }, 'bad request');
      res.status(e.status).json({ error: e.expose && e.message ? e.message : 'Bad request', code: 'bad_request' });
      return;
    }
    log.error({ err, path: req.path }, 'request failed');
    res.status(500).json({ error: 'Internal error', code: 'internal' });
  };
}

export const notFound: RequestHandler = (req, res) => {
  res.status(404).json({ error: `No such endpoint: ${req.method} ${req.path}`, code: 'not_found' });
};
