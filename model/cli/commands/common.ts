// Option parsing shared by the model commands.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from 'commander';

export const SHIPPED_MODEL_DIR = fileURLToPath(new URL('../../shipped/', import.meta.url));

/** --model, defaulting to model/shipped when it holds a model. */
export function resolveModelDir(given: string | undefined): string {
  if (given) return path.resolve(given);
  if (existsSync(path.join(SHIPPED_MODEL_DIR, 'config.json'))) return SHIPPED_MODEL_DIR;
  throw new InvalidArgumentError('no --model given and model/shipped/ holds no model');
}

export function intArg(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
}

export function numArg(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}]`);
    return n;
  };
}

export const collect = (v: string, prev: string[] = []) => [...prev, v];
