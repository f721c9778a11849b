/* global Node */
// Small DOM helpers. Everything the server sends is put on the page as text (textContent,
// attributes through setAttribute), never as HTML: WeChat display names may contain markup.

/** h('div.card#id', {attrs, on: {click}}, ...children): builds an element. */
export function h(tag, props, ...children) {
  const [name, ...rest] = tag.split(/(?=[.#])/);
  const el = document.createElement(name || 'div');
  for (const part of rest) {
    if (part.startsWith('.')) el.classList.add(part.slice(1));
    else if (part.startsWith('#')) el.id = part.slice(1);
  }
  if (props && (typeof props !== 'object' || props instanceof Node || Array.isArray(props))) {
    children.unshift(props);
    props = null;
  }
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function mount(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

const numberFmt = new Intl.NumberFormat();
export const fmtNumber = (n) => (n === null || n === undefined || Number.isNaN(n) ? '–' : numberFmt.format(Math.round(n)));
export const fmtMs = (ms) => (ms === null || ms === undefined ? '–' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

export function fmtDateTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** "in 3 h 12 min" / "5 min ago". */
export function fmtRelative(iso, now = Date.now()) {
  if (!iso) return '–';
  const diff = new Date(iso).getTime() - now;
  const abs = Math.abs(diff);
  const units = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1000, 's'],
  ];
  let text = 'now';
  for (const [ms, unit] of units) {
    if (abs >= ms) {
      text = `${Math.floor(abs / ms)} ${unit}`;
      break;
    }
  }
  if (text === 'now') return 'just now';
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

/** "2 d 03:04:05" countdown text. */
export function fmtCountdown(ms) {
  if (ms <= 0) return '00:00:00';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const hh = String(Math.floor((s % 86400) / 3600)).padStart(2, '0');
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return `${d ? `${d} d ` : ''}${hh}:${mm}:${ss}`;
}

let toastTimer;
export function toast(message, kind = 'info') {
  let el = document.getElementById('toast');
  if (!el) {
    el = h('div#toast', { role: 'status', 'aria-live': 'polite' });
    document.body.append(el);
  }
  el.className = `toast show ${kind}`;
  el.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 3500);
}

/** A modal confirmation; resolves true when confirmed. */
export function confirmDialog({ title, body, confirm = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const close = (v) => {
      overlay.remove();
      document.removeEventListener('keydown', onKey);
      resolve(v);
    };
    const onKey = (e) => {
      if (e.key === 'Escape') close(false);
    };
    const ok = h(`button.btn${danger ? '.danger' : '.primary'}`, { type: 'button', on: { click: () => close(true) } }, confirm);
    const overlay = h(
      'div.overlay',
      { on: { click: (e) => e.target === overlay && close(false) } },
      h(
        'div.dialog',
        { role: 'dialog', 'aria-modal': 'true', 'aria-label': title },
        h('h2', title),
        h('p.muted', body),
        h('div.dialog-actions', h('button.btn', { type: 'button', on: { click: () => close(false) } }, 'Cancel'), ok),
      ),
    );
    document.addEventListener('keydown', onKey);
    document.body.append(overlay);
    ok.focus();
  });
}

export function badge(text, kind = '') {
  return h(`span.badge${kind ? `.${kind}` : ''}`, text);
}

export function card(title, ...children) {
  return h('section.card', title ? h('h2.card-title', title) : null, ...children);
}

export function errorBox(err) {
  return h('div.alert.error', { role: 'alert' }, err && err.message ? err.message : String(err));
}
