// The four fine-tuning task types of GPT-1 (Radford et al. 2018, section 3.3), their examples as
// they appear in JSONL files, and the special tokens the input transformations add.

export const TASKS = ['classification', 'entailment', 'similarity', 'multiple-choice'] as const;
export type TaskName = (typeof TASKS)[number];

/** A label as written in a data file: a class name or number (a score for similarity). */
export type RawLabel = string | number;

export interface ClassificationExample {
  text: string;
  label: RawLabel;
}
export interface EntailmentExample {
  premise: string;
  hypothesis: string;
  label: RawLabel;
}
export interface SimilarityExample {
  a: string;
  b: string;
  label: RawLabel;
}
export interface MultipleChoiceExample {
  context: string;
  choices: string[];
  /** Index of the correct choice (0-based). */
  label: number;
}

export interface TaskExamples {
  classification: ClassificationExample;
  entailment: EntailmentExample;
  similarity: SimilarityExample;
  'multiple-choice': MultipleChoiceExample;
}
export type AnyExample = TaskExamples[TaskName];

/**
 * The tokens the transformations add to the vocabulary; the names are those of the original
 * GPT-1 fine-tuning code (`_start_`, `_delimiter_`, `_classify_`).
 */
export const SPECIAL_TOKEN_NAMES = { start: '_start_', delim: '_delimiter_', extract: '_classify_' } as const;

export interface SpecialIds {
  start: number;
  delim: number;
  extract: number;
}

export function isTask(name: string): name is TaskName {
  return (TASKS as readonly string[]).includes(name);
}

/** Most choices a multiple-choice example may have (each costs a full sequence). */
export const MAX_CHOICES = 16;
