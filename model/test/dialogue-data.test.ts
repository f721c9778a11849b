// `npm run data:dialogue`: every source reader on a small fixture in its real format, the text
// normalisation, the windowing against the token budget, and the builder (split disjointness,
// determinism, de-duplication, caps, NOTICE, counts); the readers on the real ../shared corpora
// when present.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildDialogueData, notice, sequenceTokens, windows, writeDialogueData, type BuildOptions, type Reader } from '../data/dialogue/build.js';
import { cedictConversations, cleanGlosses, loadCedict, rankWords } from '../data/dialogue/cedict.js';
import { chatterbotConversations } from '../data/dialogue/chatterbot.js';
import { DialogueDataError, normalizeText, type Message, type SourceConversation } from '../data/dialogue/conversation.js';
import { crosswozConversations } from '../data/dialogue/crosswoz.js';
import { identityConversations } from '../data/dialogue/identity.js';
import { kdconvConversations } from '../data/dialogue/kdconv.js';
import { chitchatConversations, parseQna } from '../data/dialogue/microsoft-chitchat.js';
import { personaChatConversations } from '../data/dialogue/persona-chat.js';
import { poemConversations } from '../data/dialogue/poems.js';
import { defaultReaders } from '../data/dialogue/sources.js';
import { parseTatoeba, tatoebaConversations } from '../data/dialogue/tatoeba.js';
import { loadXiehouyu, xiehouyuConversations } from '../data/dialogue/xiehouyu.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';

const FIXTURES = path.resolve('model/test/fixtures/dialogue');
const SHARED = process.env.NEMO_DIALOGUE_DIR ?? path.resolve('../shared/data/dialogue');

async function all<T>(it: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const pairs = (c: SourceConversation) => c.messages.map((m) => `${m.role}:${m.content}`);

test('normalisation: whitespace collapsed, Simplified characters, full-width punctuation kept', () => {
  assert.equal(normalizeText('  Hello,\n\n  world!\t '), 'Hello, world!');
  assert.equal(normalizeText('舉頭望明月，低頭思故鄉。'), '举头望明月，低头思故乡。');
  assert.equal(normalizeText('你 好 ，世界！'), '你好，世界！');
  assert.equal(normalizeText('I like 北京 a lot'), 'I like 北京 a lot');
  assert.equal(normalizeText('a<|endoftext|>b'), 'a b');
  assert.equal(normalizeText(' \u3000\n'), '');
});

test('Microsoft chit-chat: every question and paraphrase with the group answer; Filters lines are not questions', async () => {
  const zh = await all(chitchatConversations(path.join(FIXTURES, 'microsoft-chitchat'), 'zh'));
  assert.equal(zh.length, 8); // two groups, the `# ?` question and three paraphrases each
  assert.deepEqual(pairs(zh[0] as SourceConversation), ['user:我们一样大吗', 'assistant:我哪来什么年龄哟。']);
  assert.deepEqual(pairs(zh[3] as SourceConversation), ['user:你是个小孩子吗', 'assistant:我哪来什么年龄哟。']);
  assert.ok(zh.every((c) => c.source === 'chitchat-zh' && c.lang === 'zh'));
  assert.ok(!zh.some((c) => c.messages[0]?.content.includes('editorial')), 'the `- editorial = chitchat` filter line is metadata');
  const en = await all(chitchatConversations(path.join(FIXTURES, 'microsoft-chitchat'), 'en'));
  assert.deepEqual(pairs(en[5] as SourceConversation), ['user:Are you trans?', "assistant:That doesn't really apply to me."]);
  assert.throws(() => parseQna('# ? hi\n- hello\n```markdown\nanswer', 'x.qna'), /x\.qna:3: answer block is never closed/);
  assert.throws(() => parseQna('just text', 'y.qna'), DialogueDataError);
});

test('KdConv: alternating roles, knowledge attributes dropped', async () => {
  const c = await all(kdconvConversations(path.join(FIXTURES, 'kdconv')));
  assert.equal(c.length, 3);
  assert.deepEqual(c.map((x) => x.group), ['kdconv:film:0', 'kdconv:music:0', 'kdconv:travel:0']);
  const film = c[0] as SourceConversation;
  assert.deepEqual(film.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant', 'user']);
  assert.equal(film.messages[0]?.content, '知道恋恋笔记本这部电影吗？');
  assert.ok(film.messages.every((m) => Object.keys(m).join() === 'role,content'));
});

test('CrossWOZ: read from the zip, usr/sys become user/assistant', async () => {
  const c = await all(crosswozConversations(path.join(FIXTURES, 'crosswoz', 'val.json.zip')));
  assert.equal(c.length, 2);
  assert.deepEqual(c[0]?.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
  assert.ok(c.every((x) => x.group.startsWith('crosswoz:') && x.messages.every((m) => m.content.length > 0)));
  assert.ok(c.some((x) => x.messages[0]?.content.startsWith('你好，我想找家人均消费')));
  await assert.rejects(all(crosswozConversations(path.join(FIXTURES, 'cedict.json'))), DialogueDataError);
});

test('chatterbot-corpus: chinese/humor.yml left out, repeated conversations kept once', async () => {
  const zh = await all(chatterbotConversations(path.join(FIXTURES, 'chatterbot-corpus'), 'zh'));
  assert.ok(zh.length > 0 && zh.every((c) => c.group.startsWith('chatterbot-zh:greetings.yml')));
  const en = await all(chatterbotConversations(path.join(FIXTURES, 'chatterbot-corpus'), 'en'));
  const keys = en.map((c) => JSON.stringify(c.messages));
  assert.equal(new Set(keys).size, keys.length);
  assert.ok(en.length >= 5 && en.length < 11, `the 11 listed tech_support pairs hold repeats (got ${en.length} distinct)`);
  assert.deepEqual(en[0]?.messages.map((m) => m.role), ['user', 'assistant']);
});

test('Synthetic-Persona-Chat: plain and Markdown turns, template slots cut out, persona as optional system line', async () => {
  const file = path.join(FIXTURES, 'synthetic-persona-chat', 'Synthetic-Persona-Chat_valid.csv');
  const c = await all(personaChatConversations(file));
  assert.deepEqual(pairs(c[0] as SourceConversation).slice(0, 2), ['user:Hi!', 'assistant:Hello!']);
  assert.equal(c[1]?.messages[0]?.content, 'Hi there! How are you doing today?');
  assert.ok(c.every((x) => x.messages.every((m) => !/\[[a-z]/i.test(m.content))), 'no "[user 1\'s name]" slots');
  const third = c.filter((x) => x.group === 'persona-chat:2');
  assert.equal(third.length, 1);
  assert.equal(third[0]?.messages[0]?.content, 'What do you like to do for fun?');
  const withPersona = await all(personaChatConversations(file, { personaSystem: true }));
  assert.deepEqual(withPersona[0]?.messages[0], { role: 'system', content: 'I am a boy. I can move objects with my mind. I had to have a transplant. I was born with my heart outside my body.' });
});

test('Tatoeba: translation requests in both directions, each with its attribution', async () => {
  const c = await all(tatoebaConversations(path.join(FIXTURES, 'tatoeba-cmn-eng', 'cmn.txt'), 1));
  assert.equal(c.length, 7);
  for (const x of c) {
    assert.equal(x.lang, 'mixed');
    assert.match(x.attribution ?? '', /tatoeba\.org #\d+/);
    const [ask, answer] = x.messages;
    const toChinese = /Chinese/.test(ask?.content ?? '');
    assert.ok(toChinese || /英/.test(ask?.content ?? ''), ask?.content);
    assert.equal(/[\u4e00-\u9fff]/.test(answer?.content ?? ''), toChinese);
  }
  assert.ok(c.some((x) => /Chinese/.test(x.messages[0]?.content ?? '')) && c.some((x) => /英/.test(x.messages[0]?.content ?? '')));
  assert.throws(() => parseTatoeba('Hi.\t你好。\n', 'cmn.txt'), /cmn\.txt:1: expected/);
});

test('CC-CEDICT: meanings without cross-references, most used words first, one word per English gloss', async () => {
  assert.deepEqual(cleanGlosses(['kitchen', 'CL:間|间[jian1]']), ['kitchen']);
  assert.deepEqual(cleanGlosses(['to know; to become aware of', 'also pr. [zhi1dao5]']), ['to know; to become aware of']);
  assert.deepEqual(cleanGlosses(['variant of 瞭|了[liao3]', '(old) servant', 'family member', 'a (large) dog']), ['family member', 'a dog']);
  const entries = await loadCedict(path.join(FIXTURES, 'cedict.json'));
  const words = rankWords(['我知道厨房在哪', '你知道吗', '电脑和电脑'], new Set(entries.map((e) => e.simplified)), 1);
  assert.deepEqual(words, ['电脑', '知道', '厨房']);
  const c = [...cedictConversations(entries, words, 1)];
  assert.deepEqual(c.map((x) => x.source), ['cedict-zh-en', 'cedict-en-zh', 'cedict-zh-en', 'cedict-en-zh', 'cedict-zh-en', 'cedict-en-zh']);
  assert.equal(c[0]?.messages[1]?.content, '“电脑”的意思是 computer。');
  assert.match(c[1]?.messages[0]?.content ?? '', /"computer"/);
  assert.equal(c[1]?.messages[1]?.content, '"computer" in Chinese is 电脑.');
  assert.equal(c[3]?.messages[1]?.content, '"to know" in Chinese is 知道.');
  await assert.rejects(loadCedict(path.join(FIXTURES, 'missing.json')), DialogueDataError);
});

test('歇后语: riddle exchanges from cnchar-xhy', () => {
  const installed = loadXiehouyu();
  assert.ok(installed.length > 10_000);
  const c = [...xiehouyuConversations([['做贼的说梦话', '想偷'], ['滚水泼老鼠', '在劫难逃']], 1)];
  assert.equal(c.length, 2);
  for (const x of c) {
    const [ask, answer] = x.messages;
    assert.ok(/歇后语|下一句/.test(ask?.content ?? ''));
    assert.ok(answer?.content === '想偷' || answer?.content === '在劫难逃' || /——/.test(answer?.content ?? ''));
  }
});

test('poems: anthology poems by title, dynasty prefix and editorial notes removed, series left out', async () => {
  const c = await all(poemConversations({ seed: 1, dir: path.join(FIXTURES, 'mengxue') }));
  const byTitle = new Map<string, string>();
  // Titles are compared in Simplified; the builder converts the poem text with every other message.
  for (const x of c) byTitle.set(/《(.+?)》/.exec(x.messages[1]?.content ?? '')?.[1] ?? '', normalizeText(x.messages[1]?.content ?? ''));
  assert.deepEqual([...byTitle.keys()].sort(), ['夜上受降城闻笛', '春眠', '杂诗', '登鹳雀楼', '静夜思'].sort(), '雜詩三首·其二 is part of a series');
  assert.equal(byTitle.get('静夜思'), '《静夜思》李白：床前明月光，疑是地上霜，举头望明月，低头思故乡。', "唐诗三百首's reading, not 千家诗's 牀前");
  assert.equal(byTitle.get('春眠'), '《春眠》孟浩然：春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。');
  assert.doesNotMatch(byTitle.get('夜上受降城闻笛') ?? '', /[（()）]|一作/);
  assert.ok(c.some((x) => x.messages[0]?.content === '背一首《静夜思》'));
  assert.equal(c.length, 10, 'two phrasings per poem');
});

test('identity set: both languages, names the bot and the real commands', () => {
  const c = [...identityConversations()];
  assert.ok(c.some((x) => x.lang === 'zh') && c.some((x) => x.lang === 'en'));
  const answers = c.map((x) => x.messages[1]?.content ?? '').join('\n');
  for (const word of ['nemo', '#help', '#reset', '#status']) assert.ok(answers.includes(word), word);
});

test('windows: whole exchanges within the token budget, overlong exchanges dropped, persona only in the first window', () => {
  const count = (t: string) => t.length; // one token per character keeps the arithmetic visible
  const m = (role: Message['role'], content: string): Message => ({ role, content });
  const dialogue = [m('system', 'P'), m('user', 'aaaa'), m('assistant', 'bbbb'), m('user', 'cccc'), m('assistant', 'dddd'), m('user', 'x'.repeat(60)), m('assistant', 'y'), m('user', 'eeee'), m('assistant', 'ffff')];
  const o = { countTokens: count, maxPairTokens: 40, maxTokens: 40 };
  const w = windows(dialogue, o);
  assert.equal(w.overlong, 1);
  assert.deepEqual(w.windows.map((x) => x.map((y) => y.content)), [['P', 'aaaa', 'bbbb'], ['cccc', 'dddd'], ['eeee', 'ffff']]);
  for (const x of w.windows) assert.ok(sequenceTokens(x, count) <= 40);
  // The contract: prompt up to "Bot:" on its own, " reply" on its own, one terminator token.
  assert.equal(sequenceTokens([m('user', 'hi'), m('assistant', 'yo')], count), 'User: hi\nBot:'.length + ' yo'.length + 1);
  assert.equal(
    sequenceTokens([m('user', 'hi'), m('assistant', 'yo'), m('user', 'a'), m('assistant', 'b')], count),
    'User: hi\nBot:'.length + ' yo'.length + 1 + '\nUser: a\nBot:'.length + ' b'.length + 1,
  );
});

function fixtureReaders(seed: number): Reader[] {
  const r = (name: string, read: () => AsyncIterable<SourceConversation> | Iterable<SourceConversation>): Reader => ({
    name,
    read: async function* () {
      yield* read();
    },
  });
  // Twenty long dialogues, each cut into several windows: all windows of one dialogue share a split.
  const long = (): SourceConversation[] =>
    Array.from({ length: 20 }, (_, d) => ({
      messages: Array.from({ length: 12 }, (_, t) => ({ role: t % 2 === 0 ? 'user' : 'assistant', content: `d${d} turn ${t} ${'word '.repeat(8)}` }) as Message),
      source: 'persona-chat',
      lang: 'en',
      group: `long:${d}`,
    }));
  return [
    r('chitchat-zh', () => chitchatConversations(path.join(FIXTURES, 'microsoft-chitchat'), 'zh')),
    r('chitchat-en', () => chitchatConversations(path.join(FIXTURES, 'microsoft-chitchat'), 'en')),
    r('kdconv', () => kdconvConversations(path.join(FIXTURES, 'kdconv'))),
    r('crosswoz', () => crosswozConversations(path.join(FIXTURES, 'crosswoz', 'val.json.zip'))),
    r('chatterbot', async function* () {
      yield* chatterbotConversations(path.join(FIXTURES, 'chatterbot-corpus'), 'zh');
      yield* chatterbotConversations(path.join(FIXTURES, 'chatterbot-corpus'), 'en');
    }),
    r('persona-chat', long),
    r('tatoeba', () => tatoebaConversations(path.join(FIXTURES, 'tatoeba-cmn-eng', 'cmn.txt'), seed)),
    r('xiehouyu', () => xiehouyuConversations([['做贼的说梦话', '想偷'], ['滚水泼老鼠', '在劫难逃'], ['泡泡糖粘住糯米饭', '扯也扯不开']], seed)),
    r('poems', () => poemConversations({ seed, dir: path.join(FIXTURES, 'mengxue') })),
    r('identity', () => identityConversations()),
    // A pair that chit-chat already has, from another source: kept once.
    r('chatterbot-again', () => [{ messages: [{ role: 'user', content: '我们一样大吗' }, { role: 'assistant', content: '我哪来什么年龄哟。' }], source: 'chatterbot-zh', lang: 'zh', group: 'again:0' }]),
  ];
}

let tokenizer: BpeTokenizer | undefined;
async function options(seed: number, over: Partial<BuildOptions> = {}): Promise<BuildOptions> {
  tokenizer ??= await BpeTokenizer.load(path.resolve('model/shipped'));
  const tok = tokenizer;
  return {
    readers: fixtureReaders(seed),
    cedict: () => loadCedict(path.join(FIXTURES, 'cedict.json')),
    countTokens: (t) => tok.encode(t).length,
    seed,
    validShare: 0.25,
    caps: { xiehouyu: 2 },
    maxPairTokens: 120,
    maxTokens: 128,
    ...over,
  };
}

test('builder: disjoint splits by dialogue, de-duplicated, capped, within the context, deterministic', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-dialogue-'));
  try {
    const a = await buildDialogueData(await options(7));
    const key = (r: { messages: Message[] }) => JSON.stringify(r.messages);
    const train = new Set(a.train.map(key));
    assert.ok(a.valid.length > 0 && a.valid.every((r) => !train.has(key(r))), 'no conversation in both splits');
    // Windows of one long dialogue (d<n>) all land in one split.
    const splitOf = new Map<string, string>();
    for (const [split, records] of [['train', a.train], ['valid', a.valid]] as const) {
      for (const r of records.filter((x) => x.source === 'persona-chat')) {
        const d = /^d(\d+) /.exec(r.messages[0]?.content ?? '')?.[1] as string;
        assert.notEqual(splitOf.get(d) ?? split, split === 'train' ? 'valid' : 'train', `dialogue d${d} in both splits`);
        splitOf.set(d, split);
      }
    }
    assert.ok([...splitOf.values()].includes('valid') && [...splitOf.values()].includes('train'));
    const persona = [...a.train, ...a.valid].filter((r) => r.source === 'persona-chat');
    assert.ok(persona.length > 20, 'long dialogues are cut into windows');
    const all = [...a.train, ...a.valid];
    for (const r of all) {
      assert.ok(sequenceTokens(r.messages, (t) => (tokenizer as BpeTokenizer).encode(t).length) <= 128);
      assert.ok(r.messages.every((m) => m.content !== '' && m.content === m.content.trim()));
      assert.ok(['zh', 'en', 'mixed'].includes(r.lang));
    }
    // The same user→assistant pair from two sources is kept once.
    assert.equal(all.filter((r) => key(r) === JSON.stringify([{ role: 'user', content: '我们一样大吗' }, { role: 'assistant', content: '我哪来什么年龄哟。' }])).length, 1);
    assert.equal(a.stats.sources['chatterbot-zh']?.dropped.duplicate, 1);
    assert.equal(all.filter((r) => r.source === 'xiehouyu').length, 2);
    assert.equal(a.stats.sources.xiehouyu?.dropped.capped, 1);
    // Poems were in traditional characters; the output is Simplified.
    assert.ok(all.some((r) => r.messages[1]?.content.startsWith('《静夜思》李白：床前明月光')));

    // Same seed, same bytes; another seed, another split.
    const f1 = await writeDialogueData(path.join(dir, 'a'), a);
    const f2 = await writeDialogueData(path.join(dir, 'b'), await buildDialogueData(await options(7)));
    for (const k of ['train', 'valid', 'notice', 'stats'] as const) assert.equal(await readFile(f1[k], 'utf8'), await readFile(f2[k], 'utf8'), k);
    const other = await buildDialogueData(await options(8));
    assert.notDeepEqual(other.valid.map(key).sort(), a.valid.map(key).sort());

    // stats.json agrees with the files.
    const stats = JSON.parse(await readFile(f1.stats, 'utf8')) as typeof a.stats;
    const lines = (await readFile(f1.train, 'utf8')).trim().split('\n');
    assert.equal(lines.length, Object.values(stats.sources).reduce((n, s) => n + s.train.conversations, 0));
    for (const line of lines) assert.deepEqual(Object.keys(JSON.parse(line) as object), ['messages', 'source', 'lang']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('NOTICE: every contributing source with its licence, the identity set marked as the project\'s, Tatoeba attributions', async () => {
  const result = await buildDialogueData(await options(3));
  const text = notice(result);
  const contributed = [...new Set([...result.train, ...result.valid].map((r) => r.source))];
  assert.ok(contributed.length >= 12, contributed.join());
  for (const s of contributed) assert.match(text, new RegExp(`^\\* ${s}: `, 'm'), s);
  assert.match(text, /\* identity: [^\n]*\n {2}from: written by the nemo project/);
  assert.match(text, /licence: CC BY-SA 4\.0/);
  assert.match(text, /licence: CC BY 4\.0\n {2}attribution: Jandaghi et al\./);
  assert.equal((text.match(/tatoeba\.org #/g) ?? []).length, 7, 'one attribution line per Tatoeba pair used');
});

test('the shared corpora: every reader parses the real files', { skip: !existsSync(SHARED) && `no dialogue corpora at ${SHARED} (set NEMO_DIALOGUE_DIR)` }, async () => {
  const readers = defaultReaders({ dir: SHARED, seed: 1, persona: 'friendly', personaSystem: false });
  const counts = new Map<string, number>();
  const groups = new Map<string, Set<string>>();
  for (const r of readers.filter((x) => !['xiehouyu', 'poems', 'identity'].includes(x.name))) {
    for await (const c of r.read()) {
      counts.set(c.source, (counts.get(c.source) ?? 0) + 1);
      const g = groups.get(c.source) ?? new Set<string>();
      g.add(c.source.startsWith('chitchat') ? c.group.replace(/:\d+$/, '') : c.group); // chit-chat: the question group
      groups.set(c.source, g);
      assert.ok(c.messages.length >= 2 && c.messages.every((m) => typeof m.content === 'string'));
      if (c.source.startsWith('chitchat')) assert.doesNotMatch(c.messages[0]?.content ?? '', /^editorial =/);
    }
  }
  // The counts the shared README gives.
  assert.equal(counts.get('kdconv'), 450);
  assert.equal(counts.get('crosswoz'), 500);
  assert.equal(groups.get('persona-chat')?.size, 1000);
  assert.equal(counts.get('tatoeba'), 29155);
  assert.equal(groups.get('chitchat-zh')?.size, 89);
  assert.equal(groups.get('chitchat-en')?.size, 90);
  assert.ok((counts.get('chatterbot-en') ?? 0) > 500 && (counts.get('chatterbot-zh') ?? 0) > 300);
});

test('CLI: --help, and bad options or a missing corpus folder stop with a clear error', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'model/data/dialogue/cli.ts', ...args], { encoding: 'utf8' });
  const help = run('--help');
  assert.equal(help.status, 0);
  for (const flag of ['--out', '--seed', '--valid-share', '--cap', '--persona']) assert.match(help.stdout, new RegExp(flag));
  const share = run('--valid-share', '2');
  assert.notEqual(share.status, 0);
  assert.match(share.stderr, /--valid-share must be a number between 0 and 0\.5/);
  const missing = run('--source', path.join(FIXTURES, 'nowhere'), '--out', path.join(os.tmpdir(), 'nemo-dialogue-never'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /dialogue corpora not found at .*nowhere/);
});
