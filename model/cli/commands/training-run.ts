// What the training commands (pretrain, finetune) share: the run options, how a run shows its
// progress (a bar on a terminal, else log lines), Ctrl-C saving a checkpoint, and the lines for the
// loop's own events.
import { Option, type Command } from 'commander';
import type { LoopEvent } from '../../train/loop.js';
import { intArg } from './common.js';
import { abortOnStopSignals } from './stop-signals.js';

/** --until-step, --restart, --backend and --no-progress. */
export function addRunOptions(cmd: Command, restartHelp: string): Command {
  return cmd
    .option('--until-step <n>', 'stop after this many updates in total, with a checkpoint (resume later with the same command)', intArg('--until-step', 1))
    .option('--restart', restartHelp)
    .addOption(new Option('--backend <name>', 'tfjs backend (default: $TFJS_BACKEND, else node → wasm → cpu)').choices(['node', 'wasm', 'cpu']))
    .option('--no-progress', 'plain log lines instead of a progress bar');
}

/** The line for a checkpoint or stop event of the loop. */
export function describeLoopEvent(e: LoopEvent | { type: string }): string | undefined {
  if (e.type === 'checkpoint') return `checkpoint @ step ${(e as { step: number }).step} → ${(e as { dir: string }).dir}`;
  if (e.type === 'stop') return `stopped at step ${(e as { step: number }).step} (${(e as { reason: string }).reason})`;
  return undefined;
}

/**
 * A run's progress mode, Ctrl-C signal and event printer: `describe` turns the command's own
 * events into lines (undefined: the loop's default); with `timestamps` each line carries the time.
 */
export function runControls<E extends { type: string }>(progress: boolean, describe: (e: E) => string | undefined, timestamps = false) {
  const bar = progress && process.stderr.isTTY;
  return {
    progress: bar ? ('bar' as const) : ('lines' as const),
    signal: abortOnStopSignals(),
    onEvent: (e: E) => {
      const line = describe(e) ?? describeLoopEvent(e);
      if (!line) return;
      process.stderr.write(timestamps ? `${bar ? '\n' : ''}[${new Date().toISOString()}] ${line}\n` : `${line}\n`);
    },
  };
}
