// Flat config: recommended JS + typescript-eslint rules for every part of the project.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'tmp/**', 'models/**', '**/dist/**', 'admin/vendor/**', 'model/shipped/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: 'readonly', process: 'readonly', Buffer: 'readonly', setTimeout: 'readonly',
        clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly',
        TextEncoder: 'readonly', TextDecoder: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly',
        performance: 'readonly', fetch: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly',
        structuredClone: 'readonly', document: 'readonly', window: 'readonly', navigator: 'readonly',
        localStorage: 'readonly', EventSource: 'readonly', HTMLElement: 'readonly', location: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // The project's dependency direction, enforced: core/ and model/ stand alone, bot/ may use core/
  // and the model, server/ everything. Outside model/ the model is reached only through its public
  // entry, model/index.ts; tests and benchmarks of bot/ and server/ may also make a tiny model with
  // model/test/tiny-model.ts.
  ...boundaries(),
);

function boundaries() {
  const rule = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });
  const outside = (dirs, message) => ({ regex: `^(\\.\\./)+(${dirs.join('|')})/`, message });
  const modelEntry = (allowFixture) => ({
    regex: `^(\\.\\./)+model/(?!index\\.js$${allowFixture ? '|test/(tiny|forced)-model\\.js$' : ''})`,
    message: 'Reach the model through model/index.ts, its one public entry.',
  });
  return [
    { files: ['core/**'], rules: rule(outside(['bot', 'server', 'model'], 'core/ imports nothing of bot/, server/ or model/.')) },
    { files: ['model/**'], rules: rule(outside(['core', 'bot', 'server'], 'model/ imports nothing of core/, bot/ or server/.')) },
    { files: ['bot/**'], rules: rule(outside(['server'], 'bot/ does not import server/.'), modelEntry(false)) },
    { files: ['bot/test/**', 'bot/bench/**'], rules: rule(outside(['server'], 'bot/ does not import server/.'), modelEntry(true)) },
    { files: ['server/**'], rules: rule(modelEntry(false)) },
    { files: ['server/test/**', 'server/bench/**'], rules: rule(modelEntry(true)) },
  ];
}
