// `npm run model -- predict`: one input (flags or a JSON object) through a fine-tuned model.
import type { Command } from 'commander';
import { initBackend } from '../../backend.js';
import { loadFinetuned } from '../../finetune/checkpoint.js';
import { parseExamples, TASK_FIELDS } from '../../finetune/data.js';
import { describePrediction, encodeExamples, predictInputs } from '../../finetune/evaluate.js';
import type { TaskName } from '../../finetune/tasks.js';
import { collect } from './common.js';

interface Opts {
  model: string; input?: string; text?: string; premise?: string; hypothesis?: string; a?: string; b?: string; context?: string; choice?: string[];
  backend?: string; json?: boolean;
}

/** The example the flags describe (a JSON --input wins), validated like a data-file line. */
function exampleFrom(task: TaskName, o: Opts): Record<string, unknown> {
  let ex: Record<string, unknown>;
  if (o.input !== undefined) {
    try {
      ex = JSON.parse(o.input) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`--input is not valid JSON (${(err as Error).message})`);
    }
  } else {
    const pick: Record<TaskName, Record<string, unknown>> = {
      classification: { text: o.text },
      entailment: { premise: o.premise, hypothesis: o.hypothesis },
      similarity: { a: o.a, b: o.b },
      'multiple-choice': { context: o.context, choices: o.choice },
    };
    ex = pick[task];
  }
  // Unlabelled input: borrow a valid label so the data-file schema checks the rest.
  const line = JSON.stringify({ ...ex, label: task === 'multiple-choice' ? 0 : 'x' });
  try {
    return parseExamples(task, line, 'input').examples[0] as unknown as Record<string, unknown>;
  } catch (err) {
    throw new Error(`this model does ${task}; give ${TASK_FIELDS[task].replace(/, "label"[^}]*/, '')} (${(err as Error).message.split('\n')[1]?.trim() ?? ''})`);
  }
}

export function register(program: Command): void {
  program
    .command('predict')
    .description('predict one input with a fine-tuned model')
    .requiredOption('--model <dir>', 'fine-tuned model folder (from `finetune`)')
    .option('--text <s>', 'classification: the text')
    .option('--premise <s>', 'entailment: the premise')
    .option('--hypothesis <s>', 'entailment: the hypothesis')
    .option('--a <s>', 'similarity: first text')
    .option('--b <s>', 'similarity: second text')
    .option('--context <s>', 'multiple choice: the context')
    .option('--choice <s>', 'multiple choice: one answer (repeat for each)', collect)
    .option('--input <json>', 'the input as a JSON object in the data-file format (without label)')
    .option('--backend <name>', 'node | wasm | cpu (default: $TFJS_BACKEND or best available)')
    .option('--json', 'print one JSON object')
    .action(async (o: Opts) => {
      await initBackend(o.backend);
      const { model, tokenizer } = await loadFinetuned(o.model);
      const example = exampleFrom(model.spec.task, o);
      const { inputs, truncated } = encodeExamples(model.spec, tokenizer, [example as never]);
      const [p] = predictInputs(model, inputs);
      const labels = model.spec.labels;
      if (o.json) {
        const label = labels.kind === 'class' ? labels.names[p.value] : p.value;
        console.log(JSON.stringify({ task: model.spec.task, label, ...p, truncated: truncated > 0 }));
      } else {
        console.log(describePrediction(model.spec, p));
        if (truncated) console.error(`(the input was truncated to the context of ${model.spec.maxLen} tokens)`);
      }
    });
}
