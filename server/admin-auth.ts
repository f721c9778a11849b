// Admin authentication: password login (per-IP rate-limited), Redis sessions in an HttpOnly,
// SameSite=Strict cookie, a CSRF token per session checked on every state-changing request,
// audit entries for logins, failed logins, logouts and password changes, and the first-run rule:
// a session opened with the generated one-time password can only choose a new password.
import express, { type Request, type RequestHandler, type Router } from 'express';
import { rateLimit, ipKeyGenerator } from 'express-rate-limit';
import { z } from 'zod';
import { guard, type Store } from '../core/redis.js';
import type { AuditLog } from '../core/audit/audit-log.js';
import type { ServerConfig } from './config.js';
import { handle, HttpError } from './http-errors.js';
import type { AdminPassword } from './admin-password.js';
import { MIN_ADMIN_PASSWORD_LENGTH } from './config.js';
import { verifyPassword } from './password.js';
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
  sessions: SessionStore;
  router: Router;
  /** 401 without a live session; 403 on a state-changing request without the session's CSRF token,
   * and on anything but choosing a new password while the one-time password is in use. */
  requireAdmin: RequestHandler;
}

/** Who did it, for audit entries. */
export function actorOf(req: Request): string {
  return req.adminSession ? 'admin' : 'anonymous';
}

// What a session opened with the one-time password may still reach.
const ALLOWED_BEFORE_CHANGE = new Set(['/session', '/logout', '/password']);
const MUST_CHANGE = 'mustChangePassword';

/** Refuses state-changing requests whose X-CSRF-Token does not match the session's token. */
export function checkCsrf(req: Request, session: SessionData): void {
  if (SAFE_METHODS.has(req.method)) return;
  const sent = req.get(CSRF_HEADER);
  if (!sent || !safeEqual(sent, session.csrfToken)) {
    throw new HttpError(403, 'csrf', 'Missing or wrong X-CSRF-Token header; reload the page');
  }
}

export function createAdminAuth(opts: { store: Store; config: ServerConfig; audit: AuditLog; password: AdminPassword }): AdminAuth {
  const { store, config, audit, password: adminPassword } = opts;

  const sessions = new SessionStore(store, {
    kind: 'admin',
    cookieName: ADMIN_COOKIE,
    idleMs: config.ADMIN_SESSION_MINUTES * 60_000,
    maxAgeMs: config.ADMIN_SESSION_MAX_HOURS * 3_600_000,
    secure: config.COOKIE_SECURE,
  });

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
    const session = await sessions.get(req);
    if (!session) throw new HttpError(401, 'unauthenticated', 'Not logged in, or the session expired');
    checkCsrf(req, session);
    if (session.data[MUST_CHANGE] && !ALLOWED_BEFORE_CHANGE.has(req.path)) {
      throw new HttpError(403, 'password_change_required', 'Choose a new admin password first');
    }
    req.adminSession = session;
    next();
  });

  const router = express.Router();
  const loginBody = z.object({ password: z.string().max(1024) });
  const changeBody = z.object({
    current: z.string().max(1024).optional(),
    password: z.string().max(1024).refine((p) => [...p].length >= MIN_ADMIN_PASSWORD_LENGTH, { message: `The new password needs at least ${MIN_ADMIN_PASSWORD_LENGTH} characters` }),
  });

  router.post(
    '/login',
    proxyLimiter,
    loginLimiter,
    handle(async (req, res) => {
      const { password } = loginBody.parse(req.body ?? {});
      const current = await adminPassword.current();
      const ok = password.length > 0 && (await verifyPassword(password, current.hash));
      if (!ok) {
        await audit.record({ action: 'login.failed', actor: 'anonymous', ip: req.ip ?? '', details: {}, ok: false });
        throw new HttpError(401, 'wrong_password', 'Wrong password');
      }
      // A fresh session id at every login (no fixation); the old one, if any, ends.
      await sessions.forget(req);
      const session = await sessions.create(req, res, current.mustChange ? { [MUST_CHANGE]: '1' } : {});
      await audit.record({ action: 'login', actor: 'admin', ip: req.ip ?? '', details: {}, ok: true });
      res.json({ csrfToken: session.csrfToken, expiresAt: new Date(session.expiresAt).toISOString(), mustChangePassword: current.mustChange });
    }),
  );

  // Choosing a new password. The current one is asked for, except right after signing in with the
  // one-time password (that sign-in just proved it).
  router.post(
    '/password',
    requireAdmin,
    handle(async (req, res) => {
      const body = changeBody.parse(req.body ?? {});
      const current = await adminPassword.current();
      if (current.fromEnvironment) {
        throw new HttpError(409, 'password_from_environment', 'The password is set by ADMIN_PASSWORD or ADMIN_PASSWORD_HASH; change it there and restart');
      }
      const forced = Boolean(req.adminSession!.data[MUST_CHANGE]);
      if (!forced && !(body.current && (await verifyPassword(body.current, current.hash)))) {
        throw new HttpError(403, 'wrong_password', 'The current password is wrong');
      }
      if (await verifyPassword(body.password, current.hash)) throw new HttpError(400, 'same_password', 'Choose a password different from the current one');
      await adminPassword.change(body.password);
      // A new session id with the new password; the old session ends.
      await sessions.forget(req);
      const session = await sessions.create(req, res);
      await audit.record({ action: 'password.change', actor: 'admin', ip: req.ip ?? '', details: { firstRun: forced }, ok: true });
      res.json({ csrfToken: session.csrfToken, expiresAt: new Date(session.expiresAt).toISOString(), mustChangePassword: false });
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

  // The panel calls this at page load to learn whether it is signed in (a 200 either way, so a
  // first visit shows no failed request) and to get its CSRF token.
  router.get(
    '/session',
    handle(async (req, res) => {
      const s = await sessions.get(req);
      if (!s) {
        res.json({ signedIn: false });
        return;
      }
      res.json({
        signedIn: true, csrfToken: s.csrfToken, expiresAt: new Date(s.expiresAt).toISOString(), createdAt: new Date(s.createdAt).toISOString(),
        mustChangePassword: Boolean(s.data[MUST_CHANGE]),
      });
    }),
  );

  return { sessions, router, requireAdmin };
}
