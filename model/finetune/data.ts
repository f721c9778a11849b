// Fine-tuning data: JSONL files, one example per line, one shape per task type. Every bad line is
// reported with its line number (up to MAX_REPORTED of them) and nothing starts on a broken file.
// Labels become a LabelSpace: class names (classification, entailment, similarity with class
// labels), scores (similarity with real-valued labels), or choice indices (multiple choice).
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { MAX_CHOICES, type RawLabel, type TaskExamples, type TaskName } from './tasks.js';

/** Longest text field accepted (characters); longer inputs would be cut to the context anyway. */
export const MAX_FIELD_CHARS = 100_000;
const MAX_REPORTED = 20;

export class FinetuneDataError extends Error {
  override name = 'FinetuneDataError';
  constructor(
    message: string,
    readonly file: string,
    /** 1-based line numbers of the bad lines (the first MAX_REPORTED). */
    readonly lines: number[] = [],
  ) {
    super(message);
  }
}

const text = z
  .string({ error: 'must be a string' })
  .refine((s) => s.trim() !== '', 'must not be empty')
  .refine((s) => s.length <= MAX_FIELD_CHARS, `must be at most ${MAX_FIELD_CHARS} characters`);
const label = z.union([
  z.string().refine((s) => s.trim() !== '', 'must not be empty'),
  z.number().refine(Number.isFinite, 'must be a finite number'),
], { error: 'must be a string or a number' });

const schemas = {
  classification: z.object({ text, label }),
  entailment: z.object({ premise: text, hypothesis: text, label }),
  similarity: z.object({ a: text, b: text, label }),
  'multiple-choice': z
    .object({
      context: text,
      choices: z.array(text, { error: 'must be an array of strings' }).min(2, 'needs at least 2 choices').max(MAX_CHOICES, `at most ${MAX_CHOICES} choices`),
      label: z.number({ error: 'must be the index of the right choice' }).int('must be an integer index'),
    })
    .refine((e) => e.label >= 0 && e.label < e.choices.length, { message: 'must be an index into choices (0-based)', path: ['label'] }),
} as const;

/** The fields each task's lines need, for messages and --help. */
export const TASK_FIELDS: Record<TaskName, string> = {
  classification: '{"text": "...", "label": "class"}',
  entailment: '{"premise": "...", "hypothesis": "...", "label": "class"}',
  similarity: '{"a": "...", "b": "...", "label": "class" or a score}',
  'multiple-choice': '{"context": "...", "choices": ["...", "..."], "label": index}',
};

export interface LoadedExamples<T extends TaskName> {
  file: string;
  examples: Array<TaskExamples[T]>;
  /** 1-based line number of each example. */
  lines: number[];
}

/** How parseJsonLines names what a file holds, in its messages. */
export interface JsonLinesKind {
  /** e.g. "task entailment". */
  label: string;
  /** One line's expected shape. */
  shape: string;
  /** e.g. "examples". */
  items: string;
  /** Repeat the expected shape after each bad line's problems. */
  shapeAfterEachLine: boolean;
}

/**
 * JSON lines checked against `schema`; blank lines are skipped. Throws FinetuneDataError listing
 * the bad lines with their numbers (the first MAX_REPORTED), or when no line is left.
 */
export function parseJsonLines<T>(content: string, file: string, schema: z.ZodType<T>, kind: JsonLinesKind): { items: T[]; lines: number[] } {
  const items: T[] = [];
  const lines: number[] = [];
  const problems: string[] = [];
  const badLines: number[] = [];
  let bad = 0;
  const report = (line: number, msg: string) => {
    bad++;
    if (problems.length < MAX_REPORTED) {
      problems.push(`  line ${line}: ${msg}`);
      badLines.push(line);
    }
  };
  const rows = content.split('\n');
  rows.forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.replace(/\r$/, '').replace(/^\uFEFF/, '');
    if (line.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (err) {
      report(lineNo, `not valid JSON (${(err as Error).message})`);
      return;
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      report(lineNo, `expected a JSON object like ${kind.shape}`);
      return;
    }
    const r = schema.safeParse(json);
    if (!r.success) {
      const msg = r.error.issues.map((iss) => {
        const where = iss.path.length ? `"${iss.path.join('.')}"` : 'line';
        return iss.path.length === 1 && !Object.hasOwn(json as object, iss.path[0] as string)
          ? `${where} is missing`
          : `${where} ${iss.message}`;
      });
      report(lineNo, `${[...new Set(msg)].join('; ')}${kind.shapeAfterEachLine ? ` (expected ${kind.shape})` : ''}`);
      return;
    }
    items.push(r.data);
    lines.push(lineNo);
  });
  if (bad > 0) {
    const more = bad > problems.length ? `\n  … and ${bad - problems.length} more bad lines` : '';
    const expected = kind.shapeAfterEachLine ? '' : ` (expected ${kind.shape})`;
    throw new FinetuneDataError(`${file}: ${bad} bad line${bad === 1 ? '' : 's'} for ${kind.label}${expected}:\n${problems.join('\n')}${more}`, file, badLines);
  }
  if (items.length === 0) throw new FinetuneDataError(`${file}: no ${kind.items} (expected one JSON object per line, ${kind.shape})`, file);
  return { items, lines };
}

/** A data file's text; a file that cannot be read is a FinetuneDataError naming it. */
export async function readDataFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FinetuneDataError(`${file}: cannot read (${code === 'ENOENT' ? 'no such file' : code ?? String(err)})`, file);
  }
}

/** Parses JSONL text; throws FinetuneDataError listing bad lines (blank lines are skipped). */
export function parseExamples<T extends TaskName>(task: T, content: string, file = 'data'): LoadedExamples<T> {
  const schema = schemas[task] as unknown as z.ZodType<TaskExamples[T]>;
  const { items, lines } = parseJsonLines(content, file, schema, { label: `task ${task}`, shape: TASK_FIELDS[task], items: 'examples', shapeAfterEachLine: true });
  return { file, examples: items, lines };
}

/** Reads and parses a JSONL file of `task` examples. */
export async function readExamples<T extends TaskName>(task: T, file: string): Promise<LoadedExamples<T>> {
  return parseExamples(task, await readDataFile(file), file);
}

// ---------------------------------------------------------------------------------------------
// Labels

export type LabelSpace =
  | { kind: 'class'; names: string[] }
  | { kind: 'score'; min: number; max: number }
  | { kind: 'choice' };

/** Outputs of the linear head for a label space (one per class; one score otherwise). */
export function headSize(space: LabelSpace): number {
  return space.kind === 'class' ? space.names.length : 1;
}

const labelKey = (l: RawLabel): string => (typeof l === 'number' ? String(l) : l.trim());

/**
 * The label space of a training set: multiple choice → choice indices; similarity with any
 * non-integer numeric label → scores (a regression head); otherwise the distinct labels as
 * classes (numbers sorted numerically, names alphabetically).
 */
export function labelSpaceOf<T extends TaskName>(task: T, data: LoadedExamples<T>): LabelSpace {
  if (task === 'multiple-choice') return { kind: 'choice' };
  const labels = data.examples.map((e) => (e as { label: RawLabel }).label);
  if (task === 'similarity' && labels.every((l) => typeof l === 'number') && labels.some((l) => !Number.isInteger(l))) {
    const nums = labels as number[];
    return { kind: 'score', min: Math.min(...nums), max: Math.max(...nums) };
  }
  const names = [...new Set(labels.map(labelKey))];
  if (names.length < 2) {
    throw new FinetuneDataError(`${data.file}: the training data has only one label (${JSON.stringify(names[0])}); a classifier needs at least two`, data.file);
  }
  const numeric = labels.every((l) => typeof l === 'number');
  names.sort(numeric ? (a, b) => Number(a) - Number(b) : undefined);
  return { kind: 'class', names };
}

/**
 * Targets for examples under `space`: class indices, scores, or choice indices. Throws naming the
 * lines whose label the space does not know (e.g. a class never seen in training).
 */
export function labelTargets<T extends TaskName>(space: LabelSpace, data: LoadedExamples<T>): number[] {
  const out: number[] = [];
  const problems: string[] = [];
  const badLines: number[] = [];
  data.examples.forEach((e, i) => {
    const l = (e as { label: RawLabel }).label;
    if (space.kind === 'class') {
      const idx = space.names.indexOf(labelKey(l));
      if (idx < 0) {
        problems.push(`  line ${data.lines[i]}: label ${JSON.stringify(l)} is not one the model knows (${space.names.map((n) => JSON.stringify(n)).join(', ')})`);
        badLines.push(data.lines[i]);
      }
      out.push(idx);
    } else if (space.kind === 'score') {
      if (typeof l !== 'number') {
        problems.push(`  line ${data.lines[i]}: label ${JSON.stringify(l)} must be a number (this model predicts scores)`);
        badLines.push(data.lines[i]);
      }
      out.push(Number(l));
    } else {
      out.push(l as number);
    }
  });
  if (problems.length) {
    const shown = problems.slice(0, MAX_REPORTED).join('\n');
    const more = problems.length > MAX_REPORTED ? `\n  … and ${problems.length - MAX_REPORTED} more` : '';
    throw new FinetuneDataError(`${data.file}: ${problems.length} line(s) with unknown labels:\n${shown}${more}`, data.file, badLines.slice(0, MAX_REPORTED));
  }
  return out;
}
