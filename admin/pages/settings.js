// Settings: generation parameters, rate limit and quota, greeting texts (stored in Redis and
// applied by every process at once), and the loaded model.
import { get, post, put, setCsrfToken } from '../api.js';
import { card, confirmDialog, errorBox, fmtNumber, h, mount, toast } from '../ui.js';

const NUMBER_FIELDS = [
  ['temperature', 'Temperature', '0 = always the most likely word; higher = more varied', { step: '0.05', min: '0', max: '2' }],
  ['topK', 'Top-k', 'Sample among the k most likely tokens (0 = off)', { step: '1', min: '0' }],
  ['topP', 'Top-p', 'Sample within this share of probability mass', { step: '0.01', min: '0.01', max: '1' }],
  ['maxNewTokens', 'Max tokens per reply', 'Longest reply, in tokens', { step: '1', min: '1', max: '1024' }],
];
const LIMIT_FIELDS = [
  ['rateLimit', 'Messages per window', 'Per user, across WeChat and web', { step: '1', min: '1' }],
  ['rateWindowSeconds', 'Window (seconds)', '', { step: '1', min: '1' }],
  ['dailyQuota', 'Daily quota', 'Model replies per user per day (0 = unlimited)', { step: '1', min: '0' }],
];
const TEXT_FIELDS = [
  ['keyHelpText', 'How to get the key', 'Shown to chatters who have not sent the key'],
  ['welcomeText', 'Greeting after verification', 'Empty: the built-in greeting'],
  ['webGreeting', 'Web chat greeting', 'Shown above the key field of the web chat'],
];

export async function renderSettings(page) {
  const inputs = {};
  const formBox = h('div');
  const modelBox = h('div');
  const status = h('div.muted.small');
  mount(page, h('div.page-head', h('div', h('h1', 'Settings'), h('p.muted', 'Changes apply to the bot and the web chat right away, in every process.'))), formBox, modelBox, passwordCard());

  function field([name, label, hint, attrs], value, kind) {
    const id = `set-${name}`;
    const input = kind === 'text' ? h('textarea', { id, rows: '2', maxlength: '500' }) : h('input', { id, type: 'number', ...attrs });
    input.value = value;
    inputs[name] = { input, kind };
    return h('div', h('label', { for: id }, label), input, hint ? h('div.field-hint', hint) : null);
  }

  function show(view) {
    const v = view.values;
    const saveBtn = h('button.btn.primary#save-settings', { type: 'submit' }, 'Save settings');
    const resetBtn = h('button.btn', { type: 'button' }, 'Restore defaults');
    const form = h('form#settings-form',
      h('div.grid.cols-2',
        card('Generation', h('div.form-grid', NUMBER_FIELDS.map((f) => field(f, v[f[0]], 'number')))),
        card('Rate limit and quota', h('div.form-grid', LIMIT_FIELDS.map((f) => field(f, v[f[0]], 'number'))))),
      h('div.spacer'),
      card('Greeting texts', TEXT_FIELDS.map((f) => field(f, v[f[0]], 'text'))),
      h('div.actions', saveBtn, resetBtn, status));
    status.textContent = view.updatedAt ? `Last changed ${new Date(view.updatedAt).toLocaleString()}${view.actor ? ` by ${view.actor}` : ''}` : 'Using the environment defaults';
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const patch = {};
      for (const [name, { input, kind }] of Object.entries(inputs)) patch[name] = kind === 'number' ? Number(input.value) : input.value;
      saveBtn.disabled = true;
      try {
        const next = await put('/api/admin/settings', patch);
        show(next);
        showModel(next.model);
        toast('Settings saved', 'ok');
      } catch (err) {
        toast(err.message, 'error');
      } finally {
        saveBtn.disabled = false;
      }
    });
    resetBtn.addEventListener('click', async () => {
      if (!(await confirmDialog({ title: 'Restore defaults?', body: 'Every setting returns to the value from the environment (.env).', confirm: 'Restore' }))) return;
      try {
        show(await post('/api/admin/settings/reset'));
        toast('Defaults restored', 'ok');
      } catch (err) {
        toast(err.message, 'error');
      }
    });
    mount(formBox, form);
  }

  function showModel(m) {
    if (!m) {
      mount(modelBox, card('Model', h('p.muted', 'No model is loaded in this process.')));
      return;
    }
    const params = m.parameters >= 1e6 ? `${(m.parameters / 1e6).toFixed(1)} M` : fmtNumber(m.parameters);
    mount(modelBox, card('Model',
      h('dl.spec#model-spec',
        h('dt', 'Name'), h('dd', m.name),
        h('dt', 'Parameters'), h('dd', params),
        h('dt', 'Shape'), h('dd', `${m.layers} layers · ${m.embd} wide · ${m.heads} heads · context ${m.contextLength} · vocab ${fmtNumber(m.vocabSize)}`),
        h('dt', 'Backend'), h('dd', m.backend),
        h('dt', 'Measured speed'), h('dd', m.tokensPerSecond ? `${m.tokensPerSecond.toFixed(1)} tokens/s` : 'not measured yet'),
        h('dt', 'Queue'), h('dd', m.queue ? `${m.queue.active} decoding · ${m.queue.queued} waiting (max ${m.queue.maxQueue})` : '–'),
        h('dt', 'File'), h('dd.mono.small', m.path))));
  }

  try {
    const view = await get('/api/admin/settings');
    show(view);
    showModel(view.model);
  } catch (err) {
    if (err.status === 401) throw err;
    mount(formBox, errorBox(err));
    try {
      // The model card still helps when only the settings store is missing.
      showModel(null);
    } catch {
      /* nothing */
    }
  }
}

/** Changing the admin password (kept in Redis; a password set by the environment is changed there). */
function passwordCard() {
  const current = h('input#current-password', { type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input#changed-password', { type: 'password', autocomplete: 'new-password', required: true, minlength: '10' });
  const again = h('input#changed-password-again', { type: 'password', autocomplete: 'new-password', required: true, minlength: '10' });
  const error = h('p.small.error-text#change-password-error', { hidden: true });
  const button = h('button.btn#change-password', { type: 'submit' }, 'Change password');
  const form = h('form#change-password-form',
    h('label', 'Current password', current), h('label', 'New password (at least 10 characters)', next),
    h('label', 'New password again', again), error, h('div.toolbar', button));
  const fail = (message) => {
    error.textContent = message;
    error.hidden = false;
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    if (next.value !== again.value) return fail('The two new passwords differ.');
    button.disabled = true;
    try {
      const res = await post('/api/admin/password', { current: current.value, password: next.value });
      setCsrfToken(res.csrfToken);
      for (const input of [current, next, again]) input.value = '';
      toast('Password changed', 'ok');
    } catch (err) {
      if (err.status === 401) throw err;
      fail(err.message);
    } finally {
      button.disabled = false;
    }
  });
  return h('div', h('div.spacer'), card('Admin password', form));
}
