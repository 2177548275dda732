// palaver's chat page: a small client of the protocol in README.md.
// Message text is only ever inserted with textContent, never as HTML.
const log = document.getElementById('log');
const statusEl = document.getElementById('status');
const onlineEl = document.getElementById('online');
const form = document.getElementById('composer');
const text = document.getElementById('text');
const nameInput = document.getElementById('name');

nameInput.value = localStorage.getItem('palaver-name') || '';
let socket = null;
let msgId = 0;
let retry = 0;
const seen = new Set(); // seq numbers already shown (history after reconnect)

function line(cls, who, body, when) {
  const li = document.createElement('li');
  li.className = cls;
  if (who) {
    const w = document.createElement('span');
    w.className = 'who';
    w.textContent = who;
    li.append(w);
  }
  li.append(document.createTextNode(body));
  if (when) {
    const t = document.createElement('time');
    t.className = 'when';
    t.textContent = new Date(when).toLocaleTimeString();
    li.append(t);
  }
  const atBottom = log.parentElement.scrollHeight - log.parentElement.scrollTop
    - log.parentElement.clientHeight < 40;
  log.append(li);
  if (atBottom) li.scrollIntoView({ block: 'end' });
}

function setStatus(textValue, cls) {
  statusEl.textContent = textValue;
  statusEl.className = cls;
}

function connect() {
  const name = nameInput.value.trim();
  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (name) url.searchParams.set('name', name);
  socket = new WebSocket(url, 'palaver');
  setStatus('Connecting…', '');
  socket.onopen = () => { retry = 0; setStatus('Connected', 'open'); };
  socket.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    switch (m.type) {
      case 'id':
        nameInput.value = m.you.name;
        break;
      case 'presence':
        onlineEl.textContent = `${m.online} online`;
        break;
      case 'message':
        if (seen.has(m.seq)) break;
        seen.add(m.seq);
        line('', m.from.name, m.text, m.serverDate);
        break;
      case 'join':
      case 'leave': {
        onlineEl.textContent = `${m.online} online`;
        // Large rooms send counts only (no "users").
        const names = (m.users || []).map((u) => u.name);
        const who = names.length === 0 ? `${m.count} people`
          : names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more` : names.join(', ');
        line('notice', '', `${who} ${m.type === 'join' ? 'joined' : 'left'}`);
        break;
      }
      case 'rename':
        line('notice', '', `${m.oldName} is now ${m.user.name}`);
        break;
      case 'ack':
        seen.add(m.seq);
        break;
      case 'error':
        line('error', '', `Not sent: ${m.message}`);
        break;
    }
  };
  socket.onclose = () => {
    const wait = Math.min(30000, 500 * 2 ** retry) * (0.5 + Math.random() / 2);
    retry++;
    setStatus(`Reconnecting in ${Math.round(wait / 1000)} s`, 'closed');
    setTimeout(connect, wait);
  };
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const body = text.value;
  if (!body.trim() || !socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({ type: 'message', msgId: msgId++, text: body, clientKey: '', date: Date.now() }));
  line('mine', 'me', body, Date.now());
  text.value = '';
});

text.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    form.requestSubmit();
  }
});

nameInput.addEventListener('change', () => {
  const name = nameInput.value.trim();
  localStorage.setItem('palaver-name', name);
  if (name && socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: 'hello', name }));
  }
});

connect();
