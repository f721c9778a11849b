// A TRIVIAL TextGenerator for measuring the bot's own overhead ONLY (npm run bench:bot): it
// answers instantly with the last words of the prompt, so the benchmark times key checks, limits,
// memory, usage and sending, not the model. Never used to serve chatters; model time is measured
// separately with the real generation service.
import type { GenerationRequest, GenerationResult, TextGenerator } from '../../model/index.js';

export class TrivialGenerator implements TextGenerator {
  private active = 0;

  info() {
    return { name: 'trivial-echo (benchmark only)', path: '', parameters: 0, backend: 'none', contextLength: 512, vocabSize: 0, layers: 0, embd: 0, heads: 0 };
  }

  async generate(req: GenerationRequest): Promise<GenerationResult> {
    this.active++;
    try {
      const words = req.prompt.split(/\s+/).filter(Boolean);
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

  stats() {
    return { active: this.active, queued: 0, maxQueue: 0 };
  }

  async close(): Promise<void> {}
}
