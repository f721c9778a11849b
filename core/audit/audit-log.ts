// The admin audit log: every admin action (login, logout, failed login, rotation, schedule and
// settings changes, user actions) in Redis streams shared by all processes. Anonymous login noise
// (failed and blocked logins) has its own capped stream, so however much of it anyone sends it
// never pushes administrative actions out: those are kept for the retention period.
import { guard, type Store } from '../redis.js';

export interface AuditEntry {
  id: string;
  at: string;
  action: string;
  /** Who: 'admin' (the panel), 'cli@<host>' (npm run keys), 'schedule', or 'anonymous' for failed logins. */
  actor: string;
  ip: string;
  /** Action details; never secrets (no passwords, no keys). */
  details: Record<string, unknown>;
  ok: boolean;
}

/** Actions anyone can cause without the password; they go to the capped stream. */
export const LOGIN_NOISE_ACTIONS = new Set(['login.failed', 'login.blocked']);
const MAX_NOISE_ENTRIES = 10_000;
export const DEFAULT_AUDIT_RETENTION_DAYS = 365;

export class AuditLog {
  private readonly retentionMs: number;

  constructor(
    private readonly store: Store,
    opts: { retentionDays?: number } = {},
  ) {
    this.retentionMs = (opts.retentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS) * 86_400_000;
  }

  private get actionsKey(): string {
    return this.store.key('audit');
  }

  private get noiseKey(): string {
    return this.store.key('audit', 'logins');
  }

  async record(entry: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
    const at = new Date().toISOString();
    const e = JSON.stringify({ ...entry, at });
    if (LOGIN_NOISE_ACTIONS.has(entry.action)) {
      await guard(() => this.store.redis.xadd(this.noiseKey, 'MAXLEN', '~', String(MAX_NOISE_ENTRIES), '*', 'e', e));
      return;
    }
    // Trimmed by age only: entries older than the retention period go, the rest stay.
    const minId = String(Date.now() - this.retentionMs);
    await guard(() => this.store.redis.xadd(this.actionsKey, 'MINID', '~', minId, '*', 'e', e));
  }

  /** Newest first, both streams merged. `before` is an entry id (exclusive). */
  async list(limit = 100, before?: string): Promise<AuditEntry[]> {
    const count = Math.min(Math.max(limit, 1), 1000);
    const end = before ? `(${before}` : '+';
    const [actions, noise] = await guard(() =>
      Promise.all([
        this.store.redis.xrevrange(this.actionsKey, end, '-', 'COUNT', count),
        this.store.redis.xrevrange(this.noiseKey, end, '-', 'COUNT', count),
      ]),
    );
    return [...actions, ...noise]
      .sort((a, b) => compareIds(b[0], a[0]))
      .slice(0, count)
      .map(([id, fields]) => {
        const raw = fields[fields.indexOf('e') + 1] ?? '{}';
        return { id, ...(JSON.parse(raw) as Omit<AuditEntry, 'id'>) };
      });
  }
}

/** Orders two stream ids (`<ms>-<seq>`). */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}
