// Dashboard: usage charts over 24 h / 7 d / 30 d, headline figures, and the bot's login state
// with the QR code to scan while it is logged out.
import { get } from '../api.js';
import { badge, card, errorBox, fmtDateTime, fmtMs, fmtNumber, fmtRelative, h, mount } from '../ui.js';

const RANGES = ['24h', '7d', '30d'];
const COLORS = { blue: '#2f6fed', orange: '#ff7a45', green: '#12a150', red: '#d92d20', purple: '#7a5af8', grey: '#98a2b3' };
let range = '24h';

function label(iso, bucketSeconds) {
  const d = new Date(iso);
  return bucketSeconds < 86_400
    ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

function makeChart(canvas, type, labels, datasets, opts = {}) {
  // Chart.js is loaded as a classic script (defer) from /vendor; the module waits for it.
  const Chart = window.Chart;
  return new Chart(canvas, {
    type,
    data: { labels, datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: { duration: 250 },
      interaction: { mode: 'index', intersect: false },
      plugins: { legend: { display: datasets.length > 1, labels: { boxWidth: 12, usePointStyle: true } }, tooltip: { callbacks: opts.tooltip || {} } },
      scales: {
        x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
        y: { beginAtZero: true, grid: { color: '#eef0f3' }, ticks: { precision: 0, callback: opts.yTick } },
      },
      elements: { line: { tension: 0.3, borderWidth: 2 }, point: { radius: 0, hitRadius: 8 }, bar: { borderRadius: 4 } },
    },
  });
}

const ds = (label, data, color, extra = {}) => ({ label, data, borderColor: color, backgroundColor: extra.fill ? `${color}22` : color, ...extra });

function botCard(state) {
  const kinds = { 'logged-in': ['online', 'ok'], 'waiting-for-scan': ['waiting for scan', 'warn'], 'logged-out': ['offline', 'danger'] };
  const offline = state.unreachable;
  const [text, kind] = !state.running ? ['not running', 'danger'] : offline ? ['cannot reach WeChat', 'danger'] : kinds[state.state] || [state.state, ''];
  const body = [
    h('div.status-line', badge(text, kind), state.user ? h('strong', state.user.name) : null,
      h('span.muted.small', state.since && new Date(state.since).getTime() > 0 ? `${offline ? 'failing since' : state.running ? 'since' : 'last change'} ${fmtDateTime(state.since)}` : '')),
  ];
  if (state.running && state.host) body.push(h('p.muted.small', `process ${state.pid} on ${state.host}`));
  if (offline) {
    const inSeconds = Math.max(0, Math.round((new Date(offline.nextTryAt).getTime() - Date.now()) / 1000));
    body.push(h('p.small', `Cannot reach WeChat — next try in ${inSeconds} s (at ${fmtDateTime(offline.nextTryAt)}; ${offline.attempt} failed ${offline.attempt === 1 ? 'try' : 'tries'} so far).`));
    body.push(h('p.muted.small', `Last error: ${offline.lastError}`));
  } else if (state.detail) body.push(h('p.muted.small', state.detail));
  if (state.waiting) {
    body.push(h('p.small', badge('waiting', 'warn'), ` Process ${state.waiting.pid} on ${state.waiting.host} is waiting for the name to be released, and starts the bot then.`));
  }
  if (!state.running && !state.waiting) {
    body.push(h('p.muted.small', 'No process runs this bot now (its last state is shown). Start it with BOT_ENABLED=true and BOT_NAME=' + state.name + '.'));
  } else if (state.state !== 'logged-in' && !offline) {
    body.push(
      state.qrcode
        ? h('div.qr-box', h('img', { src: `/api/admin/bot/qr.svg?name=${encodeURIComponent(state.name)}&t=${Date.now()}`, alt: `WeChat login QR code for ${state.name}`, width: 180, height: 180 }),
          h('div', h('strong', 'Scan to log the bot in'), h('p.muted.small', 'Open WeChat on the bot\'s phone → + → Scan. The code refreshes by itself.')))
        : h('p.muted.small', 'No login QR code yet: the bot is starting.'),
    );
  }
  return card(`WeChat bot “${state.name}”`, ...body);
}

function botCards(data) {
  if (!data.instances.length) {
    return card('WeChat bot', h('p.muted.small', 'No WeChat bot has run on this deployment yet. Start one with BOT_ENABLED=true (the default for npm start).'));
  }
  return h('div.grid', ...data.instances.map(botCard));
}

export async function renderDashboard(page) {
  const charts = [];
  let timer = null;
  const rangeButtons = RANGES.map((r) =>
    h(`button${r === range ? '.on' : ''}`, { type: 'button', 'data-range': r, on: { click: () => { range = r; load(); } } }, r.replace('h', ' h').replace('d', ' d')),
  );
  const kpis = h('div.grid.kpis');
  const botBox = h('div');
  const chartsBox = h('div.grid.cols-2');
  mount(
    page,
    h('div.page-head', h('div', h('h1', 'Dashboard'), h('p.muted', 'How the bot is used, and whether it is online.')), h('div.segmented', { role: 'group', 'aria-label': 'Range' }, rangeButtons)),
    botBox,
    kpis,
    chartsBox,
  );

  let lastBot = '';
  async function loadBot() {
    try {
      const state = await get('/api/admin/bot');
      // Re-render only on change (a new QR code comes with a new "since"), so nothing flickers.
      const text = JSON.stringify(state);
      if (text === lastBot) return;
      lastBot = text;
      mount(botBox, botCards(state));
    } catch (err) {
      if (err.status !== 401) mount(botBox, card('WeChat bot', errorBox(err)));
    }
  }

  async function load() {
    rangeButtons.forEach((b) => b.classList.toggle('on', b.dataset.range === range));
    let data;
    try {
      data = await get(`/api/admin/usage?range=${range}`);
    } catch (err) {
      if (err.status !== 401) mount(chartsBox, errorBox(err));
      return;
    }
    const t = data.totals;
    const per = data.bucketSeconds < 86_400 ? 'hour' : 'day';
    mount(
      kpis,
      kpi('Messages', fmtNumber(t.messages), `${fmtNumber(t.errors)} errors`),
      kpi('Active users', fmtNumber(t.activeUsers), range === '24h' ? 'last 24 hours' : `peak ${fmtNumber(Math.max(0, ...data.buckets.map((b) => b.activeUsers)))} / ${per}`),
      kpi('Tokens generated', fmtNumber(t.tokensOut), `${fmtNumber(t.tokensIn)} read`),
      kpi('Latency p50 / p95', `${fmtMs(t.latencyP50)}`, `p95 ${fmtMs(t.latencyP95)}`),
      kpi('Failed key attempts', fmtNumber(t.failedKeyAttempts), 'wrong keys sent, all channels'),
    );
    charts.splice(0).forEach((c) => c.destroy());
    const labels = data.buckets.map((b) => label(b.start, data.bucketSeconds));
    const boxes = [
      [`Messages per ${per}`, 'chart-messages'],
      [`Active users per ${per}`, 'chart-users'],
      [`Tokens generated per ${per}`, 'chart-tokens'],
      ['Generation latency', 'chart-latency'],
      [`Failed key attempts per ${per}`, 'chart-failed'],
      [`Messages per day (last ${range === '24h' ? '7 d' : range.replace('d', ' d')})`, 'chart-daily'],
    ].map(([title, id]) => {
      const canvas = h('canvas', { id, role: 'img', 'aria-label': title });
      return { el: card(title, h('div.chart-box', canvas)), canvas };
    });
    mount(chartsBox, boxes.map((b) => b.el));
    if (!window.Chart) {
      mount(chartsBox, errorBox('The chart library did not load.'));
      return;
    }
    const col = (k) => data.buckets.map((b) => b[k] ?? 0);
    charts.push(makeChart(boxes[0].canvas, 'bar', labels, [ds('Messages', col('messages'), COLORS.blue), ds('Errors', col('errors'), COLORS.red)]));
    charts.push(makeChart(boxes[1].canvas, 'line', labels, [ds('Active users', col('activeUsers'), COLORS.green, { fill: true })]));
    charts.push(makeChart(boxes[2].canvas, 'bar', labels, [ds('Generated', col('tokensOut'), COLORS.orange), ds('Read', col('tokensIn'), COLORS.grey)]));
    // Hours without messages have no latency (null): points mark each measured hour, and the line
    // spans the gaps, or a lone busy hour would be drawn as nothing.
    const latency = { spanGaps: true, pointRadius: 3 };
    charts.push(
      makeChart(boxes[3].canvas, 'line', labels, [
        ds('p50', data.buckets.map((b) => b.latencyP50), COLORS.purple, latency),
        ds('p95', data.buckets.map((b) => b.latencyP95), COLORS.orange, latency),
      ], {
        yTick: (v) => fmtMs(v),
      }),
    );
    charts.push(makeChart(boxes[4].canvas, 'bar', labels, [ds('Failed attempts', col('failedKeyAttempts'), COLORS.red)]));
    const daily = data.daily || { buckets: [] };
    charts.push(
      makeChart(boxes[5].canvas, 'bar', daily.buckets.map((b) => label(b.start, 86_400)), [
        ds('Messages', daily.buckets.map((b) => b.messages), COLORS.blue),
        ds('Daily active users', daily.buckets.map((b) => b.activeUsers), COLORS.green, { type: 'line' }),
      ]),
    );
    page.dataset.loaded = String(Date.now());
    page.dataset.updated = fmtRelative(new Date().toISOString());
  }

  function kpi(labelText, value, sub) {
    return h('div.card.kpi', h('div.label', labelText), h('div.value', value), h('div.sub', sub));
  }

  await Promise.all([loadBot(), load()]);
  timer = setInterval(load, 30_000);
  // Login QR codes expire within minutes: the bot card refreshes more often.
  const botTimer = setInterval(loadBot, 10_000);
  return () => {
    clearInterval(timer);
    clearInterval(botTimer);
    charts.forEach((c) => c.destroy());
  };
}
