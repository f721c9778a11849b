// A TRIVIAL TextGenerator for measuring the bot's own overhead ONLY (npm run bench:bot): it
// answers instantly with the last words of the message, so the benchmark times key checks, limits,
// memory, usage and sending, not the model. Never used to serve chatters; model time is measured
// separately with the real generation service. Its "chat format" spells the message as code points.

const codePoints = (text: string) => [...text].map((c) => c.codePointAt(0) ?? 32);
import { type ChatFormat, type GenerationRequest, type GenerationResult, type TextGenerator } from '../../model/index.js';
const fromCodePoints = (ids: readonly number[]) => String.fromCodePoint(...ids);

const TRIVIAL_FORMAT: ChatFormat = {
  name: 'trivial (benchmark only)',
  buildPrompt: (_history, message) => ({ ids: codePoints(message), droppedTurns: 0 }),
  stopStrings: [],
  stopIds: [],
  defaults: {},
  cleanReply: (text) => text.trim(),
};

export class TrivialGenerator implements TextGenerator {
  private active = 0;

  info() {
    return { name: 'trivial-echo (benchmark only)', path: '', parameters: 0, backend: 'none', contextLength: 512, vocabSize: 0, layers: 0, embd: 0, heads: 0 };
  }

  chatFormat(): ChatFormat {
    return TRIVIAL_FORMAT;
  }

  async generate(req: GenerationRequest): Promise<GenerationResult> {
    this.active++;
    try {
      const prompt = typeof req.prompt === 'string' ? req.prompt : fromCodePoints(req.prompt);
      const words = prompt.split(/\s+/).filter(Boolean);
      const text = ` ${words.slice(-3).join(' ')}`;
      req.onText?.(text);
      return { text, promptTokens: words.length, completionTokens: 3, finishReason: 'length', truncatedTokens: 0, latencyMs: 0 };
    } finally {
      this.active--;
    }
  }

  countTokens(text: string): number {
    return text.split(/\s+/).filter(Boolean).length;
  }

  decode(ids: readonly number[]): string {
    return fromCodePoints(ids);
  }

  stats() {
    return { active: this.active, queued: 0, maxQueue: 0 };
  }

  async close(): Promise<void> {}
}
