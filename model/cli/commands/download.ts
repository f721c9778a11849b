// `npm run model:download`: fetch openai-gpt (or another repo) from the Hugging Face hub into
// models/<name>/ with a progress bar; resumes partial files and checks sha256 (see download.ts).
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { downloadFile, hubUrl, OPENAI_GPT_FILES, OPENAI_GPT_REPO } from '../../io/download.js';

export function register(program: Command): void {
  program
    .command('download')
    .description('download a GPT-1 checkpoint from the Hugging Face hub (resumable, sha256-checked)')
    .option('--repo <id>', 'hub repository', OPENAI_GPT_REPO)
    .option('--out <dir>', 'target folder (default: models/<repo name>)')
    .option('--endpoint <url>', 'hub address (default: $HF_ENDPOINT or https://huggingface.co)')
    .option('--files <list>', 'comma-separated files', OPENAI_GPT_FILES.join(','))
    .action(async (o: { repo: string; out?: string; endpoint?: string; files: string }) => {
      const out = path.resolve(o.out ?? path.join('models', o.repo.split('/').pop()!));
      const files = o.files.split(',').map((f) => f.trim()).filter(Boolean);
      const tty = process.stderr.isTTY;
      for (const file of files) {
        const bar = new cliProgress.SingleBar(
          { format: `${file.padEnd(18)} {bar} {percentage}% {value}/{total} MB`, noTTYOutput: false, stream: process.stderr },
          cliProgress.Presets.shades_classic,
        );
        let started = false;
        const fetched = await downloadFile(hubUrl(o.repo, file, o.endpoint), path.join(out, file), {
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
      console.error(`done: ${out}`);
    });
}
