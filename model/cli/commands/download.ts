// `npm run model:download`: fetch a preset (cdial-large, cdial-base, openai-gpt) or any hub repo
// into models/<name>/ with a progress bar; resumes partial files and checks sha256 (download.ts).
import path from 'node:path';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { OPENAI_GPT_FILES, OPENAI_GPT_REPO } from '../../io/download.js';
import { downloadModel } from '../../io/model-download.js';
import { DOWNLOAD_PRESETS, type DownloadPreset } from '../../io/download-presets.js';

const presetArg = (v: string): DownloadPreset => {
  const p = DOWNLOAD_PRESETS[v];
  if (!p) throw new InvalidArgumentError(`unknown preset ${JSON.stringify(v)} (${Object.keys(DOWNLOAD_PRESETS).join(', ')})`);
  return p;
};

export function register(program: Command): void {
  program
    .command('download')
    .description('download a GPT-1-family checkpoint from the Hugging Face hub (resumable, sha256-checked)')
    .option('--preset <name>', `a ready-made model: ${Object.entries(DOWNLOAD_PRESETS).map(([k, p]) => `${k} (${p.description})`).join('; ')}`, presetArg)
    .option('--repo <id>', `hub repository (default: the preset's, else ${OPENAI_GPT_REPO})`)
    .option('--out <dir>', 'target folder (default: models/<preset or repo name>)')
    .option('--endpoint <url>', 'hub address (default: $HF_ENDPOINT or https://huggingface.co)')
    .option('--files <list>', `comma-separated files (default: the preset's, else ${OPENAI_GPT_FILES.join(',')})`)
    .action(async (o: { preset?: DownloadPreset; repo?: string; out?: string; endpoint?: string; files?: string }) => {
      const repo = o.repo ?? o.preset?.repo ?? OPENAI_GPT_REPO;
      const out = path.resolve(o.out ?? path.join('models', o.preset && !o.repo ? o.preset.dir : repo.split('/').pop()!));
      const files = o.files ? o.files.split(',').map((f) => f.trim()).filter(Boolean) : (o.preset?.files ?? OPENAI_GPT_FILES);
      const tty = process.stderr.isTTY;
      const mb = (n: number) => Math.round(n / 1e5) / 10;
      let bar: cliProgress.SingleBar | null = null;
      const stopBar = () => {
        bar?.stop();
        bar = null;
      };
      try {
        await downloadModel(repo, files, out, {
          endpoint: o.endpoint,
          // The folder declares its chat format (an operator's own chat_format.json is kept).
          chatFormat: o.preset?.chatFormat,
          onProgress: ({ file, received, total }) => {
            if (!tty) return;
            if (!bar) {
              bar = new cliProgress.SingleBar(
                { format: `${file.padEnd(18)} {bar} {percentage}% {value}/{total} MB`, noTTYOutput: false, stream: process.stderr },
                cliProgress.Presets.shades_classic,
              );
              bar.start(mb(total ?? received), mb(received));
            }
            bar.update(mb(received));
          },
          onFileDone: (file, fetched) => {
            stopBar();
            console.error(`${file}: ${fetched ? 'downloaded' : 'already present and valid'}`);
          },
        });
      } finally {
        stopBar();
      }
      console.error(`done: ${out} (use it with --model ${path.relative(process.cwd(), out) || '.'} or MODEL_DIR)`);
    });
}
