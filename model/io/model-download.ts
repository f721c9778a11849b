// Downloading a model's files from the hub into one folder, as `npm run model:download` and the
// admin panel's Models page do: each file resumable and checked (download.ts), then the chat
// format the preset declares written to chat_format.json (an operator's own one is kept).
import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { downloadFile, hubUrl, type FileProgress } from './download.js';
import { CHAT_FORMAT_FILE } from '../chat/declaration.js';

export interface ModelDownloadProgress extends FileProgress {
  /** 0-based index of the file being downloaded, of `files`. */
  fileIndex: number;
  files: number;
}

export interface ModelDownloadOptions {
  endpoint?: string;
  /** Written to chat_format.json when the folder has none. */
  chatFormat?: { format: string; version: number };
  onProgress?: (p: ModelDownloadProgress) => void;
  /** A file is in place: `fetched` false when it was already there and valid. */
  onFileDone?: (file: string, fetched: boolean) => void;
}

export async function downloadModel(repo: string, files: string[], out: string, opts: ModelDownloadOptions = {}): Promise<void> {
  for (const [fileIndex, file] of files.entries()) {
    const fetched = await downloadFile(hubUrl(repo, file, opts.endpoint), path.join(out, file), {
      onProgress: (p) => opts.onProgress?.({ ...p, fileIndex, files: files.length }),
    });
    opts.onFileDone?.(file, fetched);
  }
  const declared = path.join(out, CHAT_FORMAT_FILE);
  if (opts.chatFormat && !(await access(declared).then(() => true, () => false))) {
    await writeFile(declared, `${JSON.stringify(opts.chatFormat, null, 2)}\n`);
  }
}
