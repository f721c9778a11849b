// A training run's folder, shared by every objective: one trainer at a time (a lock file), and a
// checkpoint that is always complete — written to checkpoint.tmp/ and swapped in with renames, so a
// crash or a bad step never leaves a half-written `checkpoint/`.
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { TrainingError } from '../errors.js';

const LOCK_FILE = 'LOCK';
const exists = (p: string) => stat(p).then(() => true, () => false);

export function checkpointDir(outDir: string): string {
  return path.join(outDir, 'checkpoint');
}

/**
 * Takes the run folder's lock; returns its release. A second trainer would interleave checkpoints
 * and logs. The lock file holds the owner's pid; a lock whose process is gone (crash, kill -9) is
 * taken over.
 */
export async function lockRun(outDir: string): Promise<() => Promise<void>> {
  const file = path.join(outDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(await readFile(file, 'utf8').catch(() => ''));
      let alive = false;
      try {
        if (pid > 0) process.kill(pid, 0);
        alive = pid > 0;
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (alive) throw new TrainingError(`${outDir} is in use by another training process (pid ${pid}); stop it first or use another --out`);
      await rm(file, { force: true });
    }
  }
  throw new TrainingError(`${outDir}: could not take the run lock`);
}

/** Runs `fn` holding the lock of run folder `outDir` (created if missing). */
export async function withRunLock<T>(outDir: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(outDir, { recursive: true });
  const unlock = await lockRun(outDir);
  try {
    return await fn();
  } finally {
    await unlock();
  }
}

/** The folder to resume from: `checkpoint/`, or `checkpoint.prev/` if a swap was interrupted. */
export async function findCheckpoint(outDir: string, stateFile: string): Promise<string | undefined> {
  for (const name of ['checkpoint', 'checkpoint.prev']) {
    const dir = path.join(outDir, name);
    if (await exists(path.join(dir, stateFile))) return dir;
  }
  return undefined;
}

/**
 * Writes a new checkpoint with `write(tmpDir)` — which must write its state file last: that file's
 * presence marks a checkpoint complete — then swaps it in for the old one. Returns its folder.
 */
export async function replaceCheckpoint(outDir: string, write: (dir: string) => Promise<void>): Promise<string> {
  const final = checkpointDir(outDir);
  const tmp = path.join(outDir, 'checkpoint.tmp');
  const prev = path.join(outDir, 'checkpoint.prev');
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await write(tmp);
  await rm(prev, { recursive: true, force: true });
  if (await exists(final)) await rename(final, prev);
  await rename(tmp, final);
  await rm(prev, { recursive: true, force: true });
  return final;
}
