// The default puppet (wechaty-puppet-wechat4u) restarts its library at once after every failed
// login, so with no route to WeChat it tries (and errs) hundreds of times a second; and its logout
// handler restarts the library after the puppet has stopped, which throws "Cannot read
// properties of undefined (reading 'start')" at every shutdown. This wraps one puppet instance:
// failed tries wait for the backoff, a stopped puppet is not restarted. Relies on the puppet's
// initHookEvents/onStop (pinned version; bot/test/wechat4u-offline.test.ts runs the real one).
import type { EventEmitter } from 'node:events';
import type { ConnectRetry } from './connect-retry.js';

type Listener = (...args: unknown[]) => unknown;

interface Wechat4uPuppet {
  isLoggedIn: boolean;
  wechat4u?: EventEmitter & { start(): unknown };
  initHookEvents(w: EventEmitter): void;
  onStop(): Promise<void>;
}

export function isWechat4uPuppet(puppet: unknown): boolean {
  const p = puppet as Partial<Wechat4uPuppet> | null;
  return !!p && typeof p.initHookEvents === 'function' && typeof p.onStop === 'function' && (p.constructor as { name?: string }).name === 'PuppetWechat4u';
}

export function guardWechat4u(puppet: unknown, retry: ConnectRetry): void {
  const p = puppet as Wechat4uPuppet;
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let lastError = 'no answer from WeChat';

  const initHookEvents = p.initHookEvents.bind(p);
  p.initHookEvents = (w4u: EventEmitter) => {
    stopping = false;
    initHookEvents(w4u);
    const onLogout = w4u.listeners('logout') as Listener[];
    const onError = w4u.listeners('error') as Listener[];
    w4u.removeAllListeners('logout');
    w4u.removeAllListeners('error');
    w4u.on('error', (err: unknown) => {
      // Before login every error ends the try (the library stops, then emits "logout"): it is
      // reported once with the retry, not as a puppet error.
      if (!p.isLoggedIn) {
        lastError = err instanceof Error ? err.message : String(err);
        return;
      }
      for (const l of onError) l(err);
    });
    w4u.on('uuid', () => retry.succeeded());
    w4u.on('logout', (...args: unknown[]) => {
      if (stopping) return;
      // Logged out by WeChat: the puppet cleans up and shows a new QR code at once.
      if (p.isLoggedIn) {
        for (const l of onLogout) void Promise.resolve(l(...args)).catch(() => undefined);
        return;
      }
      const delay = retry.failed(lastError);
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (!stopping && p.wechat4u === w4u) p.wechat4u.start();
      }, delay);
    });
  };

  const onStop = p.onStop.bind(p);
  p.onStop = async () => {
    stopping = true;
    clearTimeout(timer);
    await onStop();
  };
}
