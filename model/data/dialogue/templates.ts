// Deterministic choice among phrasings for the exchanges built from non-dialogue data (dictionary,
// translation, 歇后语, poems): the phrasing is a function of the item and the seed only, so the
// output does not depend on the order in which items are read.
import { hashUnit } from '../prepare.js';

export function pick<T>(options: readonly T[], key: string, seed: number): T {
  return options[Math.floor(hashUnit(`${seed}:${key}`) * options.length)] as T;
}
