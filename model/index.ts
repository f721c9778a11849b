// The model package's public entry: everything bot/ and server/ may use of it (lint enforces that
// they import nothing else). Generation runs behind a TextGenerator served from a worker thread;
// the model's chat format turns a conversation into the prompt it was trained on, and the reply
// pipeline checks what is sent (never empty, in the user's language, no blocked words).
export {
  GenerationRequestError, GeneratorBusyError, GeneratorTimeoutError, GeneratorUnavailableError,
  type FinishReason, type GenerationRequest, type GenerationResult, type GeneratorStats, type ModelInfo,
  type SamplingOptions, type TextGenerator,
} from './inference/generator.js';
export { createGenerator, DEFAULT_MODEL_DIR, type GeneratorOptions } from './serving/service.js';
export type { ChatFormat, ChatPromptIds, ChatTurn } from './chat/chat-format.js';
export { BlockedWords } from './chat/blocked-words.js';
export { ChatResponder, FALLBACK_TEXT, type ReplyOutcome } from './chat/reply.js';
export { SwitchableGenerator } from './serving/model-switch.js';
export { describeModel, listModels, modelDirOf, MODEL_NAME, SHIPPED_MODEL, type ModelEntry } from './serving/model-catalog.js';
export { DOWNLOAD_PRESETS, type DownloadPreset } from './io/download-presets.js';
export { downloadModel, type ModelDownloadProgress } from './io/model-download.js';
