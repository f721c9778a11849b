// The admin password: scrypt hashes and constant-time verification.
// Format: scrypt$N$r$p$<salt base64url>$<hash base64url>. A plain ADMIN_PASSWORD is hashed at
// start-up with a random salt, so both settings are verified the same way and in the same time.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const DEFAULTS = { N: 16384, r: 8, p: 1, keyLength: 32 };
const HASH_RE = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{32,})$/;

function scrypt(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export function isPasswordHash(text: string): boolean {
  const m = HASH_RE.exec(text);
  if (!m) return false;
  const N = Number(m[1]);
  // N must be a power of two; keep the cost sane so a typo cannot stall every login.
  return N >= 1024 && N <= 1 << 20 && (N & (N - 1)) === 0 && Number(m[2]) >= 1 && Number(m[3]) >= 1;
}

export async function hashPassword(password: string, opts: Partial<typeof DEFAULTS> = {}): Promise<string> {
  const { N, r, p, keyLength } = { ...DEFAULTS, ...opts };
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, keyLength, { N, r, p, maxmem: 256 * N * r });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** Verifies `attempt` against a stored hash; the comparison itself is constant-time. */
export async function verifyPassword(attempt: string, stored: string): Promise<boolean> {
  const m = HASH_RE.exec(stored);
  if (!m) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const salt = Buffer.from(m[4], 'base64url');
  const expected = Buffer.from(m[5], 'base64url');
  // Cap attempts so a megabyte "password" costs no more than a normal one.
  const derived = await scrypt(attempt.slice(0, 1024), salt, expected.length, { N, r, p, maxmem: 256 * N * r });
  return timingSafeEqual(derived, expected);
}
