// `npm run model:download`: fetch a preset (cdial-large, cdial-base, openai-gpt) or any hub repo
// into models/<name>/ with a progress bar; resumes partial files and checks sha256 (download.ts).
import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { downloadFile, hubUrl, OPENAI_GPT_FILES, OPENAI_GPT_REPO } from '../../io/download.js';
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
      for (const file of files) {
        const bar = new cliProgress.SingleBar(
          { format: `${file.padEnd(18)} {bar} {percentage}% {value}/{total} MB`, noTTYOutput: false, stream: process.stderr },
          cliProgress.Presets.shades_classic,
        );
        let started = false;
        const fetched = await downloadFile(hubUrl(repo, file, o.endpoint), path.join(out, file), {
          onProgress: ({ received, total }) => {
            if (!tty) return;
            const mb = (n: number) => Math.round(n / 1e5) / 10;
            if (!started) {
              bar.start(mb(total ?? received), mb(received));
              started = true;
            }
            bar.update(mb(received));
          },
        }).finally(() => started && bar.stop());
        console.error(`${file}: ${fetched ? 'downloaded' : 'already present and valid'}`);
      }
      // The folder declares its chat format (an operator's own chat_format.json is kept).
      const declared = path.join(out, 'chat_format.json');
      if (o.preset && !(await access(declared).then(() => true, () => false))) {
        await writeFile(declared, `${JSON.stringify(o.preset.chatFormat, null, 2)}\n`);
      }
      console.error(`done: ${out} (use it with --model ${path.relative(process.cwd(), out) || '.'} or MODEL_DIR)`);
    });
}
