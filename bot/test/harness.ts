// End-to-end test rig: a real Wechaty bot on wechaty-puppet-mock, a real KeyService and
// UsageRecorder on the real Redis (isolated prefix), and the ChatSession in between. Tests talk
// to the bot as mock contacts do and read what the bot really said through the puppet.
import { FileBox } from 'file-box';
import { types } from 'wechaty';
import { mock, PuppetMock } from 'wechaty-puppet-mock';
import { coreSchema, type CoreConfig } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { KeyService } from '../../core/keys/key-service.js';
import type { Store } from '../../core/redis.js';
import { openTestStore } from '../../core/testing.js';
import { UsageRecorder } from '../../core/usage/usage-recorder.js';
import { ChatSession } from '../chat-session.js';
import { defaultBotConfig, type BotConfig } from '../config.js';
import { WechatyChatBot, type HandledMessage } from '../wechaty-bot.js';
import { type BlockedWords, type TextGenerator } from '../../model/index.js';

export type ContactMock = ReturnType<mock.Mocker['createContact']>;
export type RoomMock = ReturnType<mock.Mocker['createRoom']>;

export interface Outgoing {
  text: string;
  to?: string;
  room?: string;
}

export interface HarnessOptions {
  generator: TextGenerator;
  blockedWords?: BlockedWords;
  bot?: Partial<BotConfig>;
  core?: Partial<CoreConfig>;
  operators?: string[];
  /** An existing store (e.g. on a TempRedis); the harness does not clean it up. */
  store?: Store;
  keysNow?: () => Date;
  limitsNow?: () => number;
  seed?: number;
  botName?: string;
}

export class BotHarness {
  readonly outgoing: Outgoing[] = [];
  private readonly handled: HandledMessage[] = [];
  private waiters: Array<() => void> = [];
  private consumed = 0;
  botContact!: ContactMock;

  private constructor(
    readonly store: Store,
    private readonly ownsStore: boolean,
    readonly keys: KeyService,
    readonly usage: UsageRecorder,
    readonly session: ChatSession,
    readonly bot: WechatyChatBot,
    readonly mocker: mock.Mocker,
    readonly puppet: PuppetMock,
    readonly config: BotConfig,
  ) {}

  static async start(o: HarnessOptions): Promise<BotHarness> {
    const store = o.store ?? (await openTestStore('bot'));
    const core: CoreConfig = { ...parseEnv(coreSchema, {}), ...o.core };
    // Greedy decoding and a generous rate limit unless a test is about them.
    const config = defaultBotConfig({ BOT_TEMPERATURE: 0, BOT_RATE_LIMIT: 1000, ...o.bot });
    const keys = new KeyService(store, core, undefined, o.keysNow ? { now: o.keysNow } : {});
    const usage = new UsageRecorder(store, core);
    const session = new ChatSession({
      store, keys, usage, generator: o.generator, blockedWords: o.blockedWords, config,
      keyShape: { length: core.KEY_LENGTH, alphabet: core.KEY_ALPHABET }, seed: o.seed ?? 7, now: o.limitsNow,
    });
    const mocker = new mock.Mocker();
    const puppet = new PuppetMock({ mocker });
    const ref: { h?: BotHarness } = {};
    const bot = new WechatyChatBot({
      store, session, config, puppet, operators: o.operators,
      onHandled: (e) => {
        const h = ref.h;
        if (e.result === 'self' || !h) return;
        h.handled.push(e);
        const ws = h.waiters;
        h.waiters = [];
        for (const w of ws) w();
      },
    });
    const h = new BotHarness(store, !o.store, keys, usage, session, bot, mocker, puppet, config);
    ref.h = h;
    puppet.on('message', ({ messageId }) => {
      const m = mocker.MessageMock.load(messageId);
      if (m.payload.talkerId !== h.botContact?.id) return;
      h.outgoing.push({ text: m.payload.text ?? '', to: 'listenerId' in m.payload ? m.payload.listenerId : undefined, room: 'roomId' in m.payload ? m.payload.roomId : undefined });
    });
    const loggedIn = new Promise<void>((resolve) => bot.wechaty.once('login', () => resolve()));
    await bot.start();
    h.botContact = mocker.createContact({ id: 'nemo-bot', name: o.botName ?? 'Nemo' });
    mocker.login(h.botContact);
    await loggedIn;
    return h;
  }

  user(id: string, name = id): ContactMock {
    return this.mocker.createContact({ id, name });
  }

  room(topic: string, members: ContactMock[]): RoomMock {
    return this.mocker.createRoom({ topic, memberIdList: [this.botContact.id, ...members.map((m) => m.id)] });
  }

  /** Sends a private message and waits until the bot has dealt with it. */
  async say(from: ContactMock, text: string | FileBox): Promise<HandledMessage> {
    const next = this.nextHandled();
    await from.say(text as string).to(this.botContact);
    return next;
  }

  async sayInRoom(from: ContactMock, room: RoomMock, text: string, mentions: ContactMock[] = []): Promise<HandledMessage> {
    const next = this.nextHandled();
    await from.say(text, mentions).to(room);
    return next;
  }

  /** Delivers a hand-made message payload (old timestamps, stickers, redelivery of an id). */
  async deliver(payload: { id?: string; talkerId: string; listenerId?: string; roomId?: string; text?: string; type?: number; timestamp?: number }): Promise<HandledMessage> {
    const id = payload.id ?? `m-${Math.random().toString(36).slice(2)}`;
    if (!this.mocker.cacheMessagePayload.has(id)) {
      this.mocker.MessageMock.create({
        id, type: types.Message.Text, timestamp: Date.now(), ...(payload.roomId ? {} : { listenerId: this.botContact.id }), ...payload,
      } as never);
    }
    const next = this.nextHandled();
    this.puppet.emit('message', { messageId: id });
    return next;
  }

  /** The next handled incoming message (in arrival order). */
  nextHandled(timeoutMs = 15_000): Promise<HandledMessage> {
    const index = this.consumed++;
    return this.handledAt(index, timeoutMs);
  }

  private handledAt(index: number, timeoutMs: number): Promise<HandledMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bot did not handle message #${index} within ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        if (this.handled.length > index) {
          clearTimeout(timer);
          resolve(this.handled[index]);
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Texts the bot said to `userId` in private, in order. */
  saidTo(userId: string): string[] {
    return this.outgoing.filter((o) => o.to === userId && !o.room).map((o) => o.text);
  }

  async close(): Promise<void> {
    await this.bot.stop();
    await this.keys.stop();
    if (this.ownsStore) await (this.store as Store & { cleanup(): Promise<void> }).cleanup();
  }
}
