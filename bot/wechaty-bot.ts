// The WeChat side: a Wechaty bot that turns puppet events into ChatSession calls and sends the
// reply parts back in order. Everything WeChat-specific lives here (self messages, message age,
// de-duplication, non-text messages, groups and @-mentions, login state); the chat rules do not.
import { randomBytes } from 'node:crypto';
import qrcodeTerminal from 'qrcode-terminal';
import { log as wechatyLog, ScanStatus, types, WechatyBuilder, type Wechaty } from 'wechaty';
import type { Contact, Friendship, Message, Room } from 'wechaty';
import { silentLogger, type Logger } from '../core/logger.js';
import type { Store } from '../core/redis.js';
import type { ChatReply, ChatSession } from './chat-session.js';
import type { BotConfig } from './config.js';
import type { ConnectRetry, RetryState } from './connect-retry.js';
import { MessageDedup } from './dedup.js';
import { InstanceLease } from './instance-lease.js';
import { setLoginState, STOPPED_STATE_TTL_MS, type LoginState } from './login-state.js';
import { mentionsName, stripMentions } from './mentions.js';
import { KeyedSerialQueue } from './serial.js';

export const WECHAT_CHANNEL = 'wechat';
/** Remarks the bot gives new friends so they keep their identity across re-logins. */
export const ALIAS_PREFIX = 'nemo-';

const NON_TEXT = new Set<number>([
  types.Message.Image, types.Message.Audio, types.Message.Video, types.Message.Attachment, types.Message.Emoticon,
]);

export interface HandledMessage {
  messageId: string;
  userId?: string;
  roomId?: string;
  /** Why nothing or what was answered. */
  result:
    | 'self' | 'stale' | 'duplicate' | 'not-individual' | 'ignored-type' | 'group-disabled' | 'not-mentioned'
    | 'non-text' | 'empty' | 'answered' | 'failed';
  reply?: ChatReply;
  /** Parts actually sent. */
  sent: string[];
  /** From receipt to the last part sent (or to the decision to send nothing), in ms. */
  latencyMs: number;
  /** From receipt until memory and usage were written too, in ms. */
  settledMs: number;
}

type Done = (h: Omit<HandledMessage, 'messageId' | 'latencyMs' | 'settledMs' | 'sent'> & { sent?: string[]; latencyMs?: number }) => void;

export interface WechatyChatBotOptions {
  store: Store;
  session: ChatSession;
  config: BotConfig;
  /** The puppet instance (from createChatPuppet, or a PuppetMock in tests). */
  puppet: unknown;
  /** Contact ids or aliases allowed to use operator commands. */
  operators?: string[];
  logger?: Logger;
  /**
   * Where Wechaty keeps the login session (a memory-card file), so a restart can log in again
   * without a new scan. Holds login cookies: keep it in a private directory. Unset: nothing saved.
   */
  sessionFile?: string;
  /** Draw the login QR code in the terminal (npm start). */
  printQrCode?: boolean;
  /** Called after every incoming message is dealt with (tests, benchmark, metrics). */
  onHandled?: (h: HandledMessage) => void;
  /**
   * The lease on this bot's name (config.BOT_NAME); start() takes it if it is not held yet and
   * rejects with BotNameInUseError when another process runs a bot of that name.
   */
  lease?: InstanceLease;
  /** The puppet's reconnection backoff (the one given to createChatPuppet): shown and logged. */
  retry?: ConnectRetry;
}

export class WechatyChatBot {
  readonly wechaty: Wechaty;
  /** BOT_NAME: whose login state this bot writes. */
  readonly name: string;
  readonly lease: InstanceLease;
  private readonly log: Logger;
  private readonly dedup: MessageDedup;
  private readonly queue = new KeyedSerialQueue();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly operators: Set<string>;
  private stopped = false;
  /** Aborted by stop() when replies outlast its wait: their generations end, nothing is remembered. */
  private shutdown = new AbortController();
  private lastErrorLog = 0;
  private state: LoginState['state'] = 'logged-out';
  private suppressedErrors = 0;
  /** Contacts whose remark the bot tried to set (once per process: it is a WeChat API call). */
  private readonly aliasTried = new Set<string>();
  private readonly unsubscribeRetry: () => void;

  constructor(private readonly options: WechatyChatBotOptions) {
    this.log = options.logger ?? silentLogger;
    this.dedup = new MessageDedup(options.store);
    this.operators = new Set(options.operators ?? []);
    this.name = options.lease?.botName ?? options.config.BOT_NAME;
    this.lease = options.lease ?? new InstanceLease(options.store, this.name, {
      logger: this.log,
      onLost: () => void this.stop(0),
    });
    // Wechaty and its puppets share one logger; ours (pino) reports what matters.
    wechatyLog.level('silent');
    // Without a session file no memory card is written (tests); with one, restarts keep the login.
    this.wechaty = WechatyBuilder.build({ puppet: options.puppet as never, ...(options.sessionFile ? { name: options.sessionFile } : {}) });
    this.wechaty.on('scan', (qrcode: string, status: ScanStatus) => void this.onScan(qrcode, status));
    this.wechaty.on('login', (user: Contact) => void this.onLogin(user));
    this.wechaty.on('logout', (user: Contact, reason?: string) => void this.onLogout(user, reason));
    this.wechaty.on('error', (err: unknown) => this.onError(err));
    this.unsubscribeRetry = options.retry?.onFailure((s) => void this.onConnectFailed(s)) ?? (() => undefined);
    this.wechaty.on('friendship', (f: Friendship) => {
      this.onFriendship(f).catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'friend request not handled'));
    });
    this.wechaty.on('message', (msg: Message) => {
      const p = this.onMessage(msg).catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'message handler failed'));
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
    });
  }

  /** Takes the name's lease (BotNameInUseError: another process runs this bot), then starts the puppet. */
  async start(): Promise<void> {
    await this.lease.acquire();
    this.stopped = false;
    if (this.shutdown.signal.aborted) this.shutdown = new AbortController();
    await this.saveState({ state: 'logged-out', detail: 'starting' });
    await this.wechaty.start();
  }

  /**
   * Stops the bot. Replies being generated get `waitMs` to finish; then their generations are
   * cancelled (the chatter is asked to send the message again; the cut-off reply is not
   * remembered) and sending gets a moment more. Always call it: Wechaty keeps a timer.
   * `detail` is what the panel shows for the stopped bot; the name's lease is released.
   */
  async stop(waitMs = 5000, detail = 'stopped'): Promise<void> {
    this.stopped = true;
    this.unsubscribeRetry();
    const settle = (ms: number) => Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, ms).unref())]);
    if (this.inFlight.size) await settle(waitMs);
    if (this.inFlight.size) {
      this.shutdown.abort(new Error('the bot is stopping'));
      await settle(2000);
    }
    try {
      await this.wechaty.stop();
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'wechaty stop failed');
    }
    await this.saveState({ state: 'logged-out', detail }, STOPPED_STATE_TTL_MS);
    await this.lease.release();
  }

  /**
   * Puppet errors are routine (network, WeChat kicking the session): report and keep running. A
   * puppet retrying without network raises several per second, so at most one log line a minute.
   */
  private onError(err: unknown): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 60_000) {
      this.suppressedErrors++;
      return;
    }
    this.log.warn({ err: errorMessage(err), suppressedSinceLast: this.suppressedErrors }, 'wechaty puppet error');
    this.lastErrorLog = now;
    this.suppressedErrors = 0;
    // Shown in the panel while logged out; a waiting QR code is kept.
    if (this.state === 'logged-out') void this.saveState({ state: 'logged-out', detail: `puppet error: ${errorMessage(err).slice(0, 200)}` });
  }

  /** One line per failed try, with when the next is; the panel keeps "since" at the first failure. */
  private async onConnectFailed(s: RetryState & { delayMs: number }): Promise<void> {
    if (this.stopped) return;
    const inSeconds = Math.round(s.delayMs / 1000);
    this.log.warn({ err: s.lastError, attempt: s.attempt, failingSince: s.since, nextTryInSeconds: inSeconds }, `cannot reach WeChat; next try in ${inSeconds} s`);
    await this.saveState({
      state: 'logged-out', detail: 'cannot reach WeChat', since: s.since,
      unreachable: { attempt: s.attempt, lastError: s.lastError.slice(0, 200), nextTryAt: s.nextTryAt },
    });
  }

  /** Chatters add the bot first: accept their friend requests and tell them how to get the key. */
  private async onFriendship(f: Friendship): Promise<void> {
    if (!this.options.config.BOT_ACCEPT_FRIENDS || this.stopped || f.type() !== types.Friendship.Receive) return;
    const contact = f.contact();
    await f.accept();
    this.log.info({ id: contact.id }, 'accepted a friend request');
    await contact.say(this.options.session.texts.greeting());
  }

  private async onScan(qrcode: string, status: ScanStatus): Promise<void> {
    if (status === ScanStatus.Waiting || status === ScanStatus.Timeout) {
      if (this.options.printQrCode) {
        qrcodeTerminal.generate(qrcode, { small: true });
        console.log(`Scan the QR code above with WeChat to log the bot in (or open ${qrcode}).`);
      }
      this.log.info({ status: ScanStatus[status] }, 'waiting for the WeChat login QR code to be scanned');
      await this.saveState({ state: 'waiting-for-scan', qrcode });
    } else {
      this.log.info({ status: ScanStatus[status] }, 'login QR code status');
    }
  }

  private async onLogin(user: Contact): Promise<void> {
    this.log.info({ id: user.id, name: user.name() }, 'bot logged in to WeChat');
    await this.saveState({ state: 'logged-in', user: { id: user.id, name: user.name() } });
  }

  private async onLogout(user: Contact, reason?: string): Promise<void> {
    // WeChat logs bots out often; the puppet offers a new QR code and we keep running.
    this.log.warn({ id: user.id, reason }, 'bot logged out of WeChat; waiting for the next scan');
    await this.saveState({ state: 'logged-out', detail: reason || 'logged out' });
  }

  /** Only while holding the name's lease: never overwrite another process's state or QR code. */
  private async saveState(state: Omit<LoginState, 'since'> & { since?: string }, expireMs?: number): Promise<void> {
    this.state = state.state;
    if (!this.lease.held) return;
    try {
      await setLoginState(this.options.store, state, this.name, expireMs);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not save the login state');
    }
  }

  private async onMessage(msg: Message): Promise<void> {
    const started = performance.now();
    const done: Done = (h) => {
      const now = performance.now() - started;
      this.options.onHandled?.({ messageId: msg.id, sent: [], latencyMs: now, ...h, settledMs: now });
    };
    if (msg.self()) return done({ result: 'self' });
    if (this.stopped) return;
    if (msg.age() > this.options.config.BOT_MAX_MESSAGE_AGE_SECONDS) return done({ result: 'stale' });
    let first = true;
    try {
      first = await this.dedup.claim(msg.id);
    } catch (err) {
      // Redis is away: the in-memory check already ran; the chat session answers "try again".
      this.log.debug({ err: errorMessage(err) }, 'dedup unavailable');
    }
    if (!first) return done({ result: 'duplicate' });

    const talker = msg.talker();
    const room = msg.room();
    if (talker.type() !== types.Contact.Individual && talker.type() !== types.Contact.Unknown) {
      return done({ result: 'not-individual', userId: talker.id });
    }
    const chatKey = room ? `${room.id}:${talker.id}` : talker.id;
    await this.queue.run(chatKey, async () => {
      if (room) await this.onRoomMessage(msg, talker, room, done, started);
      else await this.onPrivateMessage(msg, talker, done, started);
    });
  }

  private async onPrivateMessage(msg: Message, talker: Contact, done: Done, started: number): Promise<void> {
    const type = msg.type();
    const userId = await this.userIdOf(talker, true);
    const base = { channel: WECHAT_CHANNEL, userId, displayName: talker.name() };
    if (type !== types.Message.Text) {
      if (!NON_TEXT.has(type)) return done({ result: 'ignored-type', userId, sent: [] });
      const reply = await this.options.session.handleNonText(base);
      const sent = await this.send(reply.parts, (part) => talker.say(part));
      return done({ result: 'non-text', userId, reply, sent });
    }
    const text = msg.text();
    if (!text.trim()) return done({ result: 'empty', userId, sent: [] });
    const { reply, settled } = await this.options.session.respond({
      ...base, text, context: 'private', isOperator: await this.isOperator(talker), signal: this.shutdown.signal,
    });
    const sent = await this.send(reply.parts, (part) => talker.say(part));
    const latencyMs = performance.now() - started;
    // Memory and usage are written after the reply went out, before this chat's next message.
    await settled;
    done({ result: failed(reply) ? 'failed' : 'answered', userId, reply, sent, latencyMs });
  }

  private async onRoomMessage(
    msg: Message, talker: Contact, room: Room, done: Done, started: number,
  ): Promise<void> {
    const ids = { userId: await this.userIdOf(talker, false), roomId: room.id, sent: [] as string[] };
    // Only text can carry an @-mention; stickers and images in groups are not for us.
    if (msg.type() !== types.Message.Text) return done({ result: 'ignored-type', ...ids });
    const groups = this.options.config.BOT_GROUPS;
    if (groups.length > 0 && !groups.includes(room.id) && !groups.includes(await room.topic())) {
      return done({ result: 'group-disabled', ...ids });
    }
    const self = this.wechaty.currentUser;
    const names = [self.name()];
    const roomAlias = await room.alias(self).catch(() => undefined);
    if (roomAlias) names.push(roomAlias);
    const raw = msg.text();
    const mentioned = (await msg.mentionSelf()) || mentionsName(raw, names);
    if (!mentioned) return done({ result: 'not-mentioned', ...ids });
    const text = stripMentions(mentioned && (await msg.mentionSelf()) ? await msg.mentionText() : raw, names);
    if (!text) return done({ result: 'empty', ...ids });
    const { reply, settled } = await this.options.session.respond({
      channel: WECHAT_CHANNEL, userId: ids.userId, displayName: talker.name(), text, context: 'group',
      isOperator: await this.isOperator(talker), signal: this.shutdown.signal,
    });
    // Addressed to the sender: WeChat shows "@name" and notifies them.
    const sent = await this.send(reply.parts, (part) => room.say(part, talker));
    const latencyMs = performance.now() - started;
    await settled;
    done({ result: failed(reply) ? 'failed' : 'answered', reply, ...ids, sent, latencyMs });
  }

  /** Sends parts in order; a failed send (puppet offline) stops the rest and is logged. */
  private async send(parts: string[], say: (part: string) => Promise<unknown>): Promise<string[]> {
    const sent: string[] = [];
    for (const part of parts) {
      try {
        await say(part);
        sent.push(part);
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'could not send a reply');
        break;
      }
    }
    return sent;
  }

  /**
   * The chatter's id for keys, limits, memory and usage. With BOT_USER_ID=alias it is their remark
   * (`alias:<remark>`), which survives re-logins; a friend without one gets `nemo-<random>` in a
   * private chat (if the puppet can set remarks), others fall back to the contact id.
   */
  private async userIdOf(contact: Contact, assign: boolean): Promise<string> {
    if (this.options.config.BOT_USER_ID === 'contact-id') return contact.id;
    const alias = await contact.alias().catch(() => undefined);
    if (alias) return `alias:${alias}`;
    if (!assign || this.aliasTried.has(contact.id)) return contact.id;
    this.aliasTried.add(contact.id);
    const mine = `${ALIAS_PREFIX}${randomBytes(5).toString('hex')}`;
    try {
      await contact.alias(mine);
      if ((await contact.alias()) === mine) {
        this.log.info({ id: contact.id, alias: mine }, 'gave a new chatter a stable remark');
        return `alias:${mine}`;
      }
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'could not set a remark');
    }
    return contact.id;
  }

  private async isOperator(talker: Contact): Promise<boolean> {
    if (this.operators.size === 0) return false;
    if (this.operators.has(talker.id)) return true;
    // The alias (remark) is set by the bot's owner, so unlike the display name it cannot be forged.
    const alias = await talker.alias().catch(() => undefined);
    return !!alias && this.operators.has(alias);
  }
}

function failed(reply: ChatReply): boolean {
  return reply.kind === 'error' || reply.kind === 'interrupted';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
