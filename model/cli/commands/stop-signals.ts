// Long-running commands (pretrain, finetune) stop cleanly on the first SIGINT/SIGTERM: the run
// saves a checkpoint at the end of the current step; a second signal quits at once.
// One Ctrl-C or `pkill` often delivers the signal more than once within milliseconds (the terminal
// signals the whole process group, and npm and tsx also forward it to this process), so repeats
// within DUPLICATE_MS of the first count as the same request.
const DUPLICATE_MS = 1000;

export function abortOnStopSignals(): AbortSignal {
  const controller = new AbortController();
  let firstAt = 0;
  const stop = (sig: string) => {
    if (controller.signal.aborted) {
      if (Date.now() - firstAt < DUPLICATE_MS) return;
      process.stderr.write(`\n${sig} again: quitting without a checkpoint\n`);
      process.exit(130);
    }
    firstAt = Date.now();
    process.stderr.write(`\n${sig}: saving a checkpoint at the end of this step (again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return controller.signal;
}
