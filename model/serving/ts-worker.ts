// Starting a TypeScript file in a worker thread. On Node 20 `execArgv: ['--import', 'tsx']` does
// not reach the worker's own module loading ("Unknown file extension .ts", verified), so a
// two-line bootstrap registers tsx's loader inside the worker first, then imports the entry.
import { Worker } from 'node:worker_threads';

export function startTsWorker(entry: URL, workerData: unknown): Worker {
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}
