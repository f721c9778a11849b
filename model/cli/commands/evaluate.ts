// `npm run model -- evaluate`: scores a fine-tuned model on a labelled JSONL file (accuracy,
// macro-F1; Pearson/Spearman for similarity scores).
import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { initBackend } from '../../backend.js';
import { loadFinetuned } from '../../finetune/checkpoint.js';
import { readExamples } from '../../finetune/data.js';
import { describePrediction, evaluateExamples } from '../../finetune/evaluate.js';
import type { TaskName } from '../../finetune/tasks.js';
import { formatMetrics } from '../../finetune/trainer.js';
import { taskOption } from './finetune.js';

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('score a fine-tuned model on labelled examples (JSONL)')
    .requiredOption('--model <dir>', 'fine-tuned model folder (from `finetune`)')
    .requiredOption('--data <file>', 'labelled examples, JSONL, in the task\'s format')
    .addOption(taskOption())
    .option('--predictions <file>', 'also write one prediction per line (JSONL) to this file')
    .option('--backend <name>', 'node | wasm | cpu (default: $TFJS_BACKEND or best available)')
    .option('--json', 'print the metrics as one JSON object')
    .action(async (o: { model: string; data: string; task?: TaskName; predictions?: string; backend?: string; json?: boolean }) => {
      await initBackend(o.backend);
      const { model, tokenizer } = await loadFinetuned(o.model);
      if (o.task && o.task !== model.spec.task) {
        throw new Error(`${o.model} was fine-tuned for ${model.spec.task}, not ${o.task}`);
      }
      const data = await readExamples(model.spec.task, o.data);
      const { metrics, predictions, truncated } = evaluateExamples(model, tokenizer, data);
      if (o.predictions) {
        await writeFile(o.predictions, predictions.map((p, i) => JSON.stringify({ line: data.lines[i], ...p, label: describePrediction(model.spec, p) })).join('\n') + '\n');
      }
      if (o.json) console.log(JSON.stringify({ task: model.spec.task, ...metrics, truncated }));
      else {
        console.log(`${model.spec.task} on ${o.data}: ${formatMetrics(metrics)}`);
        if (truncated) console.log(`${truncated} examples were truncated to the context of ${model.spec.maxLen} tokens`);
      }
    });
}
