// Each bot instance's WeChat login state and QR code, kept in Redis so the admin panel (another
// module, maybe another process) can show whether every bot is online and the code to scan.
// Instances are told apart by BOT_NAME (default "main"): one record per name, plus an index of
// the names and each running instance's lease (bot/instance-lease.ts).
import { guard, type Store } from '../core/redis.js';

export type LoginStateName = 'logged-out' | 'waiting-for-scan' | 'logged-in';

export interface LoginState {
  state: LoginStateName;
  /** The login URL to render as a QR code (only while waiting for a scan). */
  qrcode?: string;
  user?: { id: string; name: string };
  /** When this state began (ISO time). */
  since: string;
  /** Why the bot is logged out, when known (logout reason, puppet error). */
  detail?: string;
  /** Set while the bot cannot reach WeChat; `since` is then when the failures began. */
  unreachable?: Unreachable;
}

/** A bot that keeps failing to reach WeChat, and when it tries next. */
export interface Unreachable {
  /** Failed tries in a row. */
  attempt: number;
  lastError: string;
  nextTryAt: string;
}

/** One bot instance as the panel shows it. */
export interface BotInstanceState extends LoginState {
  name: string;
  /** A process holds this name's lease now (the state is live, not left behind by a dead process). */
  running: boolean;
  /** The process holding the lease. */
  host?: string;
  pid?: number;
  /** A process waiting for the name to be released (its holder stopped renewing, or still runs). */
  waiting?: BotWaiter;
}

/** A process that wants to run this bot and retries until the name's lease is free. */
export interface BotWaiter {
  host: string;
  pid: number;
  since: string;
}

/** "cannot reach WeChat — next try in 40 s" (what /readyz and the logs say). */
export function describeUnreachable(u: Unreachable, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((Date.parse(u.nextTryAt) - now) / 1000));
  return `cannot reach WeChat — next try in ${seconds} s`;
}

export const DEFAULT_BOT_NAME = 'main';
/** Letters, digits, '-' and '_', 1–32 characters, starting with a letter or digit. */
export const BOT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

export const loginStateKey = (store: Store, name = DEFAULT_BOT_NAME) => store.key('bot', 'login', name);
/** A set of every bot name that wrote a login state (pruned when a record has expired). */
export const botIndexKey = (store: Store) => store.key('bot', 'instances');
export const botLeaseKey = (store: Store, name = DEFAULT_BOT_NAME) => store.key('bot', 'lease', name);
export const botWaitingKey = (store: Store, name = DEFAULT_BOT_NAME) => store.key('bot', 'waiting', name);

/** A stopped bot's last state is kept this long, then the panel forgets the instance. */
export const STOPPED_STATE_TTL_MS = 30 * 86_400_000;

const LOGGED_OUT: Omit<LoginState, 'since'> = { state: 'logged-out' };

function parseState(raw: string | null): LoginState {
  if (raw) {
    try {
      const parsed = JSON.parse(raw) as LoginState;
      if (parsed.state === 'logged-out' || parsed.state === 'waiting-for-scan' || parsed.state === 'logged-in') return parsed;
    } catch {
      // fall through: a damaged value reads as logged out
    }
  }
  return { ...LOGGED_OUT, since: new Date(0).toISOString() };
}

/** One instance's login state; `logged-out` (since the epoch) when it never ran. */
export async function getLoginState(store: Store, name = DEFAULT_BOT_NAME): Promise<LoginState> {
  return parseState(await guard(() => store.redis.get(loginStateKey(store, name))));
}

/**
 * Saves an instance's state. Only the process holding the name's lease should call it (the bot
 * does), so two processes never overwrite each other's QR code. `expireMs`: for a stopped bot.
 */
export async function setLoginState(
  store: Store, state: Omit<LoginState, 'since'> & { since?: string }, name = DEFAULT_BOT_NAME, expireMs?: number,
): Promise<LoginState> {
  const full: LoginState = { ...state, since: state.since ?? new Date().toISOString() };
  const json = JSON.stringify(full);
  await guard(() => {
    const m = store.redis.multi();
    if (expireMs) m.set(loginStateKey(store, name), json, 'PX', expireMs);
    else m.set(loginStateKey(store, name), json);
    return m.sadd(botIndexKey(store), name).exec();
  });
  return full;
}

/** Every known instance, by name, with whether a process runs it now. */
export async function listBotInstances(store: Store): Promise<BotInstanceState[]> {
  const names = (await guard(() => store.redis.smembers(botIndexKey(store)))).sort();
  if (names.length === 0) return [];
  const [states, leases, waiters] = await guard(() =>
    Promise.all([
      store.redis.mget(names.map((n) => loginStateKey(store, n))),
      store.redis.mget(names.map((n) => botLeaseKey(store, n))),
      store.redis.mget(names.map((n) => botWaitingKey(store, n))),
    ]),
  );
  const out: BotInstanceState[] = [];
  const gone: string[] = [];
  names.forEach((name, i) => {
    if (!states[i] && !leases[i] && !waiters[i]) {
      gone.push(name);
      return;
    }
    const holder = parseHolder(leases[i]);
    const waiting = parseWaiter(waiters[i]);
    out.push({
      name, ...parseState(states[i]), running: holder !== null, ...(holder ? { host: holder.host, pid: holder.pid } : {}), ...(waiting ? { waiting } : {}),
    });
  });
  if (gone.length) await guard(() => store.redis.srem(botIndexKey(store), ...gone)).catch(() => undefined);
  return out;
}

/** Who holds a bot name's lease (bot/instance-lease.ts writes it). */
export interface LeaseHolder {
  token: string;
  host: string;
  pid: number;
  startedAt: string;
}

export function parseHolder(raw: string | null): LeaseHolder | null {
  if (!raw) return null;
  try {
    const h = JSON.parse(raw) as LeaseHolder;
    return typeof h.token === 'string' ? h : null;
  } catch {
    return null;
  }
}

/** Marks this process as waiting for `name` (the marker lives `ttlMs` unless refreshed). */
export async function setBotWaiting(store: Store, name: string, waiter: BotWaiter, ttlMs: number): Promise<void> {
  await guard(() => store.redis.multi().set(botWaitingKey(store, name), JSON.stringify(waiter), 'PX', ttlMs).sadd(botIndexKey(store), name).exec());
}

export async function clearBotWaiting(store: Store, name: string): Promise<void> {
  await guard(() => store.redis.del(botWaitingKey(store, name)));
}

function parseWaiter(raw: string | null): BotWaiter | null {
  if (!raw) return null;
  try {
    const w = JSON.parse(raw) as BotWaiter;
    return typeof w.pid === 'number' && typeof w.host === 'string' ? w : null;
  } catch {
    return null;
  }
}
