// V8 settings for the platform process (npm start), applied at start-up.
//
// Allocation-site pretenuring off. V8 watches which allocation sites' objects survive young-
// generation GCs and, for sites it judges long-lived, allocates their objects straight in the old
// generation. A burst (e.g. many Redis commands in flight at once) gets ioredis's per-command
// objects classified that way, after which every command of every chat message is allocated in
// the old generation although it dies within a millisecond. The young objects those point to then
// survive scavenges and are promoted, which is what made scavenge pauses 6-16 ms on the bot's
// path: measured with `npm run bench:bot -- --heap-sample` (allocations that outlived a
// scavenge: 12.5 KB per message with pretenuring, 4.3 KB without, the ioredis share 56 % → 2 %;
// see docs/performance.md). Nothing here is long-lived enough to gain from pretenuring.
import v8 from 'node:v8';

export const V8_FLAGS = ['--no-allocation-site-pretenuring'];

let applied = false;

/** Applies V8_FLAGS once (the flag is read at every GC, so setting it at run time takes effect). */
export function tuneGc(): void {
  if (applied) return;
  applied = true;
  for (const flag of V8_FLAGS) v8.setFlagsFromString(flag);
}
