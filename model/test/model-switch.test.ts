// SwitchableGenerator on two real tiny models: a request in flight when the model is switched
// finishes on the old one (not cut off), new requests go to the new one, and the old one is closed
// once idle; a reply (use) keeps its model for all of its tries.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ChatResponder } from '../chat/reply.js';
import { SwitchableGenerator } from '../serving/model-switch.js';
import { createGenerator } from '../serving/service.js';
import { createTinyModel } from './tiny-model.js';

let root: string;
before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'nemo-switch-'));
  await createTinyModel(path.join(root, 'a'), { nPositions: 256, seed: 1 });
  await createTinyModel(path.join(root, 'b'), { nPositions: 128, seed: 2 });
});
after(() => rm(root, { recursive: true, force: true }));

const open = (name: string) => createGenerator({ modelDir: path.join(root, name), maxBatch: 2, backend: 'cpu', timeoutMs: 0 });

test('switching: the request in flight finishes on the old model, new ones go to the new, the old closes when idle', async () => {
  const a = await open('a');
  const s = new SwitchableGenerator(a);
  try {
    let resolveStarted: () => void;
    const started = new Promise<void>((r) => (resolveStarted = r));
    const long = s.generate({ prompt: 'User: hello\nBot:', maxNewTokens: 120, minNewTokens: 120, temperature: 0, onText: () => resolveStarted() });
    await started;
    const switched = s.switchTo(await open('b'));
    assert.equal(s.info().contextLength, 128, 'new requests see the new model');
    const fresh = await s.generate({ prompt: 'User: hi\nBot:', maxNewTokens: 3, minNewTokens: 3, temperature: 0 });
    assert.equal(fresh.completionTokens, 3);
    const r = await long;
    assert.equal(r.finishReason, 'length', 'not cut off by the switch');
    assert.equal(r.completionTokens, 120);
    await switched;
    await assert.rejects(a.generate({ prompt: 'x', maxNewTokens: 1 }), /closed/, 'the old model is closed');
  } finally {
    await s.close();
  }
});

test('a reply started before a switch keeps its model until it ends (prompt and every try)', async () => {
  const a = await open('a');
  const s = new SwitchableGenerator(a);
  try {
    const responder = new ChatResponder(s, { maxTries: 3 });
    const b = await open('b');
    let switched: Promise<void> | undefined;
    let oldClosed = false;
    const r = await responder.reply({
      history: [], message: 'hello there', seed: 1, sampling: { maxNewTokens: 6, temperature: 0 },
      onText: () => {
        switched ??= s.switchTo(b).then(() => {
          oldClosed = true;
        });
      },
    });
    assert.ok(switched, 'the switch happened while the reply was being generated');
    assert.ok(r.attempts >= 1);
    assert.equal(oldClosed, false, 'model a stays open until the reply has ended');
    await switched;
    assert.equal(oldClosed, true);
    assert.equal(s.info().contextLength, 128);
  } finally {
    await s.close();
  }
});
