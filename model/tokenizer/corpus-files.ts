// Corpus input for the tokenizer trainer: files given on the command line (plain text, or JSONL
// with a "text" field) and the project's built-in corpora (model/data/corpora.ts). Everything is
// streamed as documents, in a fixed order.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import readline from 'node:readline';
import { corpusDocuments, CORPUS_NAMES, type CorpusName } from '../data/corpora.js';

export interface TextDocument {
  /** Where it came from: the file path or the built-in corpus name (statistics group by it). */
  source: string;
  text: string;
}

export class CorpusInputError extends Error {
  override name = 'CorpusInputError';
}

/**
 * Documents of one file. `.jsonl` files (or any file whose first non-empty line is a JSON object)
 * give one document per line from its "text" field; other files give one document per paragraph
 * (blank-line separated), with their line breaks kept.
 */
export async function* fileDocuments(file: string): AsyncGenerator<TextDocument> {
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new CorpusInputError(`${file}: not a regular file`);
  } catch (err) {
    if (err instanceof CorpusInputError) throw err;
    throw new CorpusInputError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const lines = readline.createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let jsonl: boolean | undefined = file.endsWith('.jsonl') ? true : undefined;
  let paragraph: string[] = [];
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (jsonl === undefined && line.trim() !== '') jsonl = line.trimStart().startsWith('{');
    if (jsonl) {
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw new CorpusInputError(`${file}:${lineNo}: not valid JSON (${(err as Error).message})`);
      }
      const text = (value as { text?: unknown } | null)?.text;
      if (typeof text !== 'string') throw new CorpusInputError(`${file}:${lineNo}: expected an object with a string "text" field`);
      if (text !== '') yield { source: file, text };
    } else if (line.trim() === '') {
      if (paragraph.length) yield { source: file, text: paragraph.join('\n') };
      paragraph = [];
    } else {
      paragraph.push(line);
    }
  }
  if (paragraph.length) yield { source: file, text: paragraph.join('\n') };
}

export function isBuiltinCorpus(name: string): name is CorpusName {
  return (CORPUS_NAMES as readonly string[]).includes(name);
}

/** Documents of a built-in corpus (brown, nlp-corpus, poetry). */
export async function* builtinDocuments(name: string): AsyncGenerator<TextDocument> {
  if (!isBuiltinCorpus(name)) throw new CorpusInputError(`unknown built-in corpus "${name}" (known: ${CORPUS_NAMES.join(', ')})`);
  for await (const doc of corpusDocuments(name)) yield { source: name, text: doc.text };
}
