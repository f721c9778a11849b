// The official account's key responder (the article's steps 1–2: "follow the official account,
// send `key`"): answers `key` / `密钥` with the current key and when it expires, and nothing else.
// The rule is a pure function; the Wechaty part only connects it to a puppet (the official-account
// puppet in production, the mock in tests).
import { log as wechatyLog, types, WechatyBuilder, type Wechaty } from 'wechaty';
import type { Message } from 'wechaty';
import { silentLogger, type Logger } from '../core/logger.js';

export interface CurrentKeySource {
  current(): Promise<{ key: string; version: number; expiresAt: string | null; nextRotationAt: string | null }>;
}

const TRIGGERS = new Set(['key', '密钥', '密鑰']);

/** True when `text` asks for the key: `key` / `密钥` with any case, width, spacing or punctuation. */
export function asksForKey(text: string): boolean {
  const t = text.normalize('NFKC').toLowerCase().replace(/[\s\p{P}\p{S}]+/gu, '');
  return TRIGGERS.has(t);
}

/** The reply to a key request. */
export function keyAnswer(current: { key: string; expiresAt: string | null; nextRotationAt: string | null }, timeZone: string): string {
  // The scheduled change is what chatters plan around; the grace window after it is a courtesy.
  const until = current.nextRotationAt ?? current.expiresAt;
  const when = until
    ? new Date(until).toLocaleString('sv-SE', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' })
    : null;
  const lines = [`🔑 当前访问密钥 / Current access key: ${current.key}`];
  lines.push(when ? `⏰ 有效至 / valid until: ${when} (${timeZone})` : '⏰ 长期有效，直到管理员更换 / valid until the operator changes it');
  lines.push('把密钥私聊发给机器人即可开始聊天。Send it to the bot in a private chat to start chatting.');
  return lines.join('\n');
}

export interface KeyResponderOptions {
  keys: CurrentKeySource;
  puppet: unknown;
  /** Time zone of the expiry shown (the key schedule's). */
  timeZone: string;
  logger?: Logger;
  onAnswered?: (messageId: string) => void;
}

export class KeyResponderBot {
  readonly wechaty: Wechaty;
  private readonly log: Logger;

  constructor(private readonly options: KeyResponderOptions) {
    this.log = options.logger ?? silentLogger;
    wechatyLog.level('silent');
    this.wechaty = WechatyBuilder.build({ puppet: options.puppet as never });
    this.wechaty.on('error', (err: unknown) => this.log.warn({ err: String(err) }, 'official-account puppet error'));
    this.wechaty.on('login', () => this.log.info('official-account key responder online'));
    this.wechaty.on('message', (msg: Message) => {
      this.onMessage(msg).catch((err: unknown) => this.log.error({ err: String(err) }, 'key responder failed'));
    });
  }

  start(): Promise<void> {
    return this.wechaty.start();
  }

  stop(): Promise<void> {
    return this.wechaty.stop();
  }

  private async onMessage(msg: Message): Promise<void> {
    if (msg.self() || msg.room() || msg.type() !== types.Message.Text || !asksForKey(msg.text())) return;
    let answer: string;
    try {
      answer = keyAnswer(await this.options.keys.current(), this.options.timeZone);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not read the current key');
      answer = '⌛ 暂时无法获取密钥，请稍后再试。The key is unavailable right now — please try again shortly.';
    }
    await msg.say(answer);
    this.options.onAnswered?.(msg.id);
  }
}
