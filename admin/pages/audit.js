// Audit log: every admin action, newest first.
import { get } from '../api.js';
import { badge, card, fmtDateTime, h, mount } from '../ui.js';

// Entries written before actors were named carry the panel's session id: they were the admin.
const actorName = (actor) => (/^admin:/.test(actor) ? 'admin' : actor);

export async function renderAudit(page) {
  const body = h('tbody');
  const more = h('button.btn.small', { type: 'button' }, 'Older entries');
  let last = null;
  mount(page, h('div.page-head', h('div', h('h1', 'Audit log'), h('p.muted', 'Every sign-in and admin action, kept in Redis (newest 10,000).'))),
    card(null, h('div.table-wrap', h('table#audit-table', h('thead', h('tr', h('th', 'When'), h('th', 'Action'), h('th', 'Who'), h('th', 'From'), h('th', 'Details'))), body)), h('div.actions', more)));

  async function load(append) {
    const { items } = await get(`/api/admin/audit?limit=50${append && last ? `&before=${encodeURIComponent(last)}` : ''}`);
    const rows = items.map((e) =>
      h('tr', h('td.nowrap', { 'data-label': 'When' }, fmtDateTime(e.at)), h('td', { 'data-label': 'Action' }, badge(e.action, e.ok ? (e.action.startsWith('login') ? 'info' : 'ok') : 'danger')),
        h('td.mono.small', { 'data-label': 'Who' }, actorName(e.actor)), h('td.mono.small', { 'data-label': 'From' }, e.ip),
        h('td.small.mono.cell-details', { 'data-label': 'Details' }, Object.keys(e.details || {}).length ? JSON.stringify(e.details) : null)));
    if (append) body.append(...rows);
    else mount(body, rows.length ? rows : h('tr', h('td.empty', { colspan: '5' }, 'Nothing yet')));
    last = items.length ? items[items.length - 1].id : last;
    more.hidden = items.length < 50;
  }
  more.addEventListener('click', () => load(true));
  await load(false);
}
