// The Users page's API: everyone who talked to the bot (from the usage recorder's user index),
// joined with authorisation and lockout (key service) and bans; and the per-user actions, which
// act on the very Redis keys the bot uses (through bot/user-admin.ts).
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import type { UserAdmin } from '../bot/user-admin.js';
import type { KeyService } from '../core/keys/key-service.js';
import type { UsageRecorder, UserSummary } from '../core/usage/usage-recorder.js';
import { actorOf } from './admin-auth.js';
import type { AuditLog } from '../core/audit/audit-log.js';
import { handle, HttpError } from './http-errors.js';

export interface UsersDeps {
  usage?: Pick<UsageRecorder, 'listUsers' | 'userTotals'>;
  userAdmin?: UserAdmin;
  keys?: KeyService;
  audit: AuditLog;
}

export interface UserRow
  extends Pick<UserSummary, 'userId' | 'displayName' | 'channel' | 'firstSeen' | 'lastSeen' | 'messagesToday' | 'messages' | 'tokensOut'> {
  authorised: boolean;
  /** null with authorised=true: until the key rotates. */
  authorisedUntil: string | null;
  needsNewKey: boolean;
  locked: { until: string | null } | null;
  failedAttempts: number;
  banned: { reason: string; by: string; at: string } | null;
}

const listQuery = z.object({
  q: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  filter: z.enum(['all', 'banned', 'locked']).default('all'),
});
const banBody = z.object({ reason: z.string().max(500).default('') });
// Ids come from WeChat or the web chat; anything else is refused before touching Redis.
const userIdParam = z.string().min(1).max(256);

export function usersRoutes(deps: UsersDeps): Router {
  const router = express.Router();
  const need = <T>(v: T | undefined, what: string): T => {
    if (!v) throw new HttpError(503, 'unavailable', `${what} is not available in this process`);
    return v;
  };

  async function rows(summaries: Awaited<ReturnType<UsageRecorder['listUsers']>>['users']): Promise<UserRow[]> {
    const keys = deps.keys;
    const bans = deps.userAdmin ? new Map((await deps.userAdmin.listBanned()).map((b) => [b.userId, b])) : new Map();
    return Promise.all(
      summaries.map(async (u) => {
        const [auth, lock] = keys ? await Promise.all([keys.authorisation(u.userId), keys.lockStatus(u.userId)]) : [null, null];
        const ban = bans.get(u.userId);
        return {
          userId: u.userId,
          displayName: u.displayName,
          channel: u.channel,
          firstSeen: u.firstSeen,
          lastSeen: u.lastSeen,
          messagesToday: u.messagesToday,
          messages: u.messages,
          tokensOut: u.tokensOut,
          authorised: auth?.authorised ?? false,
          authorisedUntil: auth?.until ?? null,
          needsNewKey: auth?.needsNewKey ?? false,
          locked: lock?.locked ? { until: lock.lockedUntil ?? null } : null,
          failedAttempts: lock?.failures ?? 0,
          banned: ban ? { reason: ban.reason, by: ban.by, at: ban.at } : null,
        };
      }),
    );
  }

  router.get(
    '/users',
    handle(async (req, res) => {
      const q = listQuery.parse(req.query);
      const usage = need(deps.usage, 'The user list');
      if (q.filter === 'banned') {
        // Bans are few: list them all, with whatever the usage index knows about each.
        const banned = await need(deps.userAdmin, 'Bans').listBanned();
        const found = await Promise.all(banned.map((b) => usage.userTotals(b.userId)));
        const summaries = banned.map((b, i) => found[i] ?? { userId: b.userId, displayName: null, channel: null, firstSeen: null, lastSeen: null, messagesToday: 0, messages: 0, tokensIn: 0, tokensOut: 0, errors: 0 });
        const query = q.q?.toLowerCase();
        const filtered = query ? summaries.filter((s) => s.userId.toLowerCase().includes(query) || (s.displayName ?? '').toLowerCase().includes(query)) : summaries;
        res.json({ total: filtered.length, users: await rows(filtered.slice(q.offset, q.offset + q.limit)) });
        return;
      }
      const list = await usage.listUsers({ query: q.q, limit: q.limit, offset: q.offset });
      let users = await rows(list.users);
      if (q.filter === 'locked') users = users.filter((u) => u.locked);
      res.json({ total: q.filter === 'locked' ? users.length : list.total, users });
    }),
  );

  const action = (name: string, run: (userId: string, req: Request) => Promise<unknown>) =>
    router.post(
      `/users/:id/${name}`,
      handle(async (req, res) => {
        const userId = userIdParam.parse(req.params.id);
        const result = await run(userId, req);
        await deps.audit.record({ action: `users.${name}`, actor: actorOf(req), ip: req.ip ?? '', details: { userId, ...(typeof result === 'object' && result ? result : {}) }, ok: true });
        res.json({ ok: true, userId, ...(typeof result === 'object' && result ? result : {}) });
      }),
    );

  action('ban', async (userId, req) => {
    const { reason } = banBody.parse(req.body ?? {});
    await need(deps.userAdmin, 'Bans').ban(userId, actorOf(req), reason);
    return { reason };
  });
  action('unban', async (userId) => ({ wasBanned: await need(deps.userAdmin, 'Bans').unban(userId) }));
  action('reset-quota', async (userId) => {
    await need(deps.userAdmin, 'Quota reset').resetQuota(userId);
    return {};
  });
  action('clear-memory', async (userId) => ({ hadMemory: await need(deps.userAdmin, 'Conversation memory').clearMemory(userId) }));
  action('unlock', async (userId) => {
    await need(deps.keys, 'The key service').unlock(userId);
    return {};
  });
  action('revoke', async (userId) => {
    await need(deps.keys, 'The key service').revoke(userId);
    return {};
  });

  return router;
}
