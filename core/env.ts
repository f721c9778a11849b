// Environment loading shared by every part: dotenv once, then a zod schema per part.
// A wrong value becomes one ConfigError line naming the variable and what was expected.
import { config as loadDotenv } from 'dotenv';
import { z } from 'zod';

let dotenvLoaded = false;

/** Loads `.env` from the working directory once (real environment variables win). */
export function loadDotenvOnce(): void {
  if (dotenvLoaded) return;
  dotenvLoaded = true;
  loadDotenv({ quiet: true });
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parses `env` with `schema`; throws a ConfigError naming every bad variable. */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  // Empty strings mean "unset" so that `FOO=` in .env falls back to the default.
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') cleaned[k] = v;
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(config)';
    const variable = typeof issue.path[0] === 'string' ? issue.path[0] : '';
    return `${name}: ${issue.message} (got ${shownValue(variable, cleaned[variable])})`;
  });
  throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
}

// Variables whose value is a secret: a configuration error says how long the value is, never what it is.
const SECRET_NAME = /PASSWORD|SECRET|TOKEN|HASH|CREDENTIAL|PRIVATE/i;

/** How a configuration error shows a variable's value: secrets hidden, a URL's user and password blanked. */
export function shownValue(name: string, value: string | undefined): string {
  if (value === undefined) return 'unset';
  if (SECRET_NAME.test(name)) return `a hidden value of ${[...value].length} characters`;
  const text = value.replace(/\/\/([^@/]*)@/, (_m, auth: string) => (auth ? '//[redacted]@' : '//'));
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
}

/** True for an IANA time zone name this runtime knows (e.g. Asia/Shanghai). */
export function isTimeZone(tz: string): boolean {
  if (!tz || tz.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Common field helpers so every part's schema reads the same way. */
export const envInt = (def: number, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ message: 'expected an integer' })
    .int({ message: 'expected an integer' })
    .min(min, { message: `expected an integer ≥ ${min}` })
    .max(max, { message: `expected an integer ≤ ${max}` })
    .default(def);

export const envNumber = (def: number, min = -Infinity, max = Infinity) =>
  z.coerce
    .number({ message: 'expected a number' })
    .min(min, { message: `expected a number ≥ ${min}` })
    .max(max, { message: `expected a number ≤ ${max}` })
    .default(def);

export const envBool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], { message: 'expected true or false' })
    .transform((v) => ['true', '1', 'yes', 'on'].includes(v))
    .default(def);

export const envList = (def: string[] = []) =>
  z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .default(def);
