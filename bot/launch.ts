// Wiring for `npm start`: builds the shared chat (used by the web chat too) and starts the WeChat
// bot and the official-account key responder when configured. A puppet that fails to start is
// reported and the platform keeps running (the admin panel shows the bot as logged out).
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { CoreConfig } from '../core/config.js';
import { partLogger, type Logger } from '../core/logger.js';
import type { Store } from '../core/redis.js';
import { ConnectRetry, type BackoffOptions } from './connect-retry.js';
import { ChatSession, type KeyGate, type UsageSink } from './chat-session.js';
import type { BotConfig } from './config.js';
import { KeyResponderBot, type CurrentKeySource } from './key-responder.js';
import { BotNameInUseError, InstanceLease } from './instance-lease.js';
import { DEFAULT_BOT_NAME, setLoginState, STOPPED_STATE_TTL_MS } from './login-state.js';
import { createChatPuppet, createOfficialAccountPuppet, officialAccountConfigured } from './puppet.js';
import { UserAdmin } from './user-admin.js';
import { WechatyChatBot } from './wechaty-bot.js';
import { BlockedWords, type ChatFormat, type TextGenerator } from '../model/index.js';

export interface ChatDeps {
  store: Store;
  keys: KeyGate & CurrentKeySource;
  usage: UsageSink;
  generator: TextGenerator;
  /** Default: the model's own chat format (model/chat). */
  format?: ChatFormat;
  coreConfig: Pick<CoreConfig, 'KEY_LENGTH' | 'KEY_ALPHABET' | 'KEY_ROTATE_TZ' | 'OPERATORS' | 'DATA_DIR'>;
  botConfig: BotConfig;
  logger: Logger;
}

/** The channel-independent chat and the admin's user actions, one of each per process. */
export function createChat(deps: ChatDeps): { session: ChatSession; userAdmin: UserAdmin } {
  // A missing or unreadable BOT_BLOCKED_WORDS_FILE stops the start with the file's name.
  const blockedWords = BlockedWords.load({ file: deps.botConfig.BOT_BLOCKED_WORDS_FILE });
  const session = new ChatSession({
    store: deps.store, keys: deps.keys, usage: deps.usage, generator: deps.generator, format: deps.format, blockedWords,
    config: deps.botConfig, keyShape: { length: deps.coreConfig.KEY_LENGTH, alphabet: deps.coreConfig.KEY_ALPHABET },
    logger: partLogger(deps.logger, 'chat'),
  });
  return { session, userAdmin: new UserAdmin(deps.store, deps.botConfig) };
}

export interface RunningBots {
  /** null while the bot waits for its name to be released (or could not start). */
  readonly chatBot: WechatyChatBot | null;
  keyResponder: KeyResponderBot | null;
  stop(): Promise<void>;
}

/** DATA_DIR/wechaty/<name>: the directory is made private (0700), the file holds login cookies. */
export async function privateSessionFile(dataDir: string, name: string): Promise<string> {
  const dir = path.resolve(dataDir, 'wechaty');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  return path.join(dir, name);
}

/** Starts what BOT_ENABLED and WECHATY_PUPPET_OA_* ask for; never rejects on puppet trouble. */
export async function startBots(
  deps: ChatDeps & {
    session: ChatSession;
    printQrCode?: boolean;
    /** How long to wait for the puppet to start (default 15 s). */
    startTimeoutMs?: number;
    /** A puppet instance instead of WECHATY_PUPPET (tests). */
    puppet?: unknown;
    /** The waits between tries to reach WeChat (tests shorten them). */
    backoff?: Partial<BackoffOptions>;
  },
): Promise<RunningBots> {
  const log = partLogger(deps.logger, 'bot');
  let chatBot: WechatyChatBot | null = null;
  let keyResponder: KeyResponderBot | null = null;

  // Set while this process waits for its bot name to be released; aborted by stop().
  const waiting = new AbortController();
  let waited: Promise<void> = Promise.resolve();

  if (deps.botConfig.BOT_ENABLED) {
    const name = deps.botConfig.BOT_NAME;
    // The name first: a second process with this BOT_NAME must not touch its state or session.
    const lease = new InstanceLease(deps.store, name, {
      ttlMs: deps.botConfig.BOT_LEASE_SECONDS * 1000, logger: log, onLost: () => void chatBot?.stop(0, 'another process took over this bot name'),
    });
    const failed = async (err: unknown) => {
      const detail = `puppet failed to start: ${(err as Error).message}`;
      if (chatBot) await chatBot.stop(0, detail).catch(() => undefined);
      else if (lease.held) {
        await setLoginState(deps.store, { state: 'logged-out', detail }, name, STOPPED_STATE_TTL_MS).catch(() => undefined);
        await lease.release();
      }
    };
    const couldNotStart = async (err: unknown) => {
      log.error({ err: (err as Error).message, puppet: deps.botConfig.WECHATY_PUPPET, bot: name }, 'the WeChat bot could not start; the platform keeps running without it');
      await failed(err);
      chatBot = null;
    };
    // With the lease held: the bot, its puppet and its session.
    const launch = async () => {
      const retry = new ConnectRetry(deps.backoff);
      chatBot = new WechatyChatBot({
        store: deps.store, session: deps.session, config: deps.botConfig, puppet: deps.puppet ?? (await createChatPuppet(deps.botConfig, log, retry)),
        retry, operators: deps.coreConfig.OPERATORS, logger: log, printQrCode: deps.printQrCode ?? true, lease,
        // One session per bot name (the first bot keeps the file name it always had).
        sessionFile: deps.botConfig.BOT_KEEP_SESSION
          ? await privateSessionFile(deps.coreConfig.DATA_DIR, name === DEFAULT_BOT_NAME ? 'chat-bot' : `chat-bot-${name}`)
          : undefined,
      });
      // Some puppets keep connecting for a long time: do not hold up the HTTP server for them.
      const bot = chatBot;
      const started = bot.start().then(() => true);
      const inTime = await Promise.race([started, new Promise<false>((r) => setTimeout(() => r(false), deps.startTimeoutMs ?? 15_000).unref())]);
      if (inTime) log.info({ puppet: deps.botConfig.WECHATY_PUPPET, bot: name }, 'wechat bot started');
      else {
        log.warn({ puppet: deps.botConfig.WECHATY_PUPPET, bot: name }, 'the WeChat puppet is still starting; continuing without waiting');
        started.catch(couldNotStart);
      }
    };
    try {
      await lease.acquire();
      await launch();
    } catch (err) {
      if (err instanceof BotNameInUseError) {
        // The other process keeps the name, its login state and its QR code. It may be a crashed
        // one whose lease has not run out yet: keep trying, and start the bot once the name is free.
        log.warn({ err: err.message, bot: name, holder: err.holder }, 'the WeChat bot was not started yet: its name is in use; waiting for the name to be released (the platform runs without the bot meanwhile)');
        await lease.markWaiting().catch(() => undefined);
        waited = lease.acquireWhenFree(waiting.signal).then(async (got) => {
          if (!got) return;
          log.info({ bot: name }, 'the bot name was released: starting the WeChat bot');
          await launch().catch(couldNotStart);
        });
      } else {
        await couldNotStart(err);
      }
    }
  } else {
    log.info('WeChat bot disabled by BOT_ENABLED=false');
  }

  if (officialAccountConfigured(deps.botConfig)) {
    try {
      keyResponder = new KeyResponderBot({
        keys: deps.keys, puppet: await createOfficialAccountPuppet(deps.botConfig), timeZone: deps.coreConfig.KEY_ROTATE_TZ, logger: log.child({ bot: 'official-account' }),
      });
      await keyResponder.start();
      log.info('official-account key responder started');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'the official-account key responder could not start');
      keyResponder = null;
    }
  }

  return {
    get chatBot() {
      return chatBot;
    },
    keyResponder,
    async stop() {
      waiting.abort();
      await waited;
      await Promise.allSettled([chatBot?.stop(), keyResponder?.stop()]);
    },
  };
}
