// Conversation memory in Redis: a user's recent turns, bounded by a number of turns and a token
// budget, forgotten after a period of inactivity. One list per user, appended and trimmed in one
// Lua script so concurrent replies and several processes never leave it over its bounds.
// Only complete exchanges are remembered. A per-user epoch counter, bumped by every clear()
// (#reset, the web chat's Reset, the panel's "clear memory"), makes a reply whose generation
// started before the clear skip its append: a forgotten conversation stays forgotten.
import { guard, type Store } from '../core/redis.js';

export interface Turn {
  user: string;
  bot: string;
}

interface StoredTurn extends Turn {
  /** Tokens of user + bot text, counted when stored. */
  tokens: number;
  at: number;
}

export interface ConversationOptions {
  maxTurns: number;
  maxTokens: number;
  idleMs: number;
  /** Counts tokens the way the model does (TextGenerator.countTokens). */
  countTokens: (text: string) => number;
}

// KEYS: list, epoch. ARGV: turn JSON, max turns, max tokens, idle ms, expected epoch ('' = any).
// Returns the list's length, or -1 when the memory was cleared since the epoch was read.
const APPEND_SCRIPT = `
if ARGV[5] ~= '' and (redis.call('GET', KEYS[2]) or '0') ~= ARGV[5] then return -1 end
local function tokens(item)
  local ok, t = pcall(cjson.decode, item)
  if ok and type(t) == 'table' then return tonumber(t.tokens) or 0 end
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
local maxTokens = tonumber(ARGV[3])
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local total = 0
for i = 1, #items do total = total + tokens(items[i]) end
local i = 1
while total > maxTokens and i <= #items do
  total = total - tokens(items[i])
  redis.call('LPOP', KEYS[1])
  i = i + 1
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return redis.call('LLEN', KEYS[1])
`;

// KEYS: list, epoch. Returns {epoch, items}: one atomic read.
const READ_SCRIPT = `return {redis.call('GET', KEYS[2]) or '0', redis.call('LRANGE', KEYS[1], 0, -1)}`;

export const conversationKey = (store: Store, userId: string) => store.key('bot', 'mem', userId);
/** Bumped by every clear(); kept well beyond any generation's deadline. */
export const conversationEpochKey = (store: Store, userId: string) => store.key('bot', 'mem-epoch', userId);
const EPOCH_TTL_MS = 2 * 86_400_000;

/** The remembered turns and the memory's epoch when they were read (pass it back to append()). */
export interface ConversationSnapshot {
  turns: Turn[];
  epoch: string;
}

export class ConversationMemory {
  constructor(
    private readonly store: Store,
    readonly options: ConversationOptions,
  ) {
    store.redis.defineCommand('nemoMemAppend', { numberOfKeys: 2, lua: APPEND_SCRIPT });
    store.redis.defineCommand('nemoMemRead', { numberOfKeys: 2, lua: READ_SCRIPT });
  }

  /** The user's remembered turns, oldest first. */
  async history(userId: string): Promise<Turn[]> {
    return (await this.read(userId)).turns;
  }

  /** The remembered turns with the epoch to hand to append(), in one round trip. */
  async read(userId: string): Promise<ConversationSnapshot> {
    if (this.options.maxTurns === 0) return { turns: [], epoch: '' };
    const [epoch, raw] = (await guard(() =>
      (this.store.redis as unknown as MemCommands).nemoMemRead(conversationKey(this.store, userId), conversationEpochKey(this.store, userId)),
    )) as [string, string[]];
    const turns: Turn[] = [];
    for (const item of raw) {
      try {
        const t = JSON.parse(item) as StoredTurn;
        if (typeof t.user === 'string' && typeof t.bot === 'string') turns.push({ user: t.user, bot: t.bot });
      } catch {
        // A damaged entry is skipped rather than breaking the user's conversation.
      }
    }
    return { turns, epoch: String(epoch) };
  }

  /**
   * Remembers one exchange; returns how many turns are kept now, or -1 (nothing stored) when
   * `epoch` (from read()) is given and the memory was cleared since.
   */
  async append(userId: string, turn: Turn, epoch?: string): Promise<number> {
    if (this.options.maxTurns === 0) return 0;
    const tokens = this.options.countTokens(turn.user) + this.options.countTokens(turn.bot);
    const stored: StoredTurn = { user: turn.user, bot: turn.bot, tokens, at: Date.now() };
    const n = await guard(() =>
      (this.store.redis as unknown as MemCommands).nemoMemAppend(
        conversationKey(this.store, userId), conversationEpochKey(this.store, userId),
        JSON.stringify(stored), this.options.maxTurns, this.options.maxTokens, this.options.idleMs, epoch ?? '',
      ),
    );
    return Number(n);
  }

  /**
   * Forgets the conversation (`#reset`, the web chat's Reset, admin "clear memory"); a reply still
   * being generated will not be remembered either. True when there was something to forget.
   */
  async clear(userId: string): Promise<boolean> {
    const epochKey = conversationEpochKey(this.store, userId);
    const res = await guard(() =>
      this.store.redis.multi().del(conversationKey(this.store, userId)).incr(epochKey).pexpire(epochKey, EPOCH_TTL_MS).exec(),
    );
    return Number(res?.[0]?.[1] ?? 0) > 0;
  }

  async size(userId: string): Promise<number> {
    return guard(() => this.store.redis.llen(conversationKey(this.store, userId)));
  }
}

interface MemCommands {
  nemoMemAppend(...args: (string | number)[]): Promise<unknown>;
  nemoMemRead(list: string, epoch: string): Promise<unknown>;
}
