// The model side of the bot's end-to-end tests. INTERIM: until the generation service lands this
// uses the benchmark's trivial generator; tests comparing model output use the real service.
import type { TextGenerator } from '../../model/generator.js';
import { TrivialGenerator } from '../bench/trivial-generator.js';
import type { ChatPromptFormat } from '../chat-session.js';

export const simpleFormat: ChatPromptFormat = {
  buildPrompt: (history, message) => history.map((t) => `User: ${t.user}\nBot: ${t.bot}\n`).join('') + `User: ${message}\nBot:`,
  stop: ['\nUser:'],
};

export async function testModel(): Promise<{ generator: TextGenerator; format: ChatPromptFormat; close(): Promise<void> }> {
  const generator = new TrivialGenerator();
  return { generator, format: simpleFormat, close: () => generator.close() };
}
