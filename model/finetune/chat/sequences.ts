// Conversations → training sequences in the nemo-lines chat format (model/chat-format.ts), with a
// per-token loss mask.
//
//   [system line]\nUser: u1\nBot: b1\nUser: u2\nBot: b2<|endoftext|>
//
// Token ids are exactly what inference sees: at inference the prompt (up to and including "Bot:")
// is tokenized as one text and the model continues with " <reply>"; here the text is tokenized in
// pieces that end where the pre-tokenizer always cuts (before "\n", after "Bot:" ahead of the
// reply's leading space), so the pieces' ids concatenate to the ids of the whole text. A test
// checks every reply's prefix against the encoded inference prompt.
//
// The LM loss covers each assistant reply that answers a user turn and its terminator: the ids of
// the "\nUser:" (or "\nBot:") that follows it inside the sequence — the stop string the reply ends
// at — or the end-of-text id after the sequence's last reply. A conversation longer than the
// context becomes several sequences; each drops whole oldest turns (never the user turn a reply
// answers) and the replies of one sequence are not trained again in the next.
import { BOT_PREFIX, END_OF_TEXT, USER_PREFIX } from '../../chat/format.js';
import type { Conversation } from './data.js';

export type LossOn = 'assistant' | 'all';

export interface ChatSequence {
  ids: number[];
  /** loss[t] = 1 when ids[t] is a training target (predicted at position t − 1); loss[0] is 0. */
  loss: Uint8Array;
  /** Index of the conversation in its file. */
  conversation: number;
  /** The sequence's last trained reply: where it starts (= its prompt's length) and its ids, terminator excluded. */
  lastReply: { start: number; ids: number[] };
}

export interface EncodedConversations {
  sequences: ChatSequence[];
  /** Replies cut to fit the context (prompt or reply tokens dropped). */
  truncated: number;
  /** Trained assistant replies (each in exactly one sequence). */
  replies: number;
}

export interface ChatTokenizer {
  encode(text: string): number[];
  readonly eosId: number | undefined;
}

/** One line per turn, as the chat format writes it (newlines inside a message become spaces). */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' ').replaceAll(END_OF_TEXT, '').trim();
}

interface Turn {
  /** Ids of the turn's text before the reply: "\nUser: u" for a user turn, "\nBot:" for a bot turn. */
  head: number[];
  /** A bot turn's " b" ids (empty for a user turn). */
  reply: number[];
  /** A bot reply that answers a user turn: it carries the loss. */
  trained: boolean;
  /** Ids of the stop string "\nUser:"/"\nBot:" that begins this turn (its previous reply's terminator). */
  stop: number;
}

function turnsOf(c: Conversation, tok: ChatTokenizer): { head: number[]; turns: Turn[] } {
  const system = c.messages.filter((m) => m.role === 'system').map((m) => oneLine(m.content)).filter(Boolean).join(' ');
  const rest = c.messages.filter((m) => m.role !== 'system');
  const stopLen = { user: tok.encode(`\n${USER_PREFIX}`).length, bot: tok.encode(`\n${BOT_PREFIX}`).length };
  const turns = rest.map((m, i): Turn => {
    const nl = i === 0 && !system ? '' : '\n';
    const text = oneLine(m.content);
    if (m.role === 'user') return { head: tok.encode(`${nl}${USER_PREFIX} ${text}`), reply: [], trained: false, stop: nl ? stopLen.user : 0 };
    return { head: tok.encode(`${nl}${BOT_PREFIX}`), reply: tok.encode(` ${text}`), trained: i > 0 && rest[i - 1].role === 'user', stop: nl ? stopLen.bot : 0 };
  });
  return { head: system ? tok.encode(system) : [], turns };
}

const turnLen = (t: Turn) => t.head.length + t.reply.length;

/**
 * Sequences of at most `maxLen` ids for one conversation. `lossOn: 'all'` trains every token
 * (the whole text), otherwise only the replies and their terminators.
 */
export function encodeConversation(
  c: Conversation,
  index: number,
  tok: ChatTokenizer,
  maxLen: number,
  lossOn: LossOn = 'assistant',
): { sequences: ChatSequence[]; truncated: number; replies: number } {
  const eos = tok.eosId;
  if (eos === undefined) throw new Error('the tokenizer has no end-of-text token');
  const { head, turns } = turnsOf(c, tok);
  // At inference a prompt whose oldest turns were dropped starts at the first kept turn's prefix
  // (after the system line's "\n" when there is one), so without the system line that turn is
  // encoded again without its leading newline.
  const texts = c.messages.filter((m) => m.role !== 'system').map((m) => ({ user: m.role === 'user', text: oneLine(m.content) }));
  const openerOf = (s: number, useHead: boolean): number[] => {
    if (useHead || turns[s].stop === 0) return turns[s].head;
    return tok.encode(texts[s].user ? `${USER_PREFIX} ${texts[s].text}` : BOT_PREFIX);
  };
  const lengthOf = (s: number, e: number, useHead: boolean) => {
    let n = (useHead ? head.length : 0) + openerOf(s, useHead).length + turns[s].reply.length + 1;
    for (let i = s + 1; i <= e; i++) n += turnLen(turns[i]);
    return n;
  };
  const sequences: ChatSequence[] = [];
  let truncated = 0;
  let replies = 0;
  let covered = -1; // last turn whose reply has been trained
  const targets = turns.map((t, i) => (t.trained ? i : -1)).filter((i) => i >= 0);
  let k = 0;
  while (k < targets.length) {
    const j = targets[k];
    // Oldest turns go first, then the system line; the user turn that reply j answers stays.
    let useHead = head.length > 0;
    let s = 0;
    while (s < j - 1 && lengthOf(s, j, useHead) > maxLen) s++;
    if (useHead && lengthOf(s, j, true) > maxLen) useHead = false;
    let e = j;
    while (k + 1 < targets.length && lengthOf(s, targets[k + 1], useHead) <= maxLen) e = targets[++k];
    k++;

    const ids: number[] = [];
    const loss: number[] = [];
    const push = (part: readonly number[], train: boolean) => {
      for (const id of part) {
        ids.push(id);
        loss.push(train ? 1 : 0);
      }
    };
    const all = lossOn === 'all';
    if (useHead) push(head, all);
    const first = openerOf(s, useHead);
    let lastStart = -1;
    let lastIds: number[] = [];
    for (let i = s; i <= e; i++) {
      const t = turns[i];
      const h = i === s ? first : t.head;
      const trainReply = t.trained && i > covered;
      if (i > s && turns[i - 1].trained && i - 1 > covered && !all) {
        // The previous reply's terminator: the stop string that opens this turn.
        push(h.slice(0, t.stop), true);
        push(h.slice(t.stop), false);
      } else {
        push(h, all);
      }
      if (trainReply) {
        lastStart = ids.length;
        lastIds = t.reply;
        replies++;
      }
      push(t.reply, all || trainReply);
    }
    push([eos], true);
    covered = e;
    if (ids.length > maxLen) {
      // Reply j alone does not fit with its prompt: keep the prompt's end and the reply's start.
      truncated++;
      const promptLen = lastStart;
      const keepPrompt = Math.min(promptLen, Math.max(maxLen - (ids.length - promptLen), Math.ceil(maxLen / 2)));
      const from = promptLen - keepPrompt;
      ids.splice(0, from);
      loss.splice(0, from);
      lastStart -= from;
      ids.length = maxLen;
      loss.length = maxLen;
      lastIds = lastIds.slice(0, maxLen - lastStart);
    }
    loss[0] = 0;
    sequences.push({ ids, loss: Uint8Array.from(loss), conversation: index, lastReply: { start: lastStart, ids: lastIds } });
  }
  return { sequences, truncated, replies };
}

/** Encodes every conversation of a file. */
export function encodeConversations(conversations: readonly Conversation[], tok: ChatTokenizer, maxLen: number, lossOn: LossOn = 'assistant'): EncodedConversations {
  const out: EncodedConversations = { sequences: [], truncated: 0, replies: 0 };
  conversations.forEach((c, i) => {
    const r = encodeConversation(c, i, tok, maxLen, lossOn);
    out.sequences.push(...r.sequences);
    out.truncated += r.truncated;
    out.replies += r.replies;
  });
  return out;
}
