// The bot's WeChat login state and QR code, kept in Redis so the admin panel (another module, maybe
// another process) can show whether the bot is online and the code to scan.
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
}

export const loginStateKey = (store: Store) => store.key('bot', 'login');

const LOGGED_OUT: Omit<LoginState, 'since'> = { state: 'logged-out' };

/** The current login state; `logged-out` (since the epoch) when the bot never ran. */
export async function getLoginState(store: Store): Promise<LoginState> {
  const raw = await guard(() => store.redis.get(loginStateKey(store)));
  if (!raw) return { ...LOGGED_OUT, since: new Date(0).toISOString() };
  try {
    const parsed = JSON.parse(raw) as LoginState;
    if (parsed.state === 'logged-out' || parsed.state === 'waiting-for-scan' || parsed.state === 'logged-in') return parsed;
  } catch {
    // fall through: a damaged value reads as logged out
  }
  return { ...LOGGED_OUT, since: new Date(0).toISOString() };
}

export async function setLoginState(store: Store, state: Omit<LoginState, 'since'> & { since?: string }): Promise<LoginState> {
  const full: LoginState = { ...state, since: state.since ?? new Date().toISOString() };
  await guard(() => store.redis.set(loginStateKey(store), JSON.stringify(full)));
  return full;
}
