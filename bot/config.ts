// The bot's own settings (BOT_*, WECHATY_*), parsed with zod like every part's schema.
// The chat limits and memory bounds here are shared by the WeChat bot and the web chat.
import { z } from 'zod';
import { BOT_NAME_PATTERN, DEFAULT_BOT_NAME } from './login-state.js';
import { envBool, envInt, envList, envNumber, isTimeZone, loadDotenvOnce, parseEnv } from '../core/env.js';

export const botSchema = z.object({
  /** Start the WeChat bot with `npm start`. */
  BOT_ENABLED: envBool(true),
  /**
   * This bot instance's name: its login state and QR code in the panel, its lease (one running
   * process per name) and its session file. One name per WeChat account.
   */
  BOT_NAME: z
    .string()
    .regex(BOT_NAME_PATTERN, { message: "expected 1-32 letters, digits, '-' or '_' (e.g. main, sales-2)" })
    .default(DEFAULT_BOT_NAME),
  /**
   * Seconds a bot's hold on its name outlives the process (renewed every third of it): after a
   * crash, a restarted process waits at most this long before it takes the name over.
   */
  BOT_LEASE_SECONDS: envInt(30, 1, 3600),
  /** Puppet module name; Wechaty's default web protocol when unset. */
  WECHATY_PUPPET: z.string().min(1).default('wechaty-puppet-wechat4u'),
  WECHATY_PUPPET_SERVICE_TOKEN: z.string().optional(),
  WECHATY_PUPPET_SERVICE_ENDPOINT: z.string().optional(),
  /** Official-account key responder: enabled when all three are set. */
  WECHATY_PUPPET_OA_APP_ID: z.string().optional(),
  WECHATY_PUPPET_OA_APP_SECRET: z.string().optional(),
  WECHATY_PUPPET_OA_TOKEN: z.string().optional(),
  /** Local port for the account's webhook (when the server is reachable from the internet)… */
  WECHATY_PUPPET_OA_PORT: envInt(0, 0, 65535),
  /** …or a tunnel URL that forwards to it. */
  WECHATY_PUPPET_OA_WEBHOOK_PROXY_URL: z.string().url().optional(),
  /** Personal (unverified) subscription accounts. */
  WECHATY_PUPPET_OA_PERSONAL_MODE: envBool(false),

  /** How a chatter gets the key (e.g. the official account's name); shown to unauthorised users. */
  BOT_KEY_HELP_TEXT: z
    .string()
    .default('Follow our official account and send "key" (or 密钥) to get the access key, then send it here.'),
  /**
   * How chatters are identified. alias: by the contact's remark, which survives re-logins (the web
   * protocol changes contact ids at every login); the bot gives new friends a remark `nemo-…`
   * when they have none. contact-id: the puppet's id (stable on some puppets only).
   */
  BOT_USER_ID: z.enum(['alias', 'contact-id']).default('alias'),
  /** Keep the WeChat login session in DATA_DIR/wechaty so a restart needs no new scan. */
  BOT_KEEP_SESSION: envBool(true),
  /** Accept friend requests (chatters add the bot before they can chat) and greet with the key hint. */
  BOT_ACCEPT_FRIENDS: envBool(true),
  /** Rooms (topics or ids) where the bot answers @-mentions; empty means every room. */
  BOT_GROUPS: envList(),
  /** Sliding-window rate limit per user. */
  BOT_RATE_LIMIT: envInt(6, 1, 10_000),
  BOT_RATE_WINDOW_SECONDS: envInt(60, 1, 86_400),
  /** Model replies per user per day (the day of BOT_QUOTA_TZ); 0 turns the quota off. */
  BOT_DAILY_QUOTA: envInt(100, 0, 1_000_000),
  BOT_QUOTA_TZ: z
    .string()
    .refine(isTimeZone, { message: 'expected an IANA time zone such as Asia/Shanghai' })
    .default('Asia/Shanghai'),
  /** Conversation memory: newest turns kept, their token budget, and inactivity expiry. */
  BOT_MEMORY_TURNS: envInt(6, 0, 100),
  BOT_MEMORY_TOKENS: envInt(256, 0, 100_000),
  BOT_MEMORY_IDLE_MINUTES: envInt(30, 1, 7 * 24 * 60),
  /** Incoming text longer than this is cut (with a notice). */
  BOT_MAX_INPUT_CHARS: envInt(500, 10, 100_000),
  /** WeChat's practical length of one text message; longer replies are split into ordered parts. */
  BOT_REPLY_PART_CHARS: envInt(1500, 20, 20_000),
  /** Messages older than this (puppets redeliver after reconnects) are discarded. */
  BOT_MAX_MESSAGE_AGE_SECONDS: envInt(180, 5, 86_400),
  /** Generation settings for chat replies. */
  BOT_MAX_NEW_TOKENS: envInt(64, 1, 1024),
  BOT_TEMPERATURE: envNumber(0.8, 0, 5),
  BOT_TOP_K: envInt(40, 0, 100_000),
  BOT_TOP_P: envNumber(0.95, 0, 1),
  BOT_REPETITION_PENALTY: envNumber(1.1, 0.5, 5),
  BOT_GENERATION_TIMEOUT_MS: envInt(30_000, 100, 600_000),
  /**
   * Generations per reply: an empty, wrong-language, turn-opening or blocked reply is sampled
   * again with a new seed, then replaced by a short polite line (model/chat/reply.ts).
   */
  BOT_REPLY_TRIES: envInt(3, 1, 10),
  /** Extra blocked words for the bot's replies, one word or phrase per line ('#' comments). */
  BOT_BLOCKED_WORDS_FILE: z.string().min(1).optional(),
  /** Also refuse incoming messages that contain a blocked word (no generation). */
  BOT_BLOCK_INPUT: envBool(false),
});

export type BotConfig = z.infer<typeof botSchema>;

export function loadBotConfig(env: NodeJS.ProcessEnv = process.env): BotConfig {
  loadDotenvOnce();
  return parseEnv(botSchema, env);
}

/** The defaults, for tests and for callers that only override a few settings. */
export function defaultBotConfig(overrides: Partial<BotConfig> = {}): BotConfig {
  return { ...parseEnv(botSchema, {}), ...overrides };
}
