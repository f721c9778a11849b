// `npm run admin:hash-password`: prints an ADMIN_PASSWORD_HASH line for .env, so the plain
// password need not be stored on the server. Reads the password from stdin (never from argv,
// which other users of the machine can see in the process list).
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { MIN_ADMIN_PASSWORD_LENGTH } from './config.js';
import { hashPassword } from './password.js';

const HELP = `Usage: npm run admin:hash-password [-- --help]

Reads the admin password from standard input (typed, or piped: echo "$PW" | npm run -s admin:hash-password)
and prints ADMIN_PASSWORD_HASH=scrypt$... to put in .env instead of ADMIN_PASSWORD.
The password needs at least ${MIN_ADMIN_PASSWORD_LENGTH} characters.`;

async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Admin password: ');
  const rl = createInterface({ input: process.stdin, terminal: false });
  if (process.stdin.isTTY) process.stdin.setRawMode?.(false);
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return '';
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const password = (await readPassword()).replace(/\r$/, '');
  if (password.length < MIN_ADMIN_PASSWORD_LENGTH) {
    console.error(`The password needs at least ${MIN_ADMIN_PASSWORD_LENGTH} characters (got ${password.length}).`);
    process.exit(1);
  }
  console.log(`ADMIN_PASSWORD_HASH=${await hashPassword(password)}`);
}

main().catch((err: unknown) => {
  console.error(`admin:hash-password failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
