// Long-running commands (pretrain, finetune) stop cleanly on the first SIGINT/SIGTERM: the run
// saves a checkpoint at the end of the current step; a second signal quits at once.
export function abortOnStopSignals(): AbortSignal {
  const controller = new AbortController();
  const stop = (sig: string) => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`\n${sig}: saving a checkpoint at the end of this step (again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return controller.signal;
}
