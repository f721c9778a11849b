// npm run bench:native: the native matmul on GPT-1's decode shapes, alone (no tfjs, no engine),
// optionally against another git revision's kernels in the same process (--against REV).
// Compiles model/native/bench/kernels.cc with this checkout's matmul.cc (and REV's) by g++.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    against: { type: 'string' },
    rows: { type: 'string', default: '1,2,4,8' },
    weights: { type: 'string', default: 'memory' },
    reps: { type: 'string', default: '15' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`Usage: npm run bench:native [-- --json] [--against REV] [--rows 1,2,4,8] [--weights memory|cache|both]
                                [--reps 15] [--threads N] [--quick]
Times the native matmul (model/native/src/matmul.cc) over GPT-1's decode matmuls: 12 layers'
weights and the LM head (465 MB, read from memory), or with --weights cache one layer's qkv and
output weights 48 times over (9.4 MB). Reports the median of --reps passes per row count, with
GB/s of weights read and GFLOP/s.
--against REV also builds that git revision's matmul.cc into the same process and alternates the
two pass by pass (on a shared machine, separate runs vary more than a kernel change does): the
ratio is this checkout's time over REV's (below 1: faster), with its quartiles, and "identical"
says whether both gave the same bits. An A/A run (--against HEAD with matmul.cc unchanged) shows
the noise floor: on a shared 2-vCPU machine medians moved by up to ±5%. Needs g++ (as the addon's
build does).
--quick: small shapes and 3 passes (a smoke test of the tool).`);
  process.exit(0);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const srcDir = path.join(root, 'model', 'native', 'src');
const FILES = ['matmul.cc', 'matmul.h', 'simd.h'];

function gitShow(rev: string, file: string): string | undefined {
  const r = spawnSync('git', ['show', `${rev}:model/native/src/${file}`], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
  return r.status === 0 ? r.stdout : undefined;
}
const weightsModes = args.weights === 'both' ? ['memory', 'cache'] : [args.weights!];
const usageError = (message: string): never => {
  console.error(`${message} (see --help)`);
  process.exit(2);
};
if (!weightsModes.every((w) => w === 'memory' || w === 'cache')) usageError(`--weights must be memory, cache or both (got ${args.weights})`);
if (!/^\d+(,\d+)*$/.test(args.rows!) || args.rows!.split(',').some((r) => +r < 1 || +r > 512)) usageError(`--rows must be row counts from 1 to 512, comma-separated (got ${args.rows})`);
for (const name of ['reps', 'threads'] as const) {
  if (!/^\d+$/.test(args[name]!) || +args[name]! < 1) usageError(`--${name} must be a positive integer (got ${args[name]})`);
}
if (args.against !== undefined && gitShow(args.against, 'matmul.cc') === undefined) usageError(`no model/native/src/matmul.cc at git revision "${args.against}"`);

/** The kernel sources in their own namespace (so that two revisions link into one program). */
function writeSources(dir: string, ns: string, read: (file: string) => string | undefined): void {
  mkdirSync(dir, { recursive: true });
  for (const f of FILES) {
    const text = read(f);
    if (text === undefined) continue; // older revisions have no simd.h
    writeFileSync(path.join(dir, f), text.replace(/\bnamespace nemo\b/g, `namespace ${ns}`).replace(/\bnemo::/g, `${ns}::`));
  }
}


/** Milliseconds to 3 significant digits (quick runs take microseconds). */
const ms = (x: unknown) => (Number(x) >= 100 ? Number(x).toFixed(0) : Number(x).toPrecision(3));

const tmp = mkdtempSync(path.join(os.tmpdir(), 'nemo-bench-native-'));
try {
  writeSources(path.join(tmp, 'cur'), 'nemo_cur', (f) => readFileSync(path.join(srcDir, f), 'utf8'));
  const sources = [path.join(here, '..', 'native', 'bench', 'kernels.cc'), path.join(tmp, 'cur', 'matmul.cc')];
  const defines: string[] = [];
  if (args.against) {
    writeSources(path.join(tmp, 'base'), 'nemo_base', (f) => gitShow(args.against!, f));
    sources.push(path.join(tmp, 'base', 'matmul.cc'));
    defines.push('-DNEMO_BASE');
  }
  const exe = path.join(tmp, 'kernels');
  // The addon's flags (binding.gyp).
  const flags = ['-O3', '-ffp-contract=fast', '--param=avoid-fma-max-bits=0', '-march=native', '-std=c++17', `-I${tmp}`, ...defines];
  const cc = spawnSync('g++', [...flags, ...sources, '-o', exe, '-lpthread'], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) {
    throw new Error(`could not compile the benchmark (g++ ${cc.error ? 'not found' : 'failed'}):\n${cc.stderr ?? ''}`);
  }
  const results: Record<string, unknown>[] = [];
  for (const weights of weightsModes) {
    const run = ['--rows', args.rows!, '--weights', weights, '--reps', args.quick ? '3' : args.reps!, '--threads', args.threads!];
    if (args.quick) run.push('--quick');
    const out = execFileSync(exe, run, { encoding: 'utf8', maxBuffer: 1 << 20 });
    for (const line of out.split('\n').filter(Boolean)) {
      const r = JSON.parse(line) as Record<string, number | string | boolean>;
      results.push(r);
      if (!args.json) {
        const ab = args.against
          ? `  vs ${args.against}: ${ms(r.baseMs)} ms, ratio ${Number(r.ratio).toFixed(3)} (quartiles ${Number(r.ratioQ1).toFixed(3)}–${Number(r.ratioQ3).toFixed(3)})${r.identical ? ', same bits' : ', different bits'}`
          : '';
        console.log(`${String(r.weights).padEnd(6)} ${String(r.rows).padStart(2)} rows: ${ms(r.ms)} ms (min ${ms(r.msMin)}), ${r.GBs} GB/s, ${r.GFLOPs} GFLOP/s${ab}`);
      }
    }
  }
  if (args.json) {
    console.log(JSON.stringify({ machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model.trim() }, threads: Number(args.threads), against: args.against ?? null, results }, null, 2));
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
