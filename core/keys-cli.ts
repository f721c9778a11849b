// `npm run keys -- <command>`: the operator's access-key tool. Talks to Redis directly, so it works
// with or without the server running; a rotation is published, so running servers learn of it at
// once. This is the one place that prints the key on purpose (to stdout, never to a log).
import { hostname } from 'node:os';
import { Command, CommanderError } from 'commander';
import { AuditLog } from './audit/audit-log.js';
import { DEFAULT_REDIS_URL, loadCoreConfig, type CoreConfig } from './config.js';
import { ConfigError } from './env.js';
import { InvalidScheduleError, KeyService, type CurrentKey, type KeyHistoryEntry, type ScheduleInfo } from './keys/key-service.js';
import { silentLogger } from './logger.js';
import { redactUrl, RedisUnavailableError, Store } from './redis.js';

interface Ctx {
  config: CoreConfig;
  keys: KeyService;
  json: boolean;
  /** Records a change in the admin audit log, as `cli@<host>` (the panel shows it with its own). */
  audit: (action: string, details: Record<string, unknown>, ok?: boolean) => Promise<void>;
}

/** Who the audit log names for changes made with this tool. */
export const CLI_ACTOR = `cli@${hostname()}`;

async function withKeys(cmd: Command, fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const json = Boolean(cmd.optsWithGlobals().json);
  const config = loadCoreConfig();
  const url = config.REDIS_URL ?? DEFAULT_REDIS_URL;
  const store = new Store({ url, prefix: config.REDIS_PREFIX, logger: silentLogger });
  try {
    try {
      await store.open();
    } catch (err) {
      throw new RedisUnavailableError(
        `Cannot reach Redis at ${redactUrl(url)} (prefix "${config.REDIS_PREFIX}"). Start Redis or set REDIS_URL. (${(err as Error).message})`,
      );
    }
    const log = new AuditLog(store);
    const user = process.env.USER;
    const audit = (action: string, details: Record<string, unknown>, ok = true) =>
      log.record({ action, actor: CLI_ACTOR, ip: '', details: { ...details, ...(user ? { user } : {}) }, ok });
    await fn({ config, keys: new KeyService(store, config, silentLogger), json, audit });
  } finally {
    await store.close();
  }
}

function localTime(iso: string | null, tz: string): string {
  if (!iso) return 'never';
  const local = new Intl.DateTimeFormat('sv-SE', { timeZone: tz, dateStyle: 'short', timeStyle: 'medium' }).format(new Date(iso));
  return `${local} ${tz} (${iso})`;
}

function printKey(k: CurrentKey, tz: string): void {
  console.log(`Access key:     ${k.key}`);
  console.log(`Version:        ${k.version}`);
  console.log(`Created:        ${localTime(k.createdAt, tz)} by ${k.by}${k.actor ? ` (${k.actor})` : ''}`);
  console.log(`Next rotation:  ${localTime(k.nextRotationAt, tz)}`);
  console.log(`Accepted until: ${localTime(k.expiresAt, tz)} (includes the grace period)`);
}

function keyJson(k: CurrentKey): Record<string, unknown> {
  return { key: k.key, version: k.version, createdAt: k.createdAt, nextRotationAt: k.nextRotationAt, expiresAt: k.expiresAt, by: k.by, ...(k.actor ? { actor: k.actor } : {}) };
}

function printSchedule(s: ScheduleInfo): void {
  console.log(`Schedule:   ${s.cron}  (${s.tz}; ${s.source === 'stored' ? `set at run time${s.actor ? ` by ${s.actor}` : ''}` : 'from KEY_ROTATE_CRON / KEY_ROTATE_TZ'})`);
  console.log('Next runs:');
  for (const r of s.nextRuns) console.log(`  ${localTime(r, s.tz)}`);
}

function printHistory(entries: KeyHistoryEntry[], tz: string): void {
  if (entries.length === 0) {
    console.log('No keys yet.');
    return;
  }
  // One format for every time, in the rotation time zone named once above the list.
  const at = (iso: string) => new Intl.DateTimeFormat('sv-SE', { timeZone: tz, dateStyle: 'short', timeStyle: 'medium' }).format(new Date(iso));
  console.log(`Times in ${tz}:`);
  for (const e of entries) {
    const who = `${e.by}${e.actor ? ` (${e.actor})` : ''}`;
    console.log(`v${String(e.version).padEnd(5)} ${e.key}  created ${at(e.createdAt)} by ${who}${e.retiredAt ? `, retired ${at(e.retiredAt)}` : ', current'}`);
  }
}

export function buildProgram(): Command {
  const program = new Command('keys')
    .description('Show, rotate and schedule the nemo access key (works with or without the server running).')
    .option('--json', 'print machine-readable JSON')
    .showHelpAfterError()
    .addHelpText('after', '\nEnvironment: REDIS_URL (default redis://127.0.0.1:6379/0), REDIS_PREFIX (default nemo:), KEY_* settings; see .env.example.');

  program
    .command('show')
    .description('print the current key, its version and the next rotation time')
    .option('--json', 'print JSON: {"key","version","createdAt","nextRotationAt","expiresAt","by"}')
    .action(async (_opts, cmd: Command) =>
      withKeys(cmd, async ({ keys, json }) => {
        const k = await keys.current();
        const s = await keys.getSchedule();
        if (json) console.log(JSON.stringify(keyJson(k)));
        else printKey(k, s.tz);
      }),
    );

  program
    .command('rotate')
    .description('replace the key now (the previous one stays valid for KEY_GRACE_MINUTES); running servers are told at once')
    .option('--json', 'print the new key as JSON')
    .option('--actor <name>', 'who rotated, for the key history', process.env.USER ?? '')
    .action(async (opts: { actor: string }, cmd: Command) =>
      withKeys(cmd, async ({ keys, json, audit }) => {
        const k = await keys.rotate('cli', opts.actor || undefined);
        await audit('keys.rotate', { version: k.version });
        const s = await keys.getSchedule();
        if (json) console.log(JSON.stringify(keyJson(k)));
        else {
          console.log('Rotated.');
          printKey(k, s.tz);
        }
      }),
    );

  program
    .command('history')
    .description('list past keys, newest first, with who rotated them')
    .option('--json', 'print JSON')
    .option('-n, --limit <n>', 'how many entries', '20')
    .action(async (opts: { limit: string }, cmd: Command) =>
      withKeys(cmd, async ({ keys, json }) => {
        const n = Number.parseInt(opts.limit, 10);
        if (!Number.isFinite(n) || n < 1) throw new CommanderError(2, 'keys.limit', `--limit expects a positive integer, got "${opts.limit}"`);
        const entries = await keys.history(n);
        if (json) console.log(JSON.stringify(entries));
        else printHistory(entries, (await keys.getSchedule()).tz);
      }),
    );

  const schedule = program.command('schedule').description('show or change the rotation schedule');
  schedule
    .command('show', { isDefault: true })
    .description('show the schedule and the next five runs (the default)')
    .option('--json', 'print JSON')
    .action(async (_opts, cmd: Command) =>
      withKeys(cmd, async ({ keys, json }) => {
        const s = await keys.getSchedule();
        if (json) console.log(JSON.stringify(s));
        else printSchedule(s);
      }),
    );
  schedule
    .command('set')
    .description('change the schedule for every running server, e.g. schedule set "0 0 * * 1" --tz Asia/Shanghai (weekly)')
    .argument('<cron>', 'cron expression: 5 fields (minute hour day month weekday) or 6 with seconds first')
    .option('--tz <zone>', 'IANA time zone (default: the current schedule\'s)')
    .option('--json', 'print JSON')
    .action(async (cron: string, opts: { tz?: string }, cmd: Command) =>
      withKeys(cmd, async ({ keys, json, audit }) => {
        const tz = opts.tz ?? (await keys.getSchedule()).tz;
        let s: ScheduleInfo;
        try {
          s = await keys.setSchedule(cron, tz, `cli${process.env.USER ? `:${process.env.USER}` : ''}`);
        } catch (err) {
          if (err instanceof InvalidScheduleError) await audit('keys.schedule', { cron, tz, error: err.message }, false);
          throw err;
        }
        await audit('keys.schedule', { cron: s.cron, tz: s.tz });
        if (json) console.log(JSON.stringify(s));
        else {
          console.log('Schedule changed.');
          printSchedule(s);
        }
      }),
    );

  schedule
    .command('reset')
    .description('drop the run-time schedule: every running server goes back to KEY_ROTATE_CRON / KEY_ROTATE_TZ')
    .option('--json', 'print JSON')
    .action(async (_opts, cmd: Command) =>
      withKeys(cmd, async ({ keys, json, audit }) => {
        const s = await keys.resetSchedule(`cli${process.env.USER ? `:${process.env.USER}` : ''}`);
        await audit('keys.schedule.reset', { cron: s.cron, tz: s.tz });
        if (json) console.log(JSON.stringify(s));
        else {
          console.log('Schedule reset to the configured default.');
          printSchedule(s);
        }
      }),
    );

  program
    .command('unlock')
    .description('lift a user\'s lockout after too many wrong keys')
    .argument('<userId>', 'the chatter\'s id (as shown in the admin panel)')
    .option('--json', 'print JSON')
    .action(async (userId: string, _opts, cmd: Command) =>
      withKeys(cmd, async ({ keys, json, audit }) => {
        const before = await keys.lockStatus(userId);
        await keys.unlock(userId);
        await audit('users.unlock', { userId, wasLocked: before.locked });
        if (json) console.log(JSON.stringify({ userId, wasLocked: before.locked }));
        else console.log(before.locked ? `Unlocked ${userId}.` : `${userId} was not locked; failed-attempt count cleared.`);
      }),
    );
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; usage errors were already printed by commander.
      if (err.code === 'keys.limit') console.error(err.message);
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof ConfigError || err instanceof InvalidScheduleError || err instanceof RedisUnavailableError) {
      console.error(err.message);
      process.exitCode = err instanceof RedisUnavailableError ? 3 : 2;
      return;
    }
    console.error(`keys: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

await main();
