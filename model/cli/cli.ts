// `npm run model -- <command>`: the model's command line. Each command lives in its own file in
// model/cli/commands/ and exports `register(program)`; add new commands by registering them here.
import { Command } from 'commander';
import { register as registerTrainTokenizer } from './commands/train-tokenizer.js';
import { register as registerDataPrepare } from './commands/data-prepare.js';
import { register as registerPretrain } from './commands/pretrain.js';
import { register as registerGenerate } from './commands/generate.js';
import { register as registerLogits } from './commands/logits.js';
import { register as registerInfo } from './commands/info.js';
import { register as registerFinetune } from './commands/finetune.js';
import { register as registerEvaluate } from './commands/evaluate.js';
import { register as registerPredict } from './commands/predict.js';
import { register as registerDownload } from './commands/download.js';
import { register as registerTokenize } from './commands/tokenize.js';
import { register as registerChatPrompt } from './commands/chat-prompt.js';

const program = new Command();
program.name('npm run model --').description('nemo model tools').showHelpAfterError();
program.addHelpText('after', `
Environment: TFJS_BACKEND=node|wasm|cpu picks the tfjs backend. On wasm, matmuls run on the native
addon (model/native; built by npm ci or \`npm run build:native\`) when it is built: NEMO_NATIVE=0
keeps the wasm kernels, NEMO_NATIVE_THREADS=n sizes its thread pool (default: all cores).
\`npm run model -- info\` shows which is used.`);

registerTrainTokenizer(program);
registerDataPrepare(program);
registerPretrain(program);
registerGenerate(program);
registerLogits(program);
registerInfo(program);
registerFinetune(program);
registerEvaluate(program);
registerPredict(program);
registerDownload(program);
registerTokenize(program);
registerChatPrompt(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
