// Checks the project's Markdown documents against the code they describe: the npm scripts they
// tell readers to run, the files they link to and the environment variables they name.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Folders whose Markdown files are documentation (besides the top-level README.md). */
export const DOC_ROOTS = ['docs', 'core', 'model', 'bot', 'server', 'admin', 'scripts'];
/** Folders whose source tells which environment variables exist. */
const SOURCE_ROOTS = ['core', 'model', 'bot', 'server', 'admin', 'scripts', '.ci'];
/** Variables of Node or the shell that the documents may name without the project reading them. */
const EXTERNAL_VARIABLES = new Set(['NODE_OPTIONS', 'NODE_ENV']);

function walk(dir: string, keep: (name: string) => boolean, out: string[] = []): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name === 'node_modules' || name === 'build' || (name.startsWith('.') && name !== '.ci')) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p, keep, out);
    else if (keep(name)) out.push(p);
  }
  return out;
}

/** The documents to check: README.md and every *.md under DOC_ROOTS, relative to root. */
export function listDocuments(root: string): string[] {
  const files = existsSync(path.join(root, 'README.md')) ? [path.join(root, 'README.md')] : [];
  for (const r of DOC_ROOTS) walk(path.join(root, r), (n) => n.endsWith('.md'), files);
  return files.map((f) => path.relative(root, f)).sort();
}

/** The npm scripts package.json defines. */
export function npmScripts(root: string): Set<string> {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  return new Set(Object.keys(pkg.scripts ?? {}));
}

/**
 * Environment variables the project knows: those in .env.example (set or commented out), those
 * its code reads (`env.NAME`, `env['NAME']`) and the keys of the zod schemas in its config.ts files.
 */
export function knownVariables(root: string): Set<string> {
  const known = new Set(EXTERNAL_VARIABLES);
  const example = path.join(root, '.env.example');
  if (existsSync(example)) {
    for (const m of readFileSync(example, 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)) known.add(m[1]);
  }
  const sources = SOURCE_ROOTS.flatMap((r) => walk(path.join(root, r), (n) => /\.(ts|mjs|js)$/.test(n) || n === 'run'));
  for (const file of sources) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\benv(?:\.([A-Z][A-Z0-9_]*)|\[['"]([A-Z][A-Z0-9_]*)['"]\])/g)) known.add(m[1] ?? m[2]);
    if (path.basename(file) === 'config.ts') {
      for (const m of text.matchAll(/^\s+([A-Z][A-Z0-9_]*):/gm)) known.add(m[1]);
    }
    // Shell scripts (.ci/run): `export NAME=` and `${NAME`.
    if (path.basename(file) === 'run') {
      for (const m of text.matchAll(/(?:export\s+|\$\{)([A-Z][A-Z0-9_]*)/g)) known.add(m[1]);
    }
  }
  return known;
}

/**
 * Upper-case names with an underscore that the code declares as constants (TypeScript `const X`,
 * C++ `#define X` / `constexpr … X`): a document may name those without them being variables.
 */
export function declaredConstants(root: string): Set<string> {
  const names = new Set<string>();
  const sources = SOURCE_ROOTS.flatMap((r) => walk(path.join(root, r), (n) => /\.(ts|mjs|js|cc|h)$/.test(n)));
  for (const file of sources) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\b(?:const|let|enum|#define|constexpr\s+[\w:]+)\s+([A-Z][A-Z0-9]*_[A-Z0-9_]*)\b/g)) names.add(m[1]);
  }
  return names;
}

export interface DocProblem {
  file: string;
  line: number;
  problem: string;
}

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Inline code spans and fenced blocks replaced by spaces (line numbers kept): links in code are not links. */
function withoutCode(text: string): string {
  const blank = (s: string): string => s.replace(/[^\n]/g, ' ');
  return text.replace(/^```[^\n]*\n[\s\S]*?^```/gm, blank).replace(/`[^`\n]*`/g, blank);
}

/** The anchors GitHub gives a document's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
export function headingAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of text.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = m[1]
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

export interface DocContext {
  root: string;
  scripts: Set<string>;
  variables: Set<string>;
  constants: Set<string>;
}

export function docContext(root: string): DocContext {
  return { root, scripts: npmScripts(root), variables: knownVariables(root), constants: declaredConstants(root) };
}

/** Problems in one document (path relative to ctx.root): unknown npm scripts, dead relative links, unknown variables. */
export function checkDocument(file: string, text: string, ctx: DocContext): DocProblem[] {
  const problems: DocProblem[] = [];
  for (const m of text.matchAll(/\bnpm run(?:\s+-s)?\s+([a-z][\w:.*-]*)/g)) {
    // `npm run bench:*` stands for a family of scripts: at least one must exist.
    const pattern = new RegExp(`^${m[1].replace(/[.*]/g, (c) => (c === '*' ? '.*' : '\\.'))}$`);
    if (![...ctx.scripts].some((s) => pattern.test(s))) {
      problems.push({ file, line: lineOf(text, m.index), problem: `"npm run ${m[1]}": package.json has no script "${m[1]}"` });
    }
  }
  const prose = withoutCode(text);
  for (const m of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1];
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    const [local, anchor] = decodeURIComponent(target).split('#', 2);
    const resolved = local ? path.resolve(ctx.root, path.dirname(file), local) : path.resolve(ctx.root, file);
    if (!existsSync(resolved)) {
      problems.push({ file, line: lineOf(prose, m.index), problem: `link to "${target}": no such file` });
    } else if (anchor && resolved.endsWith('.md')) {
      const source = local ? readFileSync(resolved, 'utf8') : text;
      if (!headingAnchors(source).has(anchor)) {
        problems.push({ file, line: lineOf(prose, m.index), problem: `link to "${target}": no heading with that anchor` });
      }
    }
  }
  for (const m of text.matchAll(/(?<![\w.$/-])([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])(?![\w(])/g)) {
    const name = m[1];
    if (ctx.variables.has(name) || ctx.constants.has(name)) continue;
    problems.push({ file, line: lineOf(text, m.index), problem: `"${name}": neither .env.example nor the code knows this variable` });
  }
  return problems;
}

export function formatProblems(problems: DocProblem[]): string {
  return problems.map((p) => `${p.file}:${p.line}: ${p.problem}`).join('\n');
}
