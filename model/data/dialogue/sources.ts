// The sources of the chat data: what each is, where it comes from, its licence and attribution,
// and how to read it. The NOTICE is written from this table.
import path from 'node:path';
import { chatterbotConversations } from './chatterbot.js';
import { chitchatConversations, type ChitchatPersona } from './microsoft-chitchat.js';
import type { SourceConversation } from './conversation.js';
import type { Reader } from './build.js';
import { crosswozConversations } from './crosswoz.js';
import { identityConversations } from './identity.js';
import { kdconvConversations } from './kdconv.js';
import { personaChatConversations } from './persona-chat.js';
import { poemConversations } from './poems.js';
import { tatoebaConversations } from './tatoeba.js';
import { xiehouyuConversations, loadXiehouyu } from './xiehouyu.js';

export interface SourceInfo {
  name: string;
  what: string;
  origin: string;
  licence: string;
  attribution: string;
}

export const SOURCE_INFO: Record<string, SourceInfo> = {
  'chitchat-zh': {
    name: 'chitchat-zh',
    what: 'Microsoft personality chit-chat, Simplified Chinese (one persona)',
    origin: 'microsoft/botframework-cli, packages/qnamaker/docs/qnaFormat/chinese_simplified/',
    licence: 'MIT',
    attribution: 'BotFramework CLI, Copyright (c) Microsoft Corporation. All rights reserved.',
  },
  'chitchat-en': {
    name: 'chitchat-en',
    what: 'Microsoft personality chit-chat, English (one persona)',
    origin: 'microsoft/botframework-cli, packages/qnamaker/docs/qnaFormat/english/',
    licence: 'MIT',
    attribution: 'BotFramework CLI, Copyright (c) Microsoft Corporation. All rights reserved.',
  },
  kdconv: {
    name: 'kdconv',
    what: 'KdConv dev split: knowledge-grounded Chinese dialogues (film, music, travel); knowledge attributes dropped',
    origin: 'thu-coai/KdConv',
    licence: 'Apache-2.0',
    attribution: 'Zhou et al., "KdConv: A Chinese Multi-domain Dialogue Dataset Towards Multi-turn Knowledge-driven Conversation", ACL 2020.',
  },
  crosswoz: {
    name: 'crosswoz',
    what: 'CrossWOZ val split: Chinese task-oriented travel dialogues; dialogue acts and states dropped',
    origin: 'thu-coai/CrossWOZ',
    licence: 'Apache-2.0',
    attribution: 'Zhu et al., "CrossWOZ: A Large-Scale Chinese Cross-Domain Task-Oriented Dialogue Dataset", TACL 2020.',
  },
  'chatterbot-zh': {
    name: 'chatterbot-zh',
    what: 'chatterbot-corpus, Chinese (without chinese/humor.yml)',
    origin: 'gunthercox/chatterbot-corpus',
    licence: 'BSD-3-Clause',
    attribution: 'Copyright (c) 2017, Gunther Cox. All rights reserved. (BSD-3-Clause: redistributions keep this notice and the licence conditions.)',
  },
  'chatterbot-en': {
    name: 'chatterbot-en',
    what: 'chatterbot-corpus, English (repeated conversations removed)',
    origin: 'gunthercox/chatterbot-corpus',
    licence: 'BSD-3-Clause',
    attribution: 'Copyright (c) 2017, Gunther Cox. All rights reserved. (BSD-3-Clause: redistributions keep this notice and the licence conditions.)',
  },
  'persona-chat': {
    name: 'persona-chat',
    what: 'Synthetic-Persona-Chat valid split (English persona chit-chat)',
    origin: 'google-research-datasets/Synthetic-Persona-Chat',
    licence: 'CC BY 4.0',
    attribution: 'Jandaghi et al., "Faithful Persona-based Conversational Dataset Generation with Large Language Models", 2023.',
  },
  tatoeba: {
    name: 'tatoeba',
    what: 'Tatoeba Chinese-English sentence pairs as translation requests (both directions)',
    origin: 'tatoeba.org, as packaged in DaoChaShao/py-st-dl-translater-2.0 data/cmn.txt',
    licence: 'CC BY 2.0 FR',
    attribution: 'Sentences from tatoeba.org; the attribution of every pair used is listed at the end of this file.',
  },
  'cedict-zh-en': {
    name: 'cedict-zh-en',
    what: 'CC-CEDICT word meanings as "X是什么意思？" exchanges',
    origin: 'CC-CEDICT (mdbg.net), as packaged in the npm package @tykok/cedict-dictionary',
    licence: 'CC BY-SA 4.0',
    attribution: 'CC-CEDICT, by MDBG and the CC-CEDICT contributors. The exchanges derived from it are shared under CC BY-SA 4.0.',
  },
  'cedict-en-zh': {
    name: 'cedict-en-zh',
    what: 'CC-CEDICT glosses as "How do you say X in Chinese?" exchanges',
    origin: 'CC-CEDICT (mdbg.net), as packaged in the npm package @tykok/cedict-dictionary',
    licence: 'CC BY-SA 4.0',
    attribution: 'CC-CEDICT, by MDBG and the CC-CEDICT contributors. The exchanges derived from it are shared under CC BY-SA 4.0.',
  },
  xiehouyu: {
    name: 'xiehouyu',
    what: '歇后语 as riddle exchanges',
    origin: 'npm package cnchar-xhy (theajack/cnchar)',
    licence: 'MIT',
    attribution: 'Copyright (c) 2017 - present theajack.',
  },
  poems: {
    name: 'poems',
    what: 'the poems of 唐诗三百首 and 千家诗 as "背一首《…》" exchanges (converted to Simplified)',
    origin: 'npm package chinese-poetry (chinese-poetry/chinese-poetry)',
    licence: 'MIT',
    attribution: 'Copyright (c) 2016 JackeyGao.',
  },
  identity: {
    name: 'identity',
    what: "who the bot is, what it can do, how keys and #help work (Chinese and English)",
    origin: 'written by the nemo project for this data set',
    licence: "the nemo project's licence",
    attribution: 'Written by the nemo project (not from an outside source).',
  },
};

export interface ReadOptions {
  /** The shared dialogue folder (../shared/data/dialogue). */
  dir: string;
  seed: number;
  persona: ChitchatPersona;
  personaSystem: boolean;
}

/** The readers of every source but the dictionary (which build.ts ranks by the others' words), in order. */
export function defaultReaders(o: ReadOptions): Reader[] {
  const list: [string, () => AsyncIterable<SourceConversation>][] = [
    ['chitchat-zh', () => chitchatConversations(path.join(o.dir, 'microsoft-chitchat'), 'zh', o.persona)],
    ['chitchat-en', () => chitchatConversations(path.join(o.dir, 'microsoft-chitchat'), 'en', o.persona)],
    ['kdconv', () => kdconvConversations(path.join(o.dir, 'kdconv'))],
    ['crosswoz', () => crosswozConversations(path.join(o.dir, 'crosswoz', 'val.json.zip'))],
    ['chatterbot', () => merge(chatterbotConversations(path.join(o.dir, 'chatterbot-corpus'), 'zh'), chatterbotConversations(path.join(o.dir, 'chatterbot-corpus'), 'en'))],
    ['persona-chat', () => personaChatConversations(path.join(o.dir, 'synthetic-persona-chat', 'Synthetic-Persona-Chat_valid.csv'), { personaSystem: o.personaSystem })],
    ['tatoeba', () => tatoebaConversations(path.join(o.dir, 'tatoeba-cmn-eng', 'cmn.txt'), o.seed)],
    ['xiehouyu', () => toAsync(xiehouyuConversations(loadXiehouyu(), o.seed))],
    ['poems', () => poemConversations({ seed: o.seed })],
    ['identity', () => toAsync(identityConversations())],
  ];
  return list.map(([name, read]) => ({ name, read }));
}

async function* merge<T>(...its: AsyncIterable<T>[]): AsyncGenerator<T> {
  for (const it of its) yield* it;
}

async function* toAsync<T>(it: Iterable<T>): AsyncGenerator<T> {
  yield* it;
}
