// GPT-1's task-specific input transformations (paper, figure 1): every task input becomes one
// token sequence (or several) that the pre-trained decoder reads unchanged, ending in the
// `extract` token whose final hidden state feeds the task's linear head.
//
//   classification  [start] text [extract]
//   entailment      [start] premise [delim] hypothesis [extract]
//   similarity      [start] A [delim] B [extract]  and  [start] B [delim] A [extract]  (states summed)
//   multiple choice [start] context [delim] answer_k [extract]  for every k  (softmax across k)
//
// Inputs longer than the context are truncated so the whole sequence fits; the caller counts
// `truncated` examples and reports them.
import type { AnyExample, SpecialIds, TaskName, TaskExamples } from './tasks.js';

export interface EncodedInput {
  /** Token id sequences, each ending in `extract`. */
  sequences: number[][];
  /** Some text was cut to fit `maxLen`. */
  truncated: boolean;
}

export class TransformError extends Error {
  override name = 'TransformError';
}

function checkMaxLen(maxLen: number, need: number): void {
  if (!Number.isInteger(maxLen) || maxLen < need) {
    throw new TransformError(`the context (${maxLen} tokens) cannot hold even the ${need} special tokens of this task`);
  }
}

/**
 * Lengths to keep of two pieces so that together they fit `budget`: the longer piece gives up
 * tokens first, then both equally (so neither side of a pair disappears).
 */
export function fitPair(lenA: number, lenB: number, budget: number): [number, number] {
  let a = lenA;
  let b = lenB;
  let excess = a + b - budget;
  if (excess <= 0) return [a, b];
  const cutLonger = Math.min(excess, Math.abs(a - b));
  if (a >= b) a -= cutLonger;
  else b -= cutLonger;
  excess -= cutLonger;
  a -= Math.ceil(excess / 2);
  b -= Math.floor(excess / 2);
  return [Math.max(0, a), Math.max(0, b)];
}

/** `[start] text [extract]`; a long text keeps its beginning. */
export function classificationInput(text: readonly number[], sp: SpecialIds, maxLen: number): EncodedInput {
  checkMaxLen(maxLen, 2);
  const keep = Math.min(text.length, maxLen - 2);
  return { sequences: [[sp.start, ...text.slice(0, keep), sp.extract]], truncated: keep < text.length };
}

/**
 * `[start] first [delim] second [extract]`. A long first piece keeps its END (the part next to the
 * delimiter, which the second piece follows); a long second piece keeps its beginning.
 */
function pairSequence(first: readonly number[], second: readonly number[], sp: SpecialIds, maxLen: number): { seq: number[]; truncated: boolean } {
  const [la, lb] = fitPair(first.length, second.length, maxLen - 3);
  return {
    seq: [sp.start, ...first.slice(first.length - la), sp.delim, ...second.slice(0, lb), sp.extract],
    truncated: la < first.length || lb < second.length,
  };
}

/** `[start] premise [delim] hypothesis [extract]`. */
export function entailmentInput(premise: readonly number[], hypothesis: readonly number[], sp: SpecialIds, maxLen: number): EncodedInput {
  checkMaxLen(maxLen, 3);
  const { seq, truncated } = pairSequence(premise, hypothesis, sp, maxLen);
  return { sequences: [seq], truncated };
}

/**
 * Both orders, `[start] A [delim] B [extract]` then `[start] B [delim] A [extract]`. Neither text
 * comes first in meaning, so both keep their beginnings when cut, and both orders hold the same
 * tokens: the pair is symmetric by construction.
 */
export function similarityInput(a: readonly number[], b: readonly number[], sp: SpecialIds, maxLen: number): EncodedInput {
  checkMaxLen(maxLen, 3);
  const [la, lb] = fitPair(a.length, b.length, maxLen - 3);
  const ka = a.slice(0, la);
  const kb = b.slice(0, lb);
  return {
    sequences: [
      [sp.start, ...ka, sp.delim, ...kb, sp.extract],
      [sp.start, ...kb, sp.delim, ...ka, sp.extract],
    ],
    truncated: la < a.length || lb < b.length,
  };
}

/** One `[start] context [delim] answer_k [extract]` per choice. */
export function multipleChoiceInput(context: readonly number[], choices: ReadonlyArray<readonly number[]>, sp: SpecialIds, maxLen: number): EncodedInput {
  checkMaxLen(maxLen, 3);
  if (choices.length < 2) throw new TransformError('a multiple-choice example needs at least two choices');
  let truncated = false;
  const sequences = choices.map((choice) => {
    const r = pairSequence(context, choice, sp, maxLen);
    truncated ||= r.truncated;
    return r.seq;
  });
  return { sequences, truncated };
}

/** Encodes one example of `task` with `encode` (text → ids). */
export function encodeInput<T extends TaskName>(
  task: T,
  example: TaskExamples[T],
  encode: (text: string) => number[],
  sp: SpecialIds,
  maxLen: number,
): EncodedInput {
  const ex = example as AnyExample;
  switch (task) {
    case 'classification': {
      const e = ex as TaskExamples['classification'];
      return classificationInput(encode(e.text), sp, maxLen);
    }
    case 'entailment': {
      const e = ex as TaskExamples['entailment'];
      return entailmentInput(encode(e.premise), encode(e.hypothesis), sp, maxLen);
    }
    case 'similarity': {
      const e = ex as TaskExamples['similarity'];
      return similarityInput(encode(e.a), encode(e.b), sp, maxLen);
    }
    case 'multiple-choice': {
      const e = ex as TaskExamples['multiple-choice'];
      return multipleChoiceInput(encode(e.context), e.choices.map(encode), sp, maxLen);
    }
    default:
      throw new TransformError(`unknown task ${String(task)}`);
  }
}
