// The web chat: the key gate, then messages with the reply streamed token by token. The stream is
// Server-Sent Events read from the POST response (EventSource cannot POST).
const $ = (id) => document.getElementById(id);
let csrf = '';
let busy = false;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function addMessage(kind, text) {
  const m = el('div', `msg ${kind}`, text);
  $('chat-log').append(m);
  $('chat-log').scrollTop = $('chat-log').scrollHeight;
  return m;
}

async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  let data = {};
  try {
    data = await res.json();
  } catch {
    /* not JSON */
  }
  return { res, data };
}

function showGate(message) {
  $('key-gate').hidden = false;
  $('chat-log').hidden = true;
  $('chat-form').hidden = true;
  $('reset').hidden = true;
  $('chat-status').textContent = 'not verified · 未验证';
  const err = $('key-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('key-input').focus();
}

function showChat(until) {
  $('key-gate').hidden = true;
  $('chat-log').hidden = false;
  $('chat-form').hidden = false;
  $('reset').hidden = false;
  $('chat-status').textContent = until ? `verified until ${new Date(until).toLocaleString()}` : 'verified · 已验证';
  if (!$('chat-log').childElementCount) addMessage('system', '你好！Say hello — replies are written by a small language model.');
  $('chat-input').focus();
}

async function start() {
  let s;
  try {
    const r = await fetch('/api/chat/session', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    s = await r.json();
    if (!r.ok) throw new Error(s.error || 'The chat is not available');
  } catch (err) {
    $('chat-status').textContent = 'offline';
    showGate(err.message);
    return;
  }
  csrf = s.csrfToken;
  $('greeting').textContent = s.greeting || '';
  $('key-help').textContent = s.keyHelp || '';
  if (s.keyLength) $('key-input').setAttribute('placeholder', '•'.repeat(s.keyLength));
  if (s.keyNumeric) $('key-input').setAttribute('inputmode', 'numeric');
  if (!s.available) $('chat-status').textContent = 'the model is not loaded';
  if (s.authorised) showChat(s.authorisedUntil);
  else showGate(s.needsNewKey ? 'The access key has changed: enter the new key. 访问密钥已更新，请输入新密钥。' : '');
}

$('key-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const btn = $('key-form').querySelector('button');
  btn.disabled = true;
  try {
    const { res, data } = await call('POST', '/api/chat/verify', { key: $('key-input').value });
    if (res.ok && data.ok) {
      $('key-input').value = '';
      showChat(data.authorisedUntil);
      if (data.message) addMessage('system', data.message.split('\n')[0]);
    } else {
      showGate(data.error || `The key was not accepted (${res.status})`);
    }
  } catch {
    showGate('The server cannot be reached; check your connection. 无法连接服务器。');
  } finally {
    btn.disabled = false;
  }
});

/** Reads an SSE stream from a fetch response, calling onEvent(name, data) per event. */
async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(event, JSON.parse(data.join('\n')));
    }
  }
}

async function send(text) {
  busy = true;
  $('send').disabled = true;
  addMessage('user', text);
  const bot = addMessage('bot streaming', '');
  let streamed = '';
  let finished = false;
  try {
    const res = await fetch('/api/chat/messages', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'text/event-stream' },
      body: JSON.stringify({ text }),
      credentials: 'same-origin',
    });
    if (!res.ok || !(res.headers.get('content-type') || '').includes('text/event-stream')) {
      let data = {};
      try {
        data = await res.json();
      } catch {
        /* not JSON */
      }
      bot.remove();
      if (res.status === 401 && (data.code === 'unauthorised' || data.code === 'key_changed')) {
        showGate(data.error);
        return;
      }
      addMessage('error', data.error || `Something went wrong (${res.status})`);
      return;
    }
    await readEvents(res, (event, data) => {
      if (event === 'token') {
        streamed += data.t;
        bot.textContent = streamed;
        $('chat-log').scrollTop = $('chat-log').scrollHeight;
      } else if (event === 'retry') {
        // The server rejected that try of the reply and generates it again.
        streamed = '';
        bot.textContent = '';
      } else if (event === 'done') {
        finished = true;
        bot.textContent = data.text || streamed || '…';
        bot.dataset.tokens = String(data.tokens);
      } else if (event === 'notice') {
        finished = true;
        bot.remove();
        if (data.code === 'key_changed' || data.code === 'unauthorised') showGate(data.message);
        else addMessage('error', data.message);
      }
    });
    if (!finished) {
      bot.textContent = streamed;
      addMessage('error', 'The reply was interrupted. 回复中断，请重试。');
    }
  } catch {
    addMessage('error', 'The connection was lost. 连接中断，请重试。');
  } finally {
    bot.classList.remove('streaming');
    busy = false;
    $('send').disabled = false;
    $('chat-input').focus();
  }
}

$('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('chat-input').value.trim();
  if (!text || busy) return;
  $('chat-input').value = '';
  send(text);
});

$('chat-input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('chat-form').requestSubmit();
  }
});

$('reset').addEventListener('click', async () => {
  const { res, data } = await call('POST', '/api/chat/reset', {});
  if (res.ok) {
    $('chat-log').replaceChildren();
    addMessage('system', data.hadMemory ? 'New conversation: I have forgotten what we said. 已开始新对话。' : 'New conversation. 已开始新对话。');
  } else addMessage('error', data.error || 'Could not reset');
});

start();
