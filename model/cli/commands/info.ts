// `npm run model -- info`: a model directory's config, parameter count, format and backend.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { initBackend } from '../../backend.js';
import { nativeStatus } from '../../native/index.js';
import { nativeMatMulActive } from '../../native/kernels.js';
import { readCheckpoint } from '../../io/checkpoint.js';
import { countParams } from '../../nn/params.js';
import { loadTokenizerFor } from '../../io/tokenizer.js';
import { resolveModelDir } from './common.js';

export function register(program: Command): void {
  program
    .command('info')
    .description('show a model: config, parameter count, file format, tokenizer, backend, native matmul')
    .option('--model <dir>', 'model directory (default: model/shipped)')
    .option('--backend <name>', 'node | wasm | cpu')
    .option('--json', 'print JSON')
    .action(async (o: { model?: string; backend?: string; json?: boolean }) => {
      const dir = resolveModelDir(o.model);
      const backend = await initBackend(o.backend);
      const ck = await readCheckpoint(dir);
      let tokenizer: { vocabSize: number; type: string } | { error: string };
      try {
        const t = await loadTokenizerFor(dir, ck.config);
        tokenizer = { vocabSize: t.vocabSize, type: t.config.type };
      } catch (err) {
        tokenizer = { error: (err as Error).message };
      }
      const weightsFile = path.join(dir, ck.format === 'hf' ? 'model.safetensors' : 'params_shapes.json');
      const info = {
        path: dir,
        format: ck.format,
        config: ck.config,
        parameters: countParams(ck.config),
        weightsBytes: ck.format === 'hf' ? (await stat(weightsFile)).size : undefined,
        tokenizer,
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
      console.log(`model       ${dir} (${ck.format === 'hf' ? 'Hugging Face layout' : 'original OpenAI release'})`);
      console.log(`parameters  ${info.parameters.toLocaleString('en-US')}`);
      console.log(`shape       ${c.nLayer} layers, ${c.nEmbd} wide, ${c.nHead} heads, MLP ${c.nInner}, context ${c.nPositions}, vocabulary ${c.vocabSize}`);
      console.log(`tokenizer   ${'error' in tokenizer ? tokenizer.error : `${tokenizer.type}, ${tokenizer.vocabSize} tokens`}`);
      console.log(`backend     ${backend}`);
      const nm = info.nativeMatMul;
      console.log(`matmul      ${nm.active ? `native (${nm.isa}, ${nm.threads} thread${nm.threads === 1 ? '' : 's'}; NEMO_NATIVE=0 turns it off)` : nm.reason}`);
    });
}
