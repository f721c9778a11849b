// Users: everyone who talked to the bot or the web chat, with their state and the admin actions.
// Display names come from WeChat and may contain markup: they are only ever set as text.
import { get, post } from '../api.js';
import { badge, card, confirmDialog, errorBox, fmtDateTime, fmtNumber, fmtRelative, h, mount, toast } from '../ui.js';

const PAGE = 50;

function statusBadges(u) {
  const out = [];
  if (u.banned) out.push(badge('banned', 'danger'));
  if (u.locked) out.push(badge(`locked until ${fmtDateTime(u.locked.until)}`, 'warn'));
  if (u.authorised) out.push(badge(u.authorisedUntil ? `authorised until ${fmtDateTime(u.authorisedUntil)}` : 'authorised', 'ok'));
  else if (u.needsNewKey) out.push(badge('needs new key', 'info'));
  else if (!u.banned && !u.locked) out.push(badge('not verified'));
  return out;
}

export async function renderUsers(page) {
  let offset = 0;
  let query = '';
  let filter = 'all';
  let searchTimer = null;
  const search = h('input#user-search', { type: 'search', placeholder: 'Search name or id…', 'aria-label': 'Search users' });
  const filterSel = h('select#user-filter', { 'aria-label': 'Filter' }, h('option', { value: 'all' }, 'Everyone'), h('option', { value: 'banned' }, 'Banned'), h('option', { value: 'locked' }, 'Locked out'));
  const count = h('span.muted.small');
  const body = h('tbody#users-body');
  const pager = h('div.actions');

  mount(
    page,
    h('div.page-head', h('div', h('h1', 'Users'), h('p.muted', 'Everyone who talked to the bot on WeChat or in the web chat.'))),
    card(null,
      h('div.toolbar', search, filterSel, count),
      h('div.table-wrap', h('table#users-table',
        h('thead', h('tr', h('th', 'User'), h('th', 'Channel'), h('th', 'Status'), h('th', 'Today'), h('th', 'Total'), h('th', 'Last seen'), h('th', 'Actions'))),
        body)),
      pager),
  );

  async function act(u, action, label, opts = {}) {
    if (opts.confirm) {
      const ok = await confirmDialog({ title: `${label}?`, body: opts.confirm, confirm: label, danger: opts.danger });
      if (!ok) return;
    }
    try {
      await post(`/api/admin/users/${encodeURIComponent(u.userId)}/${action}`, opts.body || {});
      toast(`${label}: done`, 'ok');
      await load();
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  function row(u) {
    const name = u.displayName || u.userId;
    const actions = h('div.row-actions',
      u.banned
        ? h('button.btn.small', { type: 'button', on: { click: () => act(u, 'unban', 'Unban') } }, 'Unban')
        : h('button.btn.small.danger-outline', { type: 'button', on: { click: () => act(u, 'ban', 'Ban', { confirm: `${name} will get no more replies on any channel until unbanned.`, danger: true }) } }, 'Ban'),
      u.locked ? h('button.btn.small', { type: 'button', on: { click: () => act(u, 'unlock', 'Unlock') } }, 'Unlock') : null,
      h('button.btn.small', { type: 'button', on: { click: () => act(u, 'reset-quota', 'Reset quota') } }, 'Reset quota'),
      h('button.btn.small', { type: 'button', on: { click: () => act(u, 'clear-memory', 'Clear memory', { confirm: `The bot forgets its conversation with ${name}.` }) } }, 'Clear memory'),
    );
    // data-label: on a phone each row becomes a card and the cells name themselves (CSS ::before).
    return h('tr', { 'data-user': u.userId },
      h('td.cell-user', h('span.name', { title: name }, name), h('span.id', { title: u.userId }, u.userId)),
      h('td', { 'data-label': 'Channel' }, badge(u.channel || '–', u.channel === 'web' ? 'info' : '')),
      h('td', { 'data-label': 'Status' }, h('div.row-actions', statusBadges(u))),
      h('td', { 'data-label': 'Today' }, fmtNumber(u.messagesToday)),
      h('td', { 'data-label': 'Total' }, fmtNumber(u.messages)),
      h('td.nowrap', { 'data-label': 'Last seen', title: fmtDateTime(u.lastSeen) }, fmtRelative(u.lastSeen)),
      h('td.cell-actions', actions));
  }

  async function load() {
    let data;
    try {
      data = await get(`/api/admin/users?limit=${PAGE}&offset=${offset}&filter=${filter}${query ? `&q=${encodeURIComponent(query)}` : ''}`);
    } catch (err) {
      if (err.status === 401) return;
      mount(body, h('tr', h('td', { colspan: '7' }, errorBox(err))));
      return;
    }
    count.textContent = `${fmtNumber(data.total)} user${data.total === 1 ? '' : 's'}`;
    mount(body, data.users.length ? data.users.map(row) : h('tr', h('td.empty', { colspan: '7' }, query ? 'Nobody matches this search' : 'Nobody has talked to the bot yet')));
    mount(pager,
      offset > 0 ? h('button.btn.small', { type: 'button', on: { click: () => { offset = Math.max(0, offset - PAGE); load(); } } }, '← Newer') : null,
      offset + PAGE < data.total ? h('button.btn.small', { type: 'button', on: { click: () => { offset += PAGE; load(); } } }, 'Older →') : null);
    page.dataset.loaded = String(Date.now());
  }

  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      query = search.value.trim();
      offset = 0;
      load();
    }, 250);
  });
  filterSel.addEventListener('change', () => {
    filter = filterSel.value;
    offset = 0;
    load();
  });
  await load();
  const timer = setInterval(load, 30_000);
  return () => {
    clearInterval(timer);
    clearTimeout(searchTimer);
  };
}
