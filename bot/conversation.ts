// Conversation memory in Redis: a user's recent turns, bounded by a number of turns and a token
// budget, forgotten after a period of inactivity. One list per user, appended and trimmed in one
// Lua script so concurrent replies and several processes never leave it over its bounds.
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

// KEYS: list. ARGV: turn JSON, max turns, max tokens, idle ms.
const APPEND_SCRIPT = `
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

export const conversationKey = (store: Store, userId: string) => store.key('bot', 'mem', userId);

export class ConversationMemory {
  constructor(
    private readonly store: Store,
    readonly options: ConversationOptions,
  ) {
    store.redis.defineCommand('nemoMemAppend', { numberOfKeys: 1, lua: APPEND_SCRIPT });
  }

  /** The user's remembered turns, oldest first. */
  async history(userId: string): Promise<Turn[]> {
    if (this.options.maxTurns === 0) return [];
    const raw = await guard(() => this.store.redis.lrange(conversationKey(this.store, userId), 0, -1));
    const turns: Turn[] = [];
    for (const item of raw) {
      try {
        const t = JSON.parse(item) as StoredTurn;
        if (typeof t.user === 'string' && typeof t.bot === 'string') turns.push({ user: t.user, bot: t.bot });
      } catch {
        // A damaged entry is skipped rather than breaking the user's conversation.
      }
    }
    return turns;
  }

  /** Remembers one exchange; returns how many turns are kept now. */
  async append(userId: string, turn: Turn): Promise<number> {
    if (this.options.maxTurns === 0) return 0;
    const tokens = this.options.countTokens(turn.user) + this.options.countTokens(turn.bot);
    const stored: StoredTurn = { user: turn.user, bot: turn.bot, tokens, at: Date.now() };
    const n = await guard(() =>
      (this.store.redis as unknown as MemCommands).nemoMemAppend(
        conversationKey(this.store, userId), JSON.stringify(stored), this.options.maxTurns, this.options.maxTokens, this.options.idleMs,
      ),
    );
    return Number(n);
  }

  /** Forgets the conversation (`#reset`, admin "clear memory"). */
  async clear(userId: string): Promise<boolean> {
    return (await guard(() => this.store.redis.del(conversationKey(this.store, userId)))) > 0;
  }

  async size(userId: string): Promise<number> {
    return guard(() => this.store.redis.llen(conversationKey(this.store, userId)));
  }
}

interface MemCommands {
  nemoMemAppend(...args: (string | number)[]): Promise<unknown>;
}
