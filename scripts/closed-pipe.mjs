// Preloaded by the command-line tools (package.json): when the reader of their output goes away
// (`npm run keys -- schedule | head -2`), they end quietly, as Unix tools do, instead of dying
// with an EPIPE stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}
