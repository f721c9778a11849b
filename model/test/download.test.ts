// Resumable, checksummed downloads against a local HTTP server that behaves like the hub
// (HEAD with X-Linked-Etag/X-Linked-Size, GET with Range) and can drop a connection midway.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DownloadError, downloadFile, hubUrl } from '../io/download.js';

const body = randomBytes(300_000);
const sha = createHash('sha256').update(body).digest('hex');
let server: Server;
let base: string;
let dir: string;
/** Bytes to send before cutting the connection on the next GET (0 = send all). */
let cutAfter = 0;
let advertisedSha = sha;
const rangesSeen: string[] = [];

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nemo-dl-'));
  server = createServer((req, res) => {
    if (!req.url?.endsWith('/resolve/main/model.safetensors')) {
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'HEAD') {
      // Like the hub: a redirect whose headers carry the LFS sha256 and size.
      res.writeHead(302, { location: '/cdn/file', 'x-linked-etag': `"${advertisedSha}"`, 'x-linked-size': String(body.length) }).end();
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    rangesSeen.push(req.headers.range ?? '');
    const from = range ? Number(range[1]) : 0;
    const chunk = body.subarray(from);
    res.writeHead(range ? 206 : 200, { 'content-length': String(chunk.length), ...(range ? { 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` } : {}) });
    if (cutAfter > 0) {
      const n = cutAfter;
      cutAfter = 0;
      res.write(chunk.subarray(0, n), () => res.destroy());
    } else {
      res.end(chunk);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

test('an interrupted download resumes with a Range request and passes the checksum', async () => {
  const dest = path.join(dir, 'a', 'model.safetensors');
  const url = hubUrl('org/model', 'model.safetensors', base);
  cutAfter = 100_000;

  await assert.rejects(downloadFile(url, dest, { idleTimeoutMs: 5000 }), (e: Error) => e instanceof DownloadError && /run again to resume/.test(e.message));
  const partSize = (await stat(`${dest}.part`)).size;
  assert.ok(partSize > 0 && partSize < body.length);
  rangesSeen.length = 0;
  const progress: number[] = [];
  assert.equal(await downloadFile(url, dest, { onProgress: (p) => progress.push(p.received) }), true);
  assert.deepEqual(rangesSeen, [`bytes=${partSize}-`]);
  assert.ok(progress[0] > partSize && progress.at(-1) === body.length);
  assert.ok((await readFile(dest)).equals(body));
  await assert.rejects(stat(`${dest}.part`));
  // A second run finds the valid file and fetches nothing.
  rangesSeen.length = 0;
  assert.equal(await downloadFile(url, dest), false);
  assert.deepEqual(rangesSeen, []);
});

test('a checksum mismatch removes the partial file and says so', async () => {
  const dest = path.join(dir, 'b', 'model.safetensors');
  advertisedSha = 'f'.repeat(64);
  try {
    await assert.rejects(downloadFile(hubUrl('org/model', 'model.safetensors', base), dest), /sha256 mismatch/);
    await assert.rejects(stat(`${dest}.part`));
    await assert.rejects(stat(dest));
  } finally {
    advertisedSha = sha;
  }
  // A corrupt leftover part is caught the same way (resumed, then rejected by the checksum).
  await writeFile(`${dest}.part`, Buffer.alloc(1000, 7));
  await assert.rejects(downloadFile(hubUrl('org/model', 'model.safetensors', base), dest), /sha256 mismatch/);
});

test('missing files and unreachable hosts give clear errors', async () => {
  await assert.rejects(downloadFile(hubUrl('org/model', 'nope.bin', base), path.join(dir, 'c', 'x')), /not found \(404\)/);
  // A port nobody listens on: connection refused.
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  await assert.rejects(downloadFile(`http://127.0.0.1:${port}/x`, path.join(dir, 'c', 'y')), (e: Error) =>
    e instanceof DownloadError && /cannot reach 127\.0\.0\.1.*ECONNREFUSED.*internet/.test(e.message));
});
