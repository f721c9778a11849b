// The admin audit log: every admin action (login, logout, failed login, rotation, schedule and
// settings changes, user actions) as one entry of a capped Redis stream shared by all processes.
import { guard, type Store } from '../core/redis.js';

export interface AuditEntry {
  id: string;
  at: string;
  action: string;
  /** Who: 'admin' plus the short session id, or 'anonymous' for failed logins. */
  actor: string;
  ip: string;
  /** Action details; never secrets (no passwords, no keys). */
  details: Record<string, unknown>;
  ok: boolean;
}

const MAX_ENTRIES = 10_000;

export class AuditLog {
  constructor(private readonly store: Store) {}

  private get key(): string {
    return this.store.key('audit');
  }

  async record(entry: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
    const at = new Date().toISOString();
    await guard(() =>
      this.store.redis.xadd(this.key, 'MAXLEN', '~', String(MAX_ENTRIES), '*', 'e', JSON.stringify({ ...entry, at })),
    );
  }

  /** Newest first. */
  async list(limit = 100, before?: string): Promise<AuditEntry[]> {
    const end = before ? `(${before}` : '+';
    const rows = await guard(() => this.store.redis.xrevrange(this.key, end, '-', 'COUNT', Math.min(Math.max(limit, 1), 1000)));
    return rows.map(([id, fields]) => {
      const raw = fields[fields.indexOf('e') + 1] ?? '{}';
      return { id, ...(JSON.parse(raw) as Omit<AuditEntry, 'id'>) };
    });
  }
}
