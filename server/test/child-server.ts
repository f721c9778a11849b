// The real `npm start` in a child process (for shutdown and crash tests), and a web-chat visitor
// talking to it.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { TEST_REDIS_URL } from '../../core/testing.js';
import { Client } from './harness.js';

export interface Running {
  child: ChildProcess;
  url: string;
  lines: string[];
  exit: Promise<number | null>;
}

/** `npm: true` runs `npm start` as the README says (the child is then npm, not node). */
export async function startServer(env: Record<string, string>, options: { npm?: boolean } = {}): Promise<Running> {
  const [cmd, args] = options.npm ? ['npm', ['start', '--silent']] : [process.execPath, ['--import', 'tsx', 'server/main.ts']];
  const child = spawn(cmd, args, {
    env: { ...process.env, NODE_ENV: 'test', LOG_FORMAT: 'json', LOG_LEVEL: 'info', PORT: '0', HOST: '127.0.0.1', REDIS_URL: TEST_REDIS_URL, BOT_ENABLED: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start:\n${lines.join('')}`)), 60_000);
    const onData = (d: Buffer) => {
      lines.push(String(d));
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(lines.join(''));
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => lines.push(String(d)));
    void exit.then((code) => reject(new Error(`server exited with ${code}:\n${lines.join('')}`)));
  });
  return { child, url, lines, exit };
}

export async function verifiedVisitor(url: string, key: string): Promise<Client> {
  const c = new Client(url);
  c.csrf = ((await c.get('/api/chat/session')).body as { csrfToken: string }).csrfToken;
  const v = await c.post('/api/chat/verify', { key });
  assert.equal(v.status, 200, JSON.stringify(v.body));
  return c;
}

/** Opens a streamed reply and resolves once the first token has arrived. */
export async function openStream(c: Client, text: string): Promise<{ rest: Promise<string> }> {
  const res = await fetch(`${c.base}/api/chat/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': c.csrf, Cookie: [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    body: JSON.stringify({ text }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let seen = '';
  while (!seen.includes('event: token')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended early: ${seen}`);
    seen += dec.decode(value);
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return seen;
      seen += dec.decode(value);
    }
  })();
  return { rest };
}
