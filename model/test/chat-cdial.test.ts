// The cdial chat format: ids and token types exactly as CDial-GPT's interact.py builds them (the
// expected values on the real vocab.txt come from its build_input_from_segments, ported into
// fixtures/torch/make-fixtures.py), history cut by whole turns, replies ending at special tokens.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { initBackend } from '../backend.js';
import { Batcher } from '../inference/batcher.js';
import { CdialFormat, CdialFormatError } from '../chat/cdial-format.js';
import type { ChatTurn } from '../chat/chat-format.js';
import { readCheckpoint } from '../io/checkpoint.js';
import { Sequence, type SequenceResult } from '../inference/sequence.js';
import { loadRuntime } from '../inference/runtime.js';
import { WordPieceTokenizer } from '../tokenizer/wordpiece.js';
import { referenceLogits } from './reference.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CDIAL_DIR = process.env.NEMO_CDIAL_DIR ?? path.resolve(REPO_ROOT, '../shared/cdial-gpt');
const FIX = fileURLToPath(new URL('./fixtures/torch/', import.meta.url));
const haveCdial = existsSync(path.join(CDIAL_DIR, 'vocab.txt'));

/** Utterances alternate user, bot, user, …; the last is the new message. */
const asTurns = (u: string[]): { history: ChatTurn[]; message: string } => ({
  history: u.slice(0, -1).map((text, i) => ({ role: i % 2 ? 'bot' : 'user', text })),
  message: u[u.length - 1],
});

test('3-turn history on the fixture vocabulary: ids, token types, reply type, stops, defaults', async () => {
  const f = new CdialFormat(await WordPieceTokenizer.load(FIX));
  // [CLS]=0 你=6 好=7 我=8 是=9 谁=10 呢=13 ？=15 [speaker1]=30 [speaker2]=31
  const p = f.buildPrompt([{ role: 'user', text: '你 好' }, { role: 'bot', text: '我是谁' }], '你呢？', { maxPromptTokens: 100 });
  assert.deepEqual(p.ids, [0, 30, 6, 7, 31, 8, 9, 10, 30, 6, 13, 15, 31]);
  assert.deepEqual(p.tokenTypes, [0, 30, 30, 30, 31, 31, 31, 31, 30, 30, 30, 30, 31]);
  assert.equal(p.replyTokenType, 31);
  assert.equal(p.droppedTurns, 0);
  assert.deepEqual(f.stopIds, [0, 2, 1, 30, 31]);
  assert.deepEqual(f.defaults, { temperature: 0.7, topP: 0.9, maxNewTokens: 30, minNewTokens: 1 });
  // Budget 9: without the oldest turn the prompt still needs 10 tokens, so both history turns go.
  const cut = f.buildPrompt([{ role: 'user', text: '你好' }, { role: 'bot', text: '我是谁' }], '你呢？', { maxPromptTokens: 9 });
  assert.deepEqual(cut.ids, [0, 30, 6, 13, 15, 31]);
  assert.equal(cut.droppedTurns, 2);
  // A message longer than the budget keeps its end.
  assert.deepEqual(f.buildPrompt([], '我是谁你呢', { maxPromptTokens: 5 }).ids, [0, 30, 6, 13, 31]);
  assert.throws(() => f.buildPrompt([], '你', { maxPromptTokens: 3 }), CdialFormatError);
  // At most 4 earlier utterances, as interact.py.
  const long = f.buildPrompt(Array.from({ length: 6 }, (_, i) => ({ role: i % 2 ? 'bot' : 'user', text: '好' }) as ChatTurn), '你', { maxPromptTokens: 100 });
  assert.equal(long.droppedTurns, 2);
  assert.equal(long.ids.length, 1 + 4 * 2 + 2 + 1);
  assert.equal(f.cleanReply('  你好 \n 呀 '), '你好 呀');
});

test('CDial-GPT vocab.txt: prompts equal interact.py\'s build_input_from_segments', { skip: haveCdial ? false : `${CDIAL_DIR}/vocab.txt is absent` }, async () => {
  const f = new CdialFormat(await WordPieceTokenizer.load(CDIAL_DIR));
  const { cdialPrompts } = JSON.parse(readFileSync(path.join(FIX, 'wordpiece-cases.json'), 'utf8')) as { cdialPrompts: Array<{ utterances: string[]; ids: number[]; tokenTypes: number[] }> };
  assert.equal(cdialPrompts.length, 2);
  for (const c of cdialPrompts) {
    const { history, message } = asTurns(c.utterances);
    const p = f.buildPrompt(history, message, { maxPromptTokens: 512 });
    assert.deepEqual(p.ids, c.ids, c.utterances.join(' | '));
    assert.deepEqual(p.tokenTypes, c.tokenTypes);
    assert.equal(p.replyTokenType, 13087);
  }
  assert.deepEqual(f.stopIds, [0, 2, 1, 13086, 13087]);
});

test('a vocabulary without speaker tokens cannot take the cdial format', () => {
  assert.throws(() => new CdialFormat(WordPieceTokenizer.fromText('[CLS]\n[UNK]\na\n')), /needs \[speaker1\]/);
});

test('a CDial-layout folder (pytorch_model.bin + vocab.txt) replies through the cdial format', async () => {
  await initBackend();
  const dir = await mkdtemp(path.join(tmpdir(), 'nemo-cdial-'));
  try {
    for (const f of ['config.json', 'vocab.txt']) await copyFile(path.join(FIX, f), path.join(dir, f));
    await copyFile(path.join(FIX, 'gpt-f16-legacy.bin'), path.join(dir, 'pytorch_model.bin'));
    const rt = await loadRuntime(dir);
    assert.equal(rt.tokenizer.config.type, 'wordpiece');
    const format = new CdialFormat(rt.tokenizer as WordPieceTokenizer);
    const host = await readCheckpoint(dir);
    const arrays = new Map([...host.arrays].map(([n, t]) => [n, t.data]));
    const batcher = new Batcher(rt.engine, 4);
    try {
      for (const message of ['你好', '你是谁？', '我好']) {
        const prompt = format.buildPrompt([{ role: 'user', text: '你好' }, { role: 'bot', text: '我是谁' }], message, { maxPromptTokens: 480 });
        const seq = new Sequence(rt.tokenizer, rt.config, prompt, { ...format.defaults, stopIds: format.stopIds, temperature: 0, topP: 1, maxNewTokens: 12 });
        const result = await new Promise<SequenceResult>((resolve, reject) => batcher.add({ id: message, seq, onDone: resolve, onError: reject }));
        // Greedy by the float64 reference: the reply's tokens take [speaker2]; any special token ends it.
        const ids = [...prompt.ids];
        const types = [...prompt.tokenTypes!];
        const want: number[] = [];
        let reason = 'length';
        for (let i = 0; i < 12; i++) {
          const row = referenceLogits(rt.config, arrays, ids, types).pop()!;
          if (i < 1) for (const s of format.stopIds) row[s] = -Infinity;
          const next = row.indexOf(Math.max(...row));
          if (format.stopIds.includes(next)) {
            reason = 'stop';
            break;
          }
          want.push(next);
          ids.push(next);
          types.push(prompt.replyTokenType!);
        }
        assert.deepEqual(seq.generated, want, message);
        assert.equal(result.finishReason, reason);
        assert.equal(result.text, rt.tokenizer.decode(want, { skipSpecialTokens: true }));
      }
    } finally {
      batcher.close();
      rt.engine.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
