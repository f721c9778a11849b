// Models: the shipped model and the ones under MODELS_DIR (described from their files), which one
// every process serves, and "Use this model" — stored in Redis, every process switches live;
// replies being written finish on the model they started with. A preset can be downloaded into
// MODELS_DIR from here, with its progress.
import { get, post } from '../api.js';
import { badge, card, confirmDialog, errorBox, fmtDateTime, h, mount, toast } from '../ui.js';

const fmtParams = (n) => (n === undefined ? '–' : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n.toLocaleString());
const fmtBytes = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`);

export async function renderModels(page) {
  const body = h('tbody#models-body');
  const status = h('div#models-status.small');
  const presetSel = h('select#download-preset', { 'aria-label': 'Model to download' });
  const downloadBtn = h('button.btn.primary#download-start', { type: 'button' }, 'Download');
  const bar = h('progress#download-progress', { max: '1', value: '0', hidden: true });
  const dlStatus = h('div#download-status.small');
  mount(
    page,
    h('div.page-head', h('div', h('h1', 'Models'), h('p.muted', 'The model the bot and the web chat use. A change applies in every process within seconds; replies being written finish on the previous model.'))),
    card(null,
      status,
      h('div.table-wrap', h('table#models-table',
        h('thead', h('tr', h('th', 'Model'), h('th', 'Architecture'), h('th', 'Parameters'), h('th', 'Chat format'), h('th', 'Size'), h('th', 'Speed'), h('th', 'State'), h('th', ''))),
        body))),
    h('div.spacer'),
    card('Download a model',
      h('p.muted.small', 'Fetched from the Hugging Face hub into the models folder of this server (resumable, checked); then choose it above.'),
      h('div.toolbar', presetSel, downloadBtn), bar, dlStatus),
  );
  let presetsShown = false;
  let timer = null;
  let refreshMs = 0;

  downloadBtn.addEventListener('click', async () => {
    downloadBtn.disabled = true;
    try {
      show(await post('/api/admin/models/download', { preset: presetSel.value }));
      toast(`Downloading ${presetSel.value}`, 'ok');
    } catch (err) {
      toast(err.message, 'error');
    } finally {
      downloadBtn.disabled = false;
    }
  });

  function showDownload(view) {
    if (!presetsShown && view.presets) {
      mount(presetSel, view.presets.map((p) => h('option', { value: p.name }, `${p.name}: ${p.description}${p.installed ? ' (installed)' : ''}`)));
      presetsShown = true;
    }
    const d = view.download;
    bar.hidden = !d || d.status !== 'running';
    downloadBtn.disabled = Boolean(d && d.status === 'running');
    dlStatus.classList.toggle('error-text', Boolean(d && d.status === 'failed'));
    if (!d) {
      dlStatus.textContent = '';
      return;
    }
    if (d.status === 'running') {
      const share = d.total ? d.received / d.total : 0;
      bar.value = share;
      dlStatus.textContent = `Downloading ${d.preset}: file ${(d.fileIndex || 0) + 1} of ${d.files}${d.file ? ` (${d.file}, ${Math.round(share * 100)}%)` : ''}…`;
    } else if (d.status === 'done') {
      dlStatus.textContent = `${d.preset} downloaded${d.finishedAt ? ` ${fmtDateTime(d.finishedAt)}` : ''}.`;
    } else {
      dlStatus.textContent = `Downloading ${d.preset} failed: ${d.error}`;
    }
  }

  async function use(m) {
    const ok = await confirmDialog({
      title: `Use ${m.name}?`,
      body: `Every process loads ${m.name} (${m.chatFormat} chat format) and switches to it. Conversations continue; their next replies come from the new model.`,
      confirm: 'Use this model',
    });
    if (!ok) return;
    try {
      show(await post('/api/admin/models/active', { name: m.name }));
      toast(`Switching to ${m.name}`, 'ok');
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  function row(m) {
    const state = [];
    if (m.active) state.push(badge('active', 'ok'));
    if (m.serving && !m.active) state.push(badge('served here', 'info'));
    if (m.error) state.push(badge('unusable', 'danger'));
    const action = m.active || m.error
      ? null
      : h('button.btn.small', { type: 'button', 'data-model': m.name, on: { click: () => use(m) } }, 'Use this model');
    return h('tr', { 'data-model': m.name },
      h('td', h('strong', m.name), h('div.muted.small.mono', m.dir), m.error ? h('div.small.error-text', m.error) : null),
      h('td.small', m.architecture || '–'),
      h('td', fmtParams(m.parameters)),
      h('td', m.chatFormat || '–'),
      h('td', fmtBytes(m.sizeBytes)),
      h('td.small', m.tokensPerSecond ? `${m.tokensPerSecond.toFixed(1)} tokens/s` : 'not measured'),
      h('td', state),
      h('td', action));
  }

  function show(view) {
    mount(body, view.models.map(row));
    const p = view.process;
    const parts = [];
    if (view.chosen) parts.push(`Chosen: ${view.chosen.name}${view.chosen.actor ? ` by ${view.chosen.actor}` : ''}${view.chosen.at ? `, ${fmtDateTime(view.chosen.at)}` : ''}.`);
    else parts.push('No model chosen here yet: each process serves MODEL_DIR (or the shipped model).');
    if (p) {
      parts.push(`This process serves ${p.serving}.`);
      if (p.loading) parts.push(`Loading ${p.loading}…`);
      if (p.error) parts.push(`Switching to ${p.error.name} failed: ${p.error.message}`);
    } else parts.push('No model is loaded in this process.');
    status.textContent = parts.join(' ');
    status.classList.toggle('error-text', Boolean(p && p.error && !p.loading));
    showDownload(view);
    // Follow a switch or a download in progress more closely.
    poll(p?.loading || view.download?.status === 'running' ? 1000 : 3000);
  }

  function poll(ms) {
    if (ms === refreshMs) return;
    refreshMs = ms;
    if (timer) clearInterval(timer);
    timer = setInterval(async () => {
      try {
        show(await get('/api/admin/models'));
      } catch {
        /* shown on the next successful refresh */
      }
    }, ms);
  }

  try {
    show(await get('/api/admin/models'));
  } catch (err) {
    if (err.status === 401) throw err;
    mount(body, h('tr', h('td', { colspan: '7' }, errorBox(err))));
    return null;
  }
  return () => clearInterval(timer);
}
