// The web chat's API (/api/chat). A visitor gets a cookie session holding a web user id; the key,
// limits, lockout, memory and usage are the bot's own (bot/chat-session.ts ChatSession with
// channel 'web'), so the web and WeChat follow one set of rules. Replies stream as Server-Sent
// Events over the POST response, token by token.
import { randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { z } from 'zod';
import type { ChatReply, ChatSession } from '../bot/chat-session.js';
import type { KeyService } from '../core/keys/key-service.js';
import type { Logger } from '../core/logger.js';
import type { Store } from '../core/redis.js';
import type { RuntimeSettings } from '../core/settings/runtime-settings.js';
import { checkCsrf } from './admin-auth.js';
import type { ServerConfig } from './config.js';
import { handle, HttpError } from './http-errors.js';
import { InflightRequests } from './inflight.js';
import type { Metrics } from './metrics.js';
import { RedisRateLimitStore } from './rate-limit-store.js';
import { RENEW_MS, ReplyLocks } from './reply-lock.js';
import { SessionStore, type SessionData } from './sessions.js';

export const CHAT_COOKIE = 'nemo_chat';

export interface ChatRouteDeps {
  store: Store;
  log: Logger;
  metrics: Metrics;
  config: ServerConfig;
  /** The bot's channel-independent chat (absent: the web chat answers 503). */
  session?: ChatSession;
  keys?: KeyService;
  settings?: RuntimeSettings;
  /** Shared with the shutdown code, which drains it. */
  inflight?: InflightRequests;
  keyLength?: number;
  /** The key alphabet is digits only (the phone keyboard then shows the number pad). */
  keyNumeric?: boolean;
  /** Failed key checks allowed per client IP per 15 minutes (on top of the per-user lockout). */
  verifyPerIpLimit?: number;
  /** New chat sessions per client IP per hour. */
  sessionsPerIpPerHour?: number;
}

const verifyBody = z.object({ key: z.string().max(256) });
const messageBody = z.object({ text: z.string().max(8000) });

/** HTTP status and machine code for each non-reply outcome of ChatSession.handle. */
const KIND_STATUS: Record<string, [number, string]> = {
  banned: [403, 'banned'],
  'rate-limited': [429, 'rate_limited'],
  quota: [429, 'quota_exceeded'],
  'wrong-key': [401, 'wrong_key'],
  locked: [423, 'locked'],
  'how-to-get-key': [400, 'not_a_key'],
  'key-changed': [401, 'key_changed'],
  'verify-in-private': [400, 'not_a_key'],
  unavailable: [503, 'unavailable'],
  busy: [503, 'busy'],
  timeout: [504, 'timeout'],
  interrupted: [503, 'interrupted'],
  error: [500, 'error'],
};

export function chatRoutes(deps: ChatRouteDeps): Router {
  const router = express.Router();
  const inflight = deps.inflight ?? new InflightRequests();
  const sessions = new SessionStore(deps.store, {
    kind: 'chat',
    cookieName: CHAT_COOKIE,
    idleMs: 7 * 86_400_000,
    maxAgeMs: 30 * 86_400_000,
    secure: deps.config.COOKIE_SECURE,
  });
  const replyLocks = new ReplyLocks(deps.store, (userId, chargedAt) => chat().session.limits.refund(userId, chargedAt));
  const sessionCreations = new RedisRateLimitStore(deps.store, 'chat-session');
  sessionCreations.windowMs = 3_600_000;

  const chat = (): { session: ChatSession; keys: KeyService } => {
    if (!deps.session || !deps.keys) throw new HttpError(503, 'chat_unavailable', 'The web chat is not available right now (no model loaded)');
    return { session: deps.session, keys: deps.keys };
  };

  /** The visitor's session; CSRF-checked for state-changing requests. */
  async function visitor(req: Request): Promise<SessionData & { userId: string }> {
    const s = await sessions.get(req);
    if (!s || !s.data.userId) throw new HttpError(401, 'no_session', 'Your chat session has ended; reload the page');
    checkCsrf(req, s);
    return Object.assign(s, { userId: s.data.userId });
  }

  const verifyLimiter = rateLimit({
    windowMs: 15 * 60_000,
    limit: deps.verifyPerIpLimit ?? 30,
    // Only well-formed wrong keys count: text that is no key at all costs nothing here either, so
    // junk from one address (an office NAT) cannot lock its other visitors out.
    skipSuccessfulRequests: true,
    requestWasSuccessful: (_req, res) => res.locals.wrongKey !== true,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    store: new RedisRateLimitStore(deps.store, 'chat-verify'),
    keyGenerator: (req) => ipKeyGenerator(req.ip ?? 'unknown'),
    handler: (_req, res) => {
      res.status(429).json({ error: 'Too many wrong keys from your network; try again in 15 minutes. 错误次数过多，请 15 分钟后再试。', code: 'rate_limited' });
    },
  });

  router.get(
    '/session',
    handle(async (req, res) => {
      let s = await sessions.get(req);
      if (!s?.data.userId) {
        const hits = await sessionCreations.increment(ipKeyGenerator(req.ip ?? 'unknown'));
        if (hits.totalHits > (deps.sessionsPerIpPerHour ?? 60)) {
          throw new HttpError(429, 'rate_limited', 'Too many new chat sessions from your network; try again later');
        }
        s = await sessions.create(req, res, { userId: `web:${randomBytes(8).toString('hex')}` });
      }
      const userId = s.data.userId;
      const settings = deps.settings ? (await deps.settings.get()).values : null;
      const auth = deps.keys ? await deps.keys.authorisation(userId) : { authorised: false, needsNewKey: false, until: null };
      res.set('Cache-Control', 'no-store').json({
        csrfToken: s.csrfToken,
        userId,
        authorised: auth.authorised,
        authorisedUntil: auth.until ?? null,
        needsNewKey: auth.needsNewKey,
        keyLength: deps.keyLength ?? null,
        keyNumeric: deps.keyNumeric ?? false,
        greeting: settings?.webGreeting ?? 'Enter the access key to start chatting.',
        keyHelp: settings?.keyHelpText ?? '',
        available: Boolean(deps.session && deps.keys),
      });
    }),
  );

  router.post(
    '/verify',
    verifyLimiter,
    handle(async (req, res) => {
      const v = await visitor(req);
      const { key } = verifyBody.parse(req.body ?? {});
      const { session, keys } = chat();
      const auth = await keys.authorisation(v.userId);
      if (auth.authorised) {
        res.json({ ok: true, alreadyAuthorised: true, authorisedUntil: auth.until ?? null });
        return;
      }
      if (!key.trim()) throw new HttpError(400, 'empty', 'Please enter the key. 请输入密钥。');
      const reply = await session.handle({ channel: 'web', userId: v.userId, displayName: webName(v.userId), text: key, context: 'private' });
      if (reply.kind === 'verified') {
        const after = await keys.authorisation(v.userId);
        res.json({ ok: true, message: reply.parts.join('\n'), authorisedUntil: after.until ?? null });
        return;
      }
      res.locals.wrongKey = reply.wrongKey === true;
      const lock = await keys.lockStatus(v.userId).catch(() => null);
      const [status, code] = KIND_STATUS[reply.kind] ?? [400, reply.kind];
      res.status(status).json({
        ok: false,
        code,
        error: reply.parts.join('\n') || 'The key was not accepted',
        attemptsLeft: lock && !lock.locked ? lock.attemptsLeft : 0,
        lockedUntil: lock?.locked ? lock.lockedUntil ?? null : null,
      });
    }),
  );

  router.post(
    '/reset',
    handle(async (req, res) => {
      const v = await visitor(req);
      const { session } = chat();
      res.json({ ok: true, hadMemory: await session.memory.clear(v.userId) });
    }),
  );

  router.post(
    '/messages',
    handle(async (req, res) => {
      const v = await visitor(req);
      const { text } = messageBody.parse(req.body ?? {});
      const { session, keys } = chat();
      if (!text.trim()) throw new HttpError(400, 'empty', 'Type a message first. 请输入消息。');
      const auth = await keys.authorisation(v.userId);
      if (!auth.authorised) {
        throw new HttpError(401, auth.needsNewKey ? 'key_changed' : 'unauthorised', auth.needsNewKey
          ? 'The access key has changed: enter the new key. 访问密钥已更新，请输入新密钥。'
          : 'Enter the access key first. 请先输入访问密钥。', { needsNewKey: auth.needsNewKey });
      }
      // One reply at a time per visitor, across every server process.
      const lock = await replyLocks.acquire(v.userId);
      if (!lock) throw new HttpError(409, 'reply_in_progress', 'Wait for the current reply to finish. 请等待当前回复完成。');
      const flight = inflight.begin();
      const onClose = () => {
        if (!res.writableFinished) flight.controller.abort(new Error('client went away'));
      };
      res.on('close', onClose);
      const renew = setInterval(() => void lock.renew().catch(() => undefined), RENEW_MS);
      try {
        await streamReply(req, res, session, v.userId, text, flight.signal, () => void lock.charged().catch(() => undefined));
      } finally {
        clearInterval(renew);
        res.off('close', onClose);
        await lock.release().catch(() => undefined);
        // The stream ends only once the lock is free (a visitor who sends the next message as soon
        // as a reply is done is never told a reply is still in progress), and the flight only once
        // the stream has ended (a shutdown waits for it).
        if (res.headersSent && !res.writableEnded) res.end();
        flight.end();
      }
    }),
  );

  return router;
}

function webName(userId: string): string {
  return `Web visitor ${userId.slice(-4)}`;
}

function sse(res: Response, event: string, data: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

async function streamReply(
  req: Request, res: Response, session: ChatSession, userId: string, text: string, signal: AbortSignal, onQuotaTaken: () => void,
): Promise<void> {
  res.status(200).set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    // Not no-store: Chromium reports a no-store response read through a stream reader as a failed
    // request (net::ERR_ABORTED) even when it ends normally. A POST answer is never reused from a
    // cache, and private, no-cache keeps shared caches out.
    'Cache-Control': 'private, no-cache',
    Connection: 'keep-alive',
    // Proxies (nginx) must not buffer the stream.
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders();
  sse(res, 'start', { at: new Date().toISOString() });
  const heartbeat = setInterval(() => {
    if (!res.writableEnded) res.write(': keep-alive\n\n');
  }, 15_000);
  let reply: ChatReply;
  try {
    reply = await session.handle({
      channel: 'web', userId, displayName: webName(userId), text, context: 'private', signal,
      onText: (chunk) => sse(res, 'token', { t: chunk }),
      onQuotaTaken,
      // The streamed try was rejected (wrong language, empty, blocked): the browser clears it.
      onRetry: () => sse(res, 'retry', {}),
    });
  } finally {
    clearInterval(heartbeat);
  }
  // Cancelled by a shutdown (the visitor is still connected): say so, whatever the chat made of it.
  const shuttingDown = signal.aborted && !req.socket.destroyed;
  if (shuttingDown) {
    sse(res, 'notice', {
      kind: reply.kind,
      outcome: 'error',
      code: 'restarting',
      status: 503,
      // What was generated before the cut (not remembered: the visitor sends the message again).
      partial: reply.partial ?? '',
      message: 'The server is restarting; please send your message again in a moment. 服务器正在重启，请稍后重发。',
    });
  } else if (reply.kind === 'reply' || reply.kind === 'command') {
    sse(res, 'done', {
      kind: reply.kind,
      outcome: reply.outcome,
      // The final text (cut at the stop string), which replaces what was streamed. Blocked words
      // never reach the stream (model/chat/blocked-words.ts holds the tail back until checked).
      text: reply.parts.join('\n\n'),
      parts: reply.parts,
      tokens: reply.generation?.completionTokens ?? 0,
      latencyMs: reply.generation?.latencyMs ?? null,
      finishReason: reply.generation?.finishReason ?? null,
      attempts: reply.attempts ?? null,
    });
  } else {
    const [status, code] = KIND_STATUS[reply.kind] ?? [500, reply.kind];
    sse(res, 'notice', { kind: reply.kind, outcome: reply.outcome, code, status, message: reply.parts.join('\n') });
  }
}
