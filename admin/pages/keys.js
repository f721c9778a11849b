// Keys: the current key (large, copyable), its countdown, rotate-now with confirmation, the
// rotation schedule with a live description and next runs, the history and the key card.
import { get, post, put } from '../api.js';
import { drawKeyCard, downloadCanvas } from '../key-card.js';
import { badge, card, confirmDialog, errorBox, fmtCountdown, fmtDateTime, h, mount, toast } from '../ui.js';

const TIME_ZONES = ['Asia/Shanghai', 'Asia/Hong_Kong', 'Asia/Taipei', 'Asia/Singapore', 'Asia/Tokyo', 'Europe/London', 'Europe/Berlin', 'America/New_York', 'America/Los_Angeles', 'UTC'];

function inZone(iso, tz) {
  if (!iso) return '';
  try {
    return new Date(iso).toLocaleString('zh-CN', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false });
  } catch {
    return fmtDateTime(iso);
  }
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Plain-HTTP deployments have no clipboard API: fall back to a selected text field.
    const ta = h('textarea', { readonly: true, class: 'offscreen' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}

export async function renderKeys(page) {
  let current = null;
  let schedule = null;
  let timer = null;
  let previewTimer = null;

  const keyValue = h('div.key-value#key-value', { title: 'Click to copy', tabindex: '0' }, '······');
  const meta = h('dl.key-meta');
  // After a rotation the old key still lets chatters in for the grace period: say so, and until when.
  const previousNote = h('div.alert.info#previous-key', { role: 'status', hidden: true });
  const countdown = h('div.countdown#countdown', '--:--:--');
  const countdownSub = h('div.muted.small');
  const copyBtn = h('button.btn', { type: 'button' }, 'Copy key');
  const rotateBtn = h('button.btn.danger-outline#rotate', { type: 'button' }, 'Rotate now…');

  const cronInput = h('input#cron.mono', { type: 'text', spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'cron-desc' });
  const tzInput = h('input#tz', { type: 'text', list: 'tz-list', autocomplete: 'off' });
  const tzList = h('datalist#tz-list', TIME_ZONES.map((z) => h('option', { value: z })));
  const cronDesc = h('div.cron-desc#cron-desc');
  const cronError = h('div.alert.error#cron-error', { role: 'alert', hidden: true });
  const runs = h('ol.runs#next-runs');
  const presets = h('div.presets');
  const saveBtn = h('button.btn.primary#save-schedule', { type: 'button' }, 'Save schedule');
  const scheduleSource = h('div.muted.small');

  const captionInput = h('input#caption', { type: 'text', maxlength: '120' });
  const canvas = h('canvas.keycard-preview#keycard', { role: 'img', 'aria-label': 'Key card preview' });
  const downloadBtn = h('button.btn.primary#download-card', { type: 'button' }, 'Download PNG');
  const historyBody = h('tbody');

  mount(
    page,
    h('div.page-head', h('div', h('h1', 'Access keys'), h('p.muted', 'Publish the current key on the official account; chatters send it to the bot or the web chat.'))),
    h(
      'div.key-hero',
      card('Current key', keyValue, h('div.actions', copyBtn, rotateBtn), previousNote, meta),
      card('Next rotation', countdown, countdownSub, h('p.muted.small', 'After a rotation the previous key is still accepted during the grace period, so chatters who were typing it are not turned away.')),
    ),
    h('div.grid.cols-2',
      card('Rotation schedule',
        h('label', { for: 'cron' }, 'Cron expression'), cronInput,
        h('div.field-hint', 'minute hour day-of-month month weekday (optional seconds first)'),
        presets,
        h('label', { for: 'tz' }, 'Time zone'), tzInput, tzList,
        cronError, cronDesc, h('div.muted.small', 'Next five rotations:'), runs,
        h('div.actions', saveBtn), scheduleSource),
      card('Key card',
        h('label', { for: 'caption' }, 'Caption'), captionInput,
        canvas,
        h('div.actions', downloadBtn))),
    card('History', h('div.table-wrap', h('table', h('thead', h('tr', h('th', 'Version'), h('th', 'Key'), h('th', 'Created'), h('th.hide-phone', 'Retired'), h('th', 'By'))), historyBody))),
  );

  function drawCard() {
    if (!current) return;
    const tz = schedule?.tz || 'Asia/Shanghai';
    drawKeyCard(canvas, { key: current.key, validFrom: inZone(current.createdAt, tz), validUntil: current.expiresAt ? `${inZone(current.expiresAt, tz)}` : '', caption: captionInput.value });
  }

  function showCurrent(cur) {
    current = cur;
    keyValue.textContent = cur.key;
    if (!captionInput.value) captionInput.value = cur.caption || '';
    mount(
      meta,
      h('dt', 'Version'), h('dd#key-version', `#${cur.version}`),
      h('dt', 'Created'), h('dd', `${fmtDateTime(cur.createdAt)} · ${cur.by}${cur.actor ? ` (${cur.actor})` : ''}`),
      h('dt', 'Next rotation'), h('dd', cur.nextRotationAt ? fmtDateTime(cur.nextRotationAt) : 'not scheduled'),
      h('dt', 'Accepted until'), h('dd', cur.expiresAt ? `${fmtDateTime(cur.expiresAt)} (incl. ${cur.graceMinutes} min grace)` : '–'),
    );
    tick();
    drawCard();
  }

  function showPrevious() {
    const prev = current?.previous;
    const left = prev ? new Date(prev.acceptedUntil).getTime() - Date.now() : 0;
    previousNote.hidden = left <= 0;
    if (left <= 0) return;
    const min = Math.ceil(left / 60_000);
    previousNote.textContent = `The previous key ${prev.key} (#${prev.version}) is still accepted until ${fmtDateTime(prev.acceptedUntil)} ` +
      `(${min} min left, grace period). After that only ${current.key} works.`;
  }

  function tick() {
    showPrevious();
    if (!current || !current.nextRotationAt) {
      countdown.textContent = '—';
      countdownSub.textContent = 'No rotation scheduled';
      return;
    }
    const ms = new Date(current.nextRotationAt).getTime() - Date.now();
    countdown.textContent = fmtCountdown(ms);
    countdownSub.textContent = `at ${fmtDateTime(current.nextRotationAt)} · grace ${current.graceMinutes} min`;
    // The scheduled rotation has happened: fetch the new key.
    if (ms <= -1500 && !tick.pending) {
      tick.pending = true;
      loadCurrent().finally(() => (tick.pending = false));
    }
  }

  function showRuns(list) {
    mount(runs, list.length ? list.map((r) => h('li', `${fmtDateTime(r)}  ·  ${inZone(r, tzInput.value || 'UTC')} ${tzInput.value}`)) : h('li.muted', 'never'));
  }

  function showSchedule(s) {
    schedule = s;
    cronInput.value = s.cron;
    tzInput.value = s.tz;
    cronDesc.textContent = s.description || '';
    cronError.hidden = true;
    showRuns(s.nextRuns);
    scheduleSource.textContent = s.source === 'stored' ? `Set ${fmtDateTime(s.updatedAt)}${s.actor ? ` by ${s.actor}` : ''}` : 'From the environment (KEY_ROTATE_CRON / KEY_ROTATE_TZ)';
    mount(presets, (s.presets || []).map((p) => h(`button.btn.small${p.cron === s.cron ? '.primary' : ''}`, { type: 'button', 'data-cron': p.cron, on: { click: () => { cronInput.value = p.cron; preview(); } } }, p.label)));
  }

  async function preview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(async () => {
      for (const b of presets.querySelectorAll('button')) b.classList.toggle('primary', b.dataset.cron === cronInput.value.trim());
      try {
        const p = await get(`/api/admin/keys/schedule/preview?cron=${encodeURIComponent(cronInput.value)}&tz=${encodeURIComponent(tzInput.value)}`);
        cronError.hidden = true;
        cronDesc.textContent = p.description;
        showRuns(p.nextRuns);
        saveBtn.disabled = false;
      } catch (err) {
        cronError.hidden = false;
        cronError.textContent = err.message;
        cronDesc.textContent = '';
        mount(runs);
        saveBtn.disabled = true;
      }
    }, 250);
  }

  async function loadCurrent() {
    showCurrent(await get('/api/admin/keys/current'));
  }

  async function loadHistory() {
    const { items } = await get('/api/admin/keys/history?limit=20');
    mount(
      historyBody,
      items.length
        ? items.map((e, i) =>
            h('tr', h('td', `#${e.version}`, i === 0 ? [' ', badge('current', 'ok')] : null), h('td.mono', e.key), h('td.nowrap', fmtDateTime(e.createdAt)),
              h('td.nowrap.hide-phone', e.retiredAt ? fmtDateTime(e.retiredAt) : '–'), h('td', e.by, e.actor ? h('div.muted.small', e.actor) : null)))
        : h('tr', h('td.empty', { colspan: '5' }, 'No keys yet')),
    );
  }

  copyBtn.addEventListener('click', async () => toast((await copyText(current?.key || '')) ? 'Key copied' : 'Copy failed: select the key and copy it', 'ok'));
  keyValue.addEventListener('click', () => copyBtn.click());
  rotateBtn.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: 'Rotate the access key now?',
      body: `A new key replaces ${current ? current.key : 'the current key'} immediately. The old key keeps working for ${current?.graceMinutes ?? 0} minutes; after that, chatters must send the new key. Remember to publish it.`,
      confirm: 'Rotate now',
      danger: true,
    });
    if (!ok) return;
    rotateBtn.disabled = true;
    try {
      showCurrent(await post('/api/admin/keys/rotate'));
      await loadHistory();
      toast(`New key #${current.version} is live`, 'ok');
    } catch (err) {
      toast(err.message, 'error');
    } finally {
      rotateBtn.disabled = false;
    }
  });
  cronInput.addEventListener('input', preview);
  tzInput.addEventListener('input', preview);
  saveBtn.addEventListener('click', async () => {
    saveBtn.disabled = true;
    try {
      showSchedule(await put('/api/admin/keys/schedule', { cron: cronInput.value, tz: tzInput.value }));
      await loadCurrent();
      toast('Schedule saved', 'ok');
    } catch (err) {
      cronError.hidden = false;
      cronError.textContent = err.message;
    } finally {
      saveBtn.disabled = false;
    }
  });
  captionInput.addEventListener('input', drawCard);
  downloadBtn.addEventListener('click', () => {
    drawCard();
    downloadCanvas(canvas, `nemo-key-v${current?.version ?? 0}.png`);
  });

  try {
    const [s] = await Promise.all([get('/api/admin/keys/schedule'), loadHistory()]);
    showSchedule(s);
    await loadCurrent();
  } catch (err) {
    if (err.status === 401) throw err;
    page.prepend(errorBox(err));
  }
  timer = setInterval(tick, 1000);
  return () => {
    clearInterval(timer);
    clearTimeout(previewTimer);
  };
}
