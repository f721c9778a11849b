// `npm run model -- info`: a model directory's config, parameter count, format and backend.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { initBackend } from '../../backend.js';
import { nativeStatus } from '../../native/index.js';
import { nativeMatMulActive } from '../../native/kernels.js';
import { readCheckpoint, torchWeightsFile } from '../../io/checkpoint.js';
import { countParams } from '../../nn/params.js';
import { chatFormatFor } from '../../chat/registry.js';
import { loadTokenizerFor } from '../../io/tokenizer.js';
import { resolveModelDir } from './common.js';

export function register(program: Command): void {
  program
    .command('info')
    .description('show a model: config, parameter count, file format, tokenizer, chat format, backend, native matmul')
    .option('--model <dir>', 'model directory (default: model/shipped)')
    .option('--backend <name>', 'node | wasm | cpu')
    .option('--json', 'print JSON')
    .action(async (o: { model?: string; backend?: string; json?: boolean }) => {
      const dir = resolveModelDir(o.model);
      const backend = await initBackend(o.backend);
      const ck = await readCheckpoint(dir);
      let tokenizer: { vocabSize: number; type: string } | { error: string };
      let chatFormat: { name: string; source: string; stopStrings: string[]; stopIds: number[]; defaults: object } | { error: string };
      try {
        const t = await loadTokenizerFor(dir, ck.config);
        tokenizer = { vocabSize: t.vocabSize, type: t.config.type };
        try {
          const { format: f, source } = await chatFormatFor(dir, t);
          chatFormat = { name: f.name, source, stopStrings: f.stopStrings, stopIds: f.stopIds, defaults: f.defaults };
        } catch (err) {
          chatFormat = { error: (err as Error).message };
        }
      } catch (err) {
        tokenizer = { error: (err as Error).message };
        chatFormat = { error: 'no tokenizer' };
      }
      const weightsFile = ck.format === 'pytorch' ? (await torchWeightsFile(dir))! : path.join(dir, ck.format === 'hf' ? 'model.safetensors' : 'params_shapes.json');
      const info = {
        path: dir,
        format: ck.format,
        config: ck.config,
        parameters: countParams(ck.config),
        weightsBytes: ck.format === 'openai' ? undefined : (await stat(weightsFile)).size,
        tokenizer,
        chatFormat,
        backend,
        nativeMatMul: nativeMatMulActive()
          ? { active: true, threads: nativeStatus().threads, isa: nativeStatus().isa }
          : { active: false, reason: backend === 'wasm' ? nativeStatus().reason : `not used with the ${backend} backend` },
      };
      if (o.json) {
        console.log(JSON.stringify(info, null, 2));
        return;
      }
      const c = ck.config;
      const layout = { hf: 'Hugging Face layout', pytorch: `Hugging Face layout, PyTorch weights ${path.basename(weightsFile)}`, openai: 'original OpenAI release' }[ck.format];
      console.log(`model       ${dir} (${layout})`);
      console.log(`parameters  ${info.parameters.toLocaleString('en-US')}`);
      console.log(`shape       ${c.nLayer} layers, ${c.nEmbd} wide, ${c.nHead} heads, MLP ${c.nInner}, context ${c.nPositions}, vocabulary ${c.vocabSize}`);
      console.log(`tokenizer   ${'error' in tokenizer ? tokenizer.error : `${tokenizer.type}, ${tokenizer.vocabSize} tokens`}`);
      console.log(`chat format ${'error' in chatFormat ? chatFormat.error : `${chatFormat.name} (${chatFormat.source === 'tokenizer' ? 'implied by the tokenizer' : 'from chat_format.json'})`}`);
      console.log(`backend     ${backend}`);
      const nm = info.nativeMatMul;
      console.log(`matmul      ${nm.active ? `native (${nm.isa}, ${nm.threads} thread${nm.threads === 1 ? '' : 's'}; NEMO_NATIVE=0 turns it off)` : nm.reason}`);
    });
}
