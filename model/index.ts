// The model package's public entry: everything bot/ and server/ may use of it (lint enforces that
// they import nothing else). Generation runs behind a TextGenerator served from a worker thread;
// the chat format turns a conversation into the prompt the model was trained on.
export {
  GenerationRequestError, GeneratorBusyError, GeneratorTimeoutError, GeneratorUnavailableError,
  type FinishReason, type GenerationRequest, type GenerationResult, type GeneratorStats, type ModelInfo,
  type SamplingOptions, type TextGenerator,
} from './inference/generator.js';
export { createGenerator, DEFAULT_MODEL_DIR, type GeneratorOptions } from './serving/service.js';
export {
  BOT_PREFIX, buildChatPrompt, CHAT_STOP, cleanReply, END_OF_TEXT, USER_PREFIX,
  type ChatPrompt, type ChatPromptOptions, type ChatTurn,
} from './chat/format.js';
