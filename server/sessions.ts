// Cookie sessions kept in Redis (so any number of server processes share them and a restart logs
// nobody out). The cookie holds a random id; Redis holds only its SHA-256, so a leaked dump of
// Redis does not hand out live sessions. Each session carries its own CSRF token.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { guard, type Store } from '../core/redis.js';

export interface SessionData {
  /** Random id of the session, also used as the subject in audit entries (shortened). */
  sid: string;
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
  ip: string;
  /** Kind-specific fields (the web chat keeps its user id here). */
  data: Record<string, string>;
}

export interface SessionOptions {
  /** Redis key namespace and cookie name differ per kind: 'admin' or 'chat'. */
  kind: string;
  cookieName: string;
  idleMs: number;
  maxAgeMs: number;
  secure: 'auto' | 'always' | 'never';
}

const hashId = (id: string) => createHash('sha256').update(id).digest('hex');

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!name || name in out) continue;
    try {
      out[name] = decodeURIComponent(value);
    } catch {
      out[name] = value;
    }
  }
  return out;
}

/** Constant-time comparison of two strings of any length. */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

export class SessionStore {
  constructor(
    private readonly store: Store,
    readonly options: SessionOptions,
  ) {}

  private key(id: string): string {
    return this.store.key('session', this.options.kind, hashId(id));
  }

  async create(req: Request, res: Response, data: Record<string, string> = {}): Promise<SessionData> {
    const id = randomBytes(32).toString('base64url');
    const now = Date.now();
    const session: SessionData = {
      sid: hashId(id).slice(0, 12),
      csrfToken: randomBytes(24).toString('base64url'),
      createdAt: now,
      expiresAt: Math.min(now + this.options.idleMs, now + this.options.maxAgeMs),
      ip: req.ip ?? '',
      data,
    };
    await guard(() => this.store.redis.set(this.key(id), JSON.stringify(session), 'PX', this.options.idleMs));
    this.setCookie(req, res, id);
    return session;
  }

  /** The live session of this request, renewed (sliding idle expiry), or null. */
  async get(req: Request): Promise<SessionData | null> {
    const id = parseCookies(req.headers.cookie)[this.options.cookieName];
    if (!id || id.length > 100) return null;
    const key = this.key(id);
    // Read and renew the idle expiry in one round trip (GETEX, Redis ≥ 6.2).
    const raw = await guard(() => this.store.redis.getex(key, 'PX', this.options.idleMs));
    if (!raw) return null;
    const session = JSON.parse(raw) as SessionData;
    const now = Date.now();
    const hardEnd = session.createdAt + this.options.maxAgeMs;
    if (now >= hardEnd) {
      await guard(() => this.store.redis.del(key));
      return null;
    }
    const ttl = Math.min(this.options.idleMs, hardEnd - now);
    session.expiresAt = now + ttl;
    // Near the hard limit the idle renewal would outlive it: cut it back.
    if (ttl < this.options.idleMs) await guard(() => this.store.redis.pexpire(key, ttl));
    return session;
  }

  /** Ends the request's session in Redis (the cookie stays; it no longer opens anything). */
  async forget(req: Request): Promise<void> {
    const id = parseCookies(req.headers.cookie)[this.options.cookieName];
    if (id && id.length <= 100) await guard(() => this.store.redis.del(this.key(id)));
  }

  /** Ends the session and clears the cookie. */
  async destroy(req: Request, res: Response): Promise<void> {
    await this.forget(req);
    res.append('Set-Cookie', `${this.options.cookieName}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${this.secure(req) ? '; Secure' : ''}`);
  }

  private secure(req: Request): boolean {
    return this.options.secure === 'always' || (this.options.secure === 'auto' && req.secure);
  }

  private setCookie(req: Request, res: Response, id: string): void {
    // A browser-session cookie: the server-side expiry is the one that counts.
    res.append('Set-Cookie', `${this.options.cookieName}=${id}; Path=/; HttpOnly; SameSite=Strict${this.secure(req) ? '; Secure' : ''}`);
  }
}
