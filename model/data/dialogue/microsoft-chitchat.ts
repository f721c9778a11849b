// Microsoft personality chit-chat (.qna files of microsoft/botframework-cli, MIT): each `# ? question`
// has `- paraphrase` lines and one answer in a ``` code block. Every question and paraphrase becomes
// a one-turn conversation with the group's answer.
import path from 'node:path';
import { DialogueDataError, readSourceText, type Lang, type SourceConversation } from './conversation.js';

export interface QnaGroup {
  questions: string[];
  answer: string;
}

/** Parses one .qna file into question groups (questions first the `# ?` line, then paraphrases). */
export function parseQna(text: string, file = 'qna'): QnaGroup[] {
  const groups: QnaGroup[] = [];
  const lines = text.split(/\r?\n/);
  let questions: string[] | null = null;
  // Paraphrases are the `- ` lines right under `# ?`; later `- ` lines are metadata
  // (`**Filters:**` / `- editorial = chitchat`), not questions.
  let paraphrases = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith('# ?')) {
      questions = [line.slice(3).trim()];
      paraphrases = true;
    } else if (questions && paraphrases && line.startsWith('- ')) {
      questions.push(line.slice(2).trim());
    } else if (questions && line.startsWith('```')) {
      const end = lines.indexOf('```', i + 1);
      if (end < 0) throw new DialogueDataError(`${file}:${i + 1}: answer block is never closed`);
      groups.push({ questions: questions.filter((q) => q !== ''), answer: lines.slice(i + 1, end).join('\n').trim() });
      questions = null;
      i = end;
    } else {
      paraphrases = false;
    }
  }
  if (groups.length === 0) throw new DialogueDataError(`${file}: no question groups found (expected "# ?" lines and \`\`\` answer blocks)`);
  return groups;
}

export const CHITCHAT_PERSONAS = ['caring', 'enthusiastic', 'friendly', 'professional', 'witty'] as const;
export type ChitchatPersona = (typeof CHITCHAT_PERSONAS)[number];

/** Chit-chat of one persona in one language (`chinese_simplified` or `english` folder). */
export async function* chitchatConversations(dir: string, lang: 'zh' | 'en', persona: ChitchatPersona = 'friendly'): AsyncGenerator<SourceConversation> {
  const folder = lang === 'zh' ? 'chinese_simplified' : 'english';
  const file = path.join(dir, folder, `qna_chitchat_${persona}.qna`);
  const text = await readSourceText(file);
  const source = `chitchat-${lang}`;
  const groups = parseQna(text, file);
  for (const [g, group] of groups.entries()) {
    for (const [q, question] of group.questions.entries()) {
      yield {
        messages: [{ role: 'user', content: question }, { role: 'assistant', content: group.answer }],
        source,
        lang: lang satisfies Lang,
        group: `${source}:${g}:${q}`,
      };
    }
  }
}
