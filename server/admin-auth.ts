// Admin authentication: password login (per-IP rate-limited), Redis sessions in an HttpOnly,
// SameSite=Strict cookie, a CSRF token per session checked on every state-changing request,
// and audit entries for logins, failed logins and logouts.
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { rateLimit, ipKeyGenerator } from 'express-rate-limit';
import { z } from 'zod';
import type { Logger } from '../core/logger.js';
import { guard, type Store } from '../core/redis.js';
import type { AuditLog } from './audit-log.js';
import type { ServerConfig } from './config.js';
import { handle, HttpError } from './http-errors.js';
import { hashPassword, verifyPassword } from './password.js';
import { RedisRateLimitStore } from './rate-limit-store.js';
import { safeEqual, SessionStore, type SessionData } from './sessions.js';

export const ADMIN_COOKIE = 'nemo_admin';
export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

declare module 'express-serve-static-core' {
  interface Request {
    adminSession?: SessionData;
  }
}

export interface AdminAuth {
  /** false when no admin password is configured: every admin endpoint answers 503. */
  enabled: boolean;
  sessions: SessionStore;
  router: Router;
  /** 401 without a live session; 403 on a state-changing request without the session's CSRF token. */
  requireAdmin: RequestHandler;
}

/** Who did it, for audit entries. */
export function actorOf(req: Request): string {
  return req.adminSession ? `admin:${req.adminSession.sid}` : 'anonymous';
}

/** Refuses state-changing requests whose X-CSRF-Token does not match the session's token. */
export function checkCsrf(req: Request, session: SessionData): void {
  if (SAFE_METHODS.has(req.method)) return;
  const sent = req.get(CSRF_HEADER);
  if (!sent || !safeEqual(sent, session.csrfToken)) {
    throw new HttpError(403, 'csrf', 'Missing or wrong X-CSRF-Token header; reload the page');
  }
}

export function createAdminAuth(opts: { store: Store; config: ServerConfig; audit: AuditLog; log: Logger }): AdminAuth {
  const { store, config, audit, log } = opts;
  const enabled = Boolean(config.ADMIN_PASSWORD_HASH || config.ADMIN_PASSWORD);
  // A plain password is hashed once with a random salt so both settings verify the same way.
  const storedHash: Promise<string> | null = config.ADMIN_PASSWORD_HASH
    ? Promise.resolve(config.ADMIN_PASSWORD_HASH)
    : config.ADMIN_PASSWORD
      ? hashPassword(config.ADMIN_PASSWORD)
      : null;
  if (!enabled) {
    log.warn('admin panel disabled: set ADMIN_PASSWORD (or ADMIN_PASSWORD_HASH from `npm run admin:hash-password`) to enable it');
  }

  const sessions = new SessionStore(store, {
    kind: 'admin',
    cookieName: ADMIN_COOKIE,
    idleMs: config.ADMIN_SESSION_MINUTES * 60_000,
    maxAgeMs: config.ADMIN_SESSION_MAX_HOURS * 3_600_000,
    secure: config.COOKIE_SECURE,
  });

  const disabled = (_req: Request, _res: Response, next: NextFunction) => {
    if (!enabled) {
      next(new HttpError(503, 'admin_disabled', 'The admin panel is disabled: the operator has not set ADMIN_PASSWORD'));
      return;
    }
    next();
  };

  // One `login.blocked` entry per address per window, however many attempts it blocks: a flood of
  // them would otherwise be as long as the flood.
  const auditBlocked = async (ip: string, retryAfterSeconds: number) => {
    const first = await guard(() => store.redis.set(store.key('audit', 'blocked', ip), '1', 'PX', retryAfterSeconds * 1000, 'NX'));
    if (first === 'OK') await audit.record({ action: 'login.blocked', actor: 'anonymous', ip, details: { retryAfterSeconds }, ok: false });
  };

  /** A per-address limit on failed logins; `address` says whose failures count together. */
  const failedLoginLimiter = (name: string, limit: number, address: (req: Request) => string, skip?: (req: Request) => boolean) =>
    rateLimit({
      windowMs: config.ADMIN_LOGIN_WINDOW_MINUTES * 60_000,
      limit,
      // Only failed logins count, so an operator who types the password right is never slowed.
      skipSuccessfulRequests: true,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      store: new RedisRateLimitStore(store, name),
      keyGenerator: (req) => ipKeyGenerator(address(req)),
      skip,
      handler: (req, res, _next, options) => {
        const info = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit;
        const retryAfterSeconds = Math.max(1, Math.ceil(((info?.resetTime?.getTime() ?? Date.now() + options.windowMs) - Date.now()) / 1000));
        void auditBlocked(address(req), retryAfterSeconds).catch(() => {});
        res.status(429).json({
          error: `Too many failed logins from your address; try again in ${Math.ceil(retryAfterSeconds / 60)} min`,
          code: 'rate_limited',
          retryAfterSeconds,
        });
      },
    });
  const socketAddress = (req: Request) => req.socket.remoteAddress ?? 'unknown';
  const loginLimiter = failedLoginLimiter('admin-login', config.ADMIN_LOGIN_MAX_ATTEMPTS, (req) => req.ip ?? 'unknown');
  // A trusted proxy's X-Forwarded-For names the client, so a client that can reach the server
  // through a trusted address (with TRUST_PROXY=loopback: anyone on this host) could send a new
  // address with every guess. Forwarded failures are therefore also counted per connecting
  // address, with a budget meant for everyone behind that proxy together.
  const proxyLimiter = failedLoginLimiter('admin-login-proxy', config.ADMIN_LOGIN_PROXY_MAX_ATTEMPTS, socketAddress, (req) => req.ip === socketAddress(req));

  const requireAdmin: RequestHandler = handle(async (req, _res, next) => {
    if (!enabled) throw new HttpError(503, 'admin_disabled', 'The admin panel is disabled: the operator has not set ADMIN_PASSWORD');
    const session = await sessions.get(req);
    if (!session) throw new HttpError(401, 'unauthenticated', 'Not logged in, or the session expired');
    checkCsrf(req, session);
    req.adminSession = session;
    next();
  });

  const router = express.Router();
  const loginBody = z.object({ password: z.string().max(1024) });

  router.post(
    '/login',
    disabled,
    proxyLimiter,
    loginLimiter,
    handle(async (req, res) => {
      const { password } = loginBody.parse(req.body ?? {});
      const ok = storedHash !== null && password.length > 0 && (await verifyPassword(password, await storedHash));
      if (!ok) {
        await audit.record({ action: 'login.failed', actor: 'anonymous', ip: req.ip ?? '', details: {}, ok: false });
        throw new HttpError(401, 'wrong_password', 'Wrong password');
      }
      // A fresh session id at every login (no fixation); the old one, if any, ends.
      await sessions.forget(req);
      const session = await sessions.create(req, res);
      await audit.record({ action: 'login', actor: `admin:${session.sid}`, ip: req.ip ?? '', details: {}, ok: true });
      res.json({ csrfToken: session.csrfToken, expiresAt: new Date(session.expiresAt).toISOString() });
    }),
  );

  router.post(
    '/logout',
    requireAdmin,
    handle(async (req, res) => {
      await sessions.destroy(req, res);
      await audit.record({ action: 'logout', actor: actorOf(req), ip: req.ip ?? '', details: {}, ok: true });
      res.json({ ok: true });
    }),
  );

  // The panel calls this at page load to learn whether it is logged in and to get its CSRF token.
  router.get(
    '/session',
    requireAdmin,
    handle(async (req, res) => {
      const s = req.adminSession!;
      res.json({ csrfToken: s.csrfToken, expiresAt: new Date(s.expiresAt).toISOString(), createdAt: new Date(s.createdAt).toISOString() });
    }),
  );

  return { enabled, sessions, router, requireAdmin };
}
