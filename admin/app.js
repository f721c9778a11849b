// The admin panel: sign-in, navigation between pages (hash routes) and session handling.
import { get, onUnauthenticated, post, setCsrfToken } from './api.js';
import { errorBox, mount, toast } from './ui.js';
import { renderDashboard } from './pages/dashboard.js';
import { renderKeys } from './pages/keys.js';
import { renderUsers } from './pages/users.js';
import { renderSettings } from './pages/settings.js';
import { renderAudit } from './pages/audit.js';
import { renderModels } from './pages/models.js';

const PAGES = { dashboard: renderDashboard, keys: renderKeys, users: renderUsers, settings: renderSettings, models: renderModels, audit: renderAudit };
const $ = (id) => document.getElementById(id);
let cleanup = null;

function showLogin(message) {
  if (cleanup) cleanup();
  cleanup = null;
  $('shell').hidden = true;
  $('login-view').hidden = false;
  $('login-form').hidden = false;
  $('new-password-form').hidden = true;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('password').focus();
}

// After a sign-in with the generated one-time password nothing else is open until a new one is set.
function showNewPassword(message) {
  $('shell').hidden = true;
  $('login-view').hidden = false;
  $('login-form').hidden = true;
  $('new-password-form').hidden = false;
  const err = $('new-password-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('new-password').focus();
}

async function showPage() {
  $('login-view').hidden = true;
  $('shell').hidden = false;
  const name = (location.hash.replace(/^#\/?/, '').split('?')[0] || 'dashboard').toLowerCase();
  const render = PAGES[name] || PAGES.dashboard;
  for (const a of document.querySelectorAll('.nav a')) a.classList.toggle('active', a.dataset.page === (PAGES[name] ? name : 'dashboard'));
  if (cleanup) cleanup();
  cleanup = null;
  const page = $('page');
  page.dataset.page = name;
  try {
    cleanup = (await render(page)) || null;
  } catch (err) {
    if (err && err.status === 401) return;
    mount(page, errorBox(err));
  }
}

async function start() {
  onUnauthenticated(() => showLogin('Your session has ended; please sign in again.'));
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const btn = e.submitter || $('login-form').querySelector('button');
    btn.disabled = true;
    try {
      const res = await post('/api/admin/login', { password: $('password').value });
      setCsrfToken(res.csrfToken);
      $('password').value = '';
      if (res.mustChangePassword) showNewPassword('');
      else await showPage();
    } catch (err) {
      showLogin(err.message);
    } finally {
      btn.disabled = false;
    }
  });
  $('new-password-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const btn = e.submitter || $('new-password-form').querySelector('button');
    if ($('new-password').value !== $('new-password-again').value) {
      showNewPassword('The two passwords differ.');
      return;
    }
    btn.disabled = true;
    try {
      const res = await post('/api/admin/password', { password: $('new-password').value });
      setCsrfToken(res.csrfToken);
      $('new-password').value = '';
      $('new-password-again').value = '';
      toast('Password saved');
      await showPage();
    } catch (err) {
      if (err.status === 401) showLogin(err.message);
      else showNewPassword(err.message);
    } finally {
      btn.disabled = false;
    }
  });
  $('logout').addEventListener('click', async () => {
    try {
      await post('/api/admin/logout');
    } catch {
      /* the session may already be gone */
    }
    setCsrfToken('');
    showLogin('Signed out.');
  });
  window.addEventListener('hashchange', () => {
    if (!$('shell').hidden) showPage();
  });
  try {
    const s = await get('/api/admin/session');
    if (!s.signedIn) showLogin('');
    else {
      setCsrfToken(s.csrfToken);
      if (s.mustChangePassword) showNewPassword('');
      else await showPage();
    }
  } catch (err) {
    if (err.status === 401) showLogin('');
    else {
      showLogin(err.message);
      toast(err.message, 'error');
    }
  }
}

start();
