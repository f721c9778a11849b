// Shared set-up for the access-key tests: configuration with overrides and a settable clock.
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { coreSchema, type CoreConfig } from '../config.js';
import { parseEnv } from '../env.js';

export function keyConfig(overrides: Partial<CoreConfig> = {}): CoreConfig {
  return { ...parseEnv(coreSchema, {}), ...overrides };
}

/** The project's pino logger writing its JSON entries into `entries` (as parsed objects). */
export function captureLog(): { logger: Logger; entries: Array<Record<string, unknown>>; text: () => string } {
  const lines: string[] = [];
  const entries: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      const line = String(chunk);
      lines.push(line);
      entries.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), entries, text: () => lines.join('') };
}

/** A clock tests move by hand. */
export class TestClock {
  constructor(public t: number) {}
  now = (): Date => new Date(this.t);
  advance(ms: number): void {
    this.t += ms;
  }
}

export const MINUTE = 60_000;
export const DAY = 86_400_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns true or `timeoutMs` passes. */
export async function waitFor(fn: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 25): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if (await fn()) return true;
    } catch {
      /* not yet */
    }
    await sleep(stepMs);
  }
  return false;
}

/** A full-width (Ｕ+FF10…) spelling of an ASCII key, as some Chinese input methods type digits. */
export function fullWidth(s: string): string {
  return [...s].map((c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)).join('');
}
