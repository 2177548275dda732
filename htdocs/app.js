// palaver's chat page: a client of the protocol in README.md ("Protocol").
// Safety rule: text from the network is only ever inserted as text
// (textContent, createTextNode), never as HTML.
import { avatarColor, initials, linkify, utf8Length } from './text.js';

const $ = (id) => document.getElementById(id);
const log = $('log');
const scroller = $('scroller');
const statusEl = $('status');
const connectBtn = $('connect');
const disconnectBtn = $('disconnect');
const usersEl = $('users');
const countEl = $('count');
const live = $('live');
const newerBtn = $('newer');
const olderBtn = $('older');
const beginning = $('beginning');
const form = $('composer');
const text = $('text');
const counter = $('counter');
const sendBtn = $('send');
const meBtn = $('me');
const nameDialog = $('name-dialog');
const nameForm = $('name-form');
const nameInput = $('name');

const NAME_KEY = 'palaver-name';
const baseTitle = document.title;

const state = {
  socket: null,
  wanted: true,        // false after Disconnect: no automatic reconnect
  retry: 0,
  retryTimer: null,
  countdown: null,
  server: '',          // the history id of the palaverd we talk to: names the seq numbering
  seen: new Set(),     // "server:seq" of every message shown
  lastSeq: null,       // every message up to this seq has reached us (resume from here)
  oldestSeq: null,     // the oldest message shown of this numbering (page back from here)
  more: null,          // older messages exist: true, false, or null (not asked yet)
  loadingOlder: false,
  runTop: null,        // where this numbering's messages start in the log (after a reset)
  replaying: 0,        // missed messages still to come after "resume"
  myIds: new Set(),    // public ids of this page's connections, old ones included
  unconfirmed: [],     // own messages whose ack the connection lost: {li, text}
  me: null,            // {id, name}
  maxText: 4096,
  users: new Map(),    // id -> name
  online: 0,
  pending: new Map(),  // msgId -> {li, text}
  nextId: 1,
  unseenBelow: 0,      // arrived while scrolled up
  unreadHidden: 0,     // arrived while the tab was hidden
  loadingHistory: 0,   // history messages still to come after presence
};

// ---- connection ----------------------------------------------------------

function setStatus(label, cls) {
  statusEl.textContent = label;
  statusEl.className = `status ${cls}`;
  const open = cls === 'connected' || cls === 'connecting';
  connectBtn.disabled = open;
  disconnectBtn.disabled = !open;
  sendBtn.disabled = cls !== 'connected' || overLimit();
}

function connect() {
  clearTimeout(state.retryTimer);
  clearInterval(state.countdown);
  state.wanted = true;
  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const name = localStorage.getItem(NAME_KEY);
  if (name) url.searchParams.set('name', name);
  // Back after a drop: ask for exactly what we missed (README, Recovery).
  if (state.server && state.lastSeq !== null) {
    url.searchParams.set('since', String(state.lastSeq));
    url.searchParams.set('server', state.server);
  }
  const socket = new WebSocket(url, 'palaver');
  state.socket = socket;
  setStatus('Connecting…', 'connecting');
  socket.onopen = () => {
    state.retry = 0;
    setStatus('Connected', 'connected');
    updateOlder();
  };
  socket.onmessage = (ev) => {
    let m;
    try {
      m = JSON.parse(ev.data);
    } catch {
      return;
    }
    handle(m);
  };
  socket.onclose = () => {
    if (state.socket !== socket) return;
    state.socket = null;
    state.loadingOlder = false;
    updateOlder();
    failPending('not confirmed: the connection dropped');
    if (!state.wanted) {
      setStatus('Disconnected', 'disconnected');
      return;
    }
    scheduleReconnect();
  };
}

// Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to 30 s, each
// drawn between half and all of that, so a room of clients does not come
// back in lockstep after a restart.
function scheduleReconnect() {
  const cap = Math.min(30000, 500 * 2 ** state.retry);
  const wait = cap / 2 + Math.random() * (cap / 2);
  state.retry++;
  const until = Date.now() + wait;
  const tick = () => {
    const s = Math.max(1, Math.ceil((until - Date.now()) / 1000));
    setStatus(`Reconnecting in ${s} s`, 'reconnecting');
  };
  tick();
  state.countdown = setInterval(tick, 1000);
  state.retryTimer = setTimeout(() => {
    clearInterval(state.countdown);
    connect();
  }, wait);
}

function disconnect() {
  state.wanted = false;
  clearTimeout(state.retryTimer);
  clearInterval(state.countdown);
  if (state.socket) state.socket.close(1000, 'bye');
  else setStatus('Disconnected', 'disconnected');
}

connectBtn.addEventListener('click', connect);
disconnectBtn.addEventListener('click', disconnect);

// ---- incoming ------------------------------------------------------------

function handle(m) {
  switch (m.type) {
    case 'id':
      state.server = m.server || '';
      state.me = m.you;
      if (m.you) state.myIds.add(m.you.id);
      if (Number.isInteger(m.maxText)) state.maxText = m.maxText;
      showMe();
      updateCounter();
      break;
    case 'presence':
      state.users = new Map((m.users || []).map((u) => [u.id, u.name]));
      state.online = m.online;
      state.loadingHistory = m.history || 0;
      if (state.lastSeq === null && Number.isInteger(m.lastSeq)) state.lastSeq = m.lastSeq;
      renderUsers();
      break;
    case 'message':
      onMessage(m);
      break;
    case 'resume':
      onResume(m);
      break;
    case 'reset':
      onReset(m);
      break;
    case 'history':
      onOlder(m);
      break;
    case 'join':
    case 'leave':
      onPresenceChange(m);
      break;
    case 'rename':
      if (state.users.has(m.user.id)) state.users.set(m.user.id, m.user.name);
      if (state.me && m.user.id === state.me.id) {
        state.me = m.user;
        showMe();
      }
      renderUsers();
      notice(`${m.oldName} is now ${m.user.name}`);
      break;
    case 'ack':
      onAck(m);
      break;
    case 'error':
      onError(m);
      break;
    default:
      break;
  }
}

function noteSeq(seq) {
  if (!Number.isInteger(seq)) return;
  if (state.lastSeq === null || seq > state.lastSeq) state.lastSeq = seq;
  if (state.oldestSeq === null || seq < state.oldestSeq) {
    state.oldestSeq = seq;
    updateOlder();
  }
}

// A message of ours sent on a connection that dropped before its ack: the
// replay after since shows whether the server got it. Returns true if it
// was one of those (now marked sent, not shown twice).
function confirmOwn(m) {
  if (!m.from || !state.myIds.has(m.from.id) || (state.me && m.from.id === state.me.id)) return false;
  const i = state.unconfirmed.findIndex((u) => u.text === m.text);
  if (i < 0) return false;
  const [u] = state.unconfirmed.splice(i, 1);
  const err = u.li.querySelector('.error');
  if (err) err.remove();
  u.li.dataset.seq = String(m.seq);
  setMessageState(u.li, 'sent', 'Sent');
  return true;
}

function onMessage(m) {
  const key = `${state.server}:${m.seq}`;
  const replayed = state.replaying > 0;
  if (replayed) state.replaying--;
  const fromHistory = !replayed && state.loadingHistory > 0;
  if (fromHistory) state.loadingHistory--;
  noteSeq(m.seq);
  if (state.seen.has(key)) return; // history we already show, after a reconnect
  state.seen.add(key);
  if (replayed && confirmOwn(m)) return;
  const mine = m.from && state.myIds.has(m.from.id);
  const li = messageItem(m.from ? m.from.name : '?', m.text, m.serverDate || m.date, mine);
  li.dataset.seq = String(m.seq);
  if (fromHistory) li.classList.add('history');
  append(li, !fromHistory);
  if (!fromHistory && !replayed) {
    live.textContent = `${m.from ? m.from.name : 'someone'}: ${m.text}`;
  }
  if (!fromHistory && document.hidden) {
    state.unreadHidden++;
    document.title = `(${state.unreadHidden}) ${baseTitle}`;
  }
}

// After a reconnect with since: exactly the messages we missed follow.
function onResume(m) {
  state.replaying = m.history || 0;
  state.loadingHistory = 0;
  if (state.replaying > 0) {
    const n = state.replaying;
    notice(`${n} message${n > 1 ? 's' : ''} arrived while you were away`);
    live.textContent = `${n} missed message${n > 1 ? 's' : ''}`;
  }
}

const RESET_REASONS = {
  'too-far': 'You were away for too long to catch up on everything; showing the latest messages.',
  unavailable: 'Some messages could not be recovered; showing the latest messages.',
  ahead: 'The server’s history was restored from an older state; showing its latest messages.',
  'other-history': 'The server’s history has changed; showing its latest messages.',
};

// since could not be honoured: the latest messages follow.
function onReset(m) {
  const renumbered = m.reason === 'ahead' || m.reason === 'other-history';
  notice(RESET_REASONS[m.reason] || 'Showing the latest messages.');
  if (renumbered) {
    // seq numbers of before do not compare with the new ones.
    state.seen = new Set();
    state.runTop = log.lastElementChild;
    state.oldestSeq = null;
    state.more = null;
  }
  state.lastSeq = Number.isInteger(m.lastSeq) ? m.lastSeq : null;
  state.replaying = 0;
  state.loadingHistory = m.history || 0;
  updateOlder();
}

// ---- older history (scroll-back) -------------------------------------------

function updateOlder() {
  const connected = state.socket && state.socket.readyState === WebSocket.OPEN;
  const possible = state.more !== false && state.oldestSeq !== null && state.oldestSeq > 1;
  olderBtn.hidden = !possible;
  olderBtn.disabled = !connected || state.loadingOlder;
  olderBtn.textContent = state.loadingOlder ? 'Loading…' : 'Load older messages';
  beginning.hidden = !(state.more === false || state.oldestSeq === 1);
}

function loadOlder() {
  if (state.loadingOlder || olderBtn.hidden || olderBtn.disabled) return;
  state.loadingOlder = true;
  updateOlder();
  state.socket.send(JSON.stringify({
    type: 'history', before: state.oldestSeq, limit: 50, msgId: `h${state.nextId++}`,
  }));
}

function onOlder(m) {
  state.loadingOlder = false;
  const items = [];
  for (const x of m.messages || []) {
    const key = `${state.server}:${x.seq}`;
    if (state.seen.has(key)) continue;
    state.seen.add(key);
    const mine = x.from && state.myIds.has(x.from.id);
    const li = messageItem(x.from ? x.from.name : '?', x.text, x.serverDate || x.date, mine);
    li.dataset.seq = String(x.seq);
    li.classList.add('history');
    items.push(li);
  }
  // Keep what the reader looks at in place while rows appear above it.
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  if (state.runTop && state.runTop.parentNode === log) state.runTop.after(...items);
  else log.prepend(...items);
  scroller.scrollTop = scroller.scrollHeight - fromBottom;
  if (m.messages && m.messages.length) {
    const first = m.messages[0].seq;
    state.oldestSeq = state.oldestSeq === null ? first : Math.min(state.oldestSeq, first);
  }
  state.more = Boolean(m.more);
  updateOlder();
}

olderBtn.addEventListener('click', loadOlder);

function onPresenceChange(m) {
  const list = m.users || (m.user ? [m.user] : []);
  for (const u of list) {
    if (m.type === 'join') state.users.set(u.id, u.name);
    else state.users.delete(u.id);
  }
  state.online = m.online;
  renderUsers();
  const others = list.filter((u) => !state.me || u.id !== state.me.id);
  if (m.type === 'join' && others.length === 0 && list.length > 0) return; // our own join
  const names = others.map((u) => u.name);
  const who = names.length === 0 ? `${m.count} people`
    : names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`
      : names.join(', ');
  notice(`${who} ${m.type === 'join' ? 'joined' : 'left'}`);
}

function onAck(m) {
  const p = state.pending.get(String(m.msgId));
  if (m.seq !== undefined) {
    state.seen.add(`${state.server}:${m.seq}`);
    noteSeq(m.seq);
  }
  if (!p) return;
  state.pending.delete(String(m.msgId));
  p.li.dataset.seq = String(m.seq);
  setMessageState(p.li, 'sent', 'Sent');
}

function onError(m) {
  const p = m.msgId !== undefined ? state.pending.get(String(m.msgId)) : null;
  if (p && m.code === 'not-stored') {
    // Relayed to everyone online, but the server could not save it.
    state.pending.delete(String(m.msgId));
    setMessageState(p.li, 'unsaved', 'Sent, not saved');
    p.li.title = m.message;
    return;
  }
  if (p) {
    state.pending.delete(String(m.msgId));
    markFailed(p.li, p.text, m.message);
    return;
  }
  if (typeof m.msgId === 'string' && m.msgId.startsWith('h')) {
    state.loadingOlder = false; // a history request refused: the button works again
    updateOlder();
  }
  notice(`Server: ${m.message}`, 'error');
}

// The connection dropped before these were acknowledged: shown as not
// sent, with Retry; the replay after the reconnect may confirm them.
function failPending(why) {
  for (const p of state.pending.values()) {
    markFailed(p.li, p.text, why);
    state.unconfirmed.push(p);
  }
  state.pending.clear();
}

// ---- rendering -----------------------------------------------------------

function avatar(name) {
  const a = document.createElement('span');
  a.className = 'avatar';
  a.setAttribute('aria-hidden', 'true');
  a.textContent = initials(name);
  a.style.setProperty('--hue', String(avatarColor(name)));
  return a;
}

function messageItem(name, body, when, mine) {
  const li = document.createElement('li');
  li.className = mine ? 'msg mine' : 'msg';
  li.append(avatar(name));
  const box = document.createElement('div');
  box.className = 'bubble';
  const head = document.createElement('div');
  head.className = 'head';
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = mine ? `${name} (you)` : name;
  const t = document.createElement('time');
  t.className = 'when';
  const d = new Date(when || Date.now());
  t.dateTime = d.toISOString();
  t.textContent = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  head.append(who, t);
  const p = document.createElement('p');
  p.className = 'text';
  p.append(...linkify(body));
  box.append(head, p);
  li.append(box);
  return li;
}

function setMessageState(li, cls, label) {
  let s = li.querySelector('.state');
  if (!s) {
    s = document.createElement('span');
    s.className = 'state';
    li.querySelector('.head').append(s);
  }
  s.dataset.state = cls;
  s.textContent = label;
}

function markFailed(li, body, why) {
  setMessageState(li, 'failed', 'Not sent');
  let err = li.querySelector('.error');
  if (!err) {
    err = document.createElement('div');
    err.className = 'error';
    err.setAttribute('role', 'alert');
    li.querySelector('.bubble').append(err);
  }
  err.textContent = why;
  const retry = document.createElement('button');
  retry.type = 'button';
  retry.className = 'retry';
  retry.textContent = 'Retry';
  retry.addEventListener('click', () => {
    err.remove();
    state.unconfirmed = state.unconfirmed.filter((u) => u.li !== li);
    send(body, li);
  });
  err.append(' ', retry);
}

function notice(body, cls = 'notice') {
  const li = document.createElement('li');
  li.className = cls;
  li.textContent = body;
  append(li, false);
}

function atBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
}

// Keeps the view at the bottom unless the reader has scrolled up; then a
// "new messages" button counts what arrived below.
function append(li, counts) {
  const stick = atBottom();
  log.append(li);
  if (stick) {
    scroller.scrollTop = scroller.scrollHeight;
  } else if (counts) {
    state.unseenBelow++;
    newerBtn.textContent = `${state.unseenBelow} new message${state.unseenBelow > 1 ? 's' : ''} ↓`;
    newerBtn.hidden = false;
  }
}

scroller.addEventListener('scroll', () => {
  if (atBottom()) {
    state.unseenBelow = 0;
    newerBtn.hidden = true;
  }
  if (scroller.scrollTop < 40) loadOlder(); // reached the top: older history
});
newerBtn.addEventListener('click', () => {
  scroller.scrollTop = scroller.scrollHeight;
  text.focus();
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) {
    state.unreadHidden = 0;
    document.title = baseTitle;
  }
});

function renderUsers() {
  countEl.textContent = String(state.online);
  const items = [...state.users].sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => {
    const li = document.createElement('li');
    li.append(avatar(name));
    const n = document.createElement('span');
    n.className = 'name';
    n.textContent = state.me && id === state.me.id ? `${name} (you)` : name;
    li.append(n);
    return li;
  });
  usersEl.replaceChildren(...items);
}

function showMe() {
  const name = state.me ? state.me.name : localStorage.getItem(NAME_KEY) || '';
  meBtn.querySelector('.me-name').textContent = name;
  const a = meBtn.querySelector('.avatar');
  a.textContent = initials(name);
  a.style.setProperty('--hue', String(avatarColor(name)));
  meBtn.setAttribute('aria-label', `Your name: ${name}. Change it`);
}

// ---- sending -------------------------------------------------------------

function overLimit() {
  return utf8Length(text.value) > state.maxText;
}

function updateCounter() {
  const n = utf8Length(text.value);
  counter.textContent = `${n} / ${state.maxText}`;
  const over = n > state.maxText;
  counter.classList.toggle('over', over);
  text.setAttribute('aria-invalid', over ? 'true' : 'false');
  sendBtn.disabled = over || !state.socket || state.socket.readyState !== WebSocket.OPEN;
}

function send(body, existing) {
  const msgId = `m${state.nextId++}`;
  const li = existing || messageItem(state.me ? state.me.name : 'me', body, Date.now(), true);
  if (!existing) append(li, false);
  scroller.scrollTop = scroller.scrollHeight;
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
    markFailed(li, body, 'not connected');
    return;
  }
  setMessageState(li, 'sending', 'Sending…');
  state.pending.set(msgId, { li, text: body });
  state.socket.send(JSON.stringify({
    type: 'message', msgId, text: body, clientKey: '', date: Date.now(),
  }));
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const body = text.value;
  if (!body.trim() || overLimit()) return;
  send(body);
  text.value = '';
  updateCounter();
});

text.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    form.requestSubmit();
  }
});
text.addEventListener('input', updateCounter);

// ---- name ----------------------------------------------------------------

function askName() {
  nameInput.value = (state.me && state.me.name) || localStorage.getItem(NAME_KEY) || '';
  nameDialog.showModal();
  nameInput.select();
}

nameForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = nameInput.value.trim();
  if (!name) return;
  localStorage.setItem(NAME_KEY, name);
  nameDialog.close();
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify({ type: 'hello', name }));
  }
  showMe();
  text.focus();
});
meBtn.addEventListener('click', askName);

showMe();
updateCounter();
connect();
if (!localStorage.getItem(NAME_KEY)) askName();
else text.focus();
