// palaver's chat page: a client of the protocol in README.md ("Protocol").
// Safety rule: text from the network is only ever inserted as text
// (textContent, createTextNode), never as HTML.
import { Session } from './session.js';
import { avatarColor, initials, linkify, mentions, utf8Length } from './text.js';
import { Attachment, humanSize, lightbox, renderFiles } from './files.js';

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
const accountEl = $('account');
const signinBtn = $('signin');
const signoutBtn = $('signout');
const signinDialog = $('signin-dialog');
const signinForm = $('signin-form');
const signinError = $('signin-error');
const registerLink = $('register-link');

const NAME_KEY = 'palaver-name';
const baseTitle = document.title;

// Protocol and recovery state (session.js, tested under node); the page
// keeps only what is about the view and the socket.
const session = new Session();
const state = {
  socket: null,
  wanted: true,        // false after Disconnect: no automatic reconnect
  retry: 0,
  retryTimer: null,
  countdown: null,
  runTop: null,        // where this numbering's messages start in the log (after a reset)
  own: new Map(),      // msgId -> <li> of our own messages not yet confirmed
  unseenBelow: 0,      // arrived while scrolled up
  unreadHidden: 0,     // arrived while the tab was hidden
  account: null,       // {id, name, role} when signed in (GET /api/me), else a guest
  auth: 'open',        // 'members': only signed-in people may connect (GET /api/me)
  registration: 'closed', // 'open': anyone may make an account (/register)
  room: 'lobby',       // the room shown (docs/rooms.md)
  readTimer: null,     // a read marker waiting (at most one a second)
  roomsFrame: 0,       // the sidebar's redraw is pending (one per frame)
  receivedTimer: null, // "received" markers waiting (at most one batch a second)
  typingRoom: null,    // the room we said we are typing in, null: not typing
  typingSent: 0,       // when we last said so (refreshed every TYPING_REFRESH_MS)
  attention: 0,        // mentions and DMs that arrived while the tab was hidden
  tray: [],            // files attached to the message being written (files.js Attachment)
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
  // Back after a drop, the URL asks for exactly what we missed.
  const socket = new WebSocket(session.url(location.href, localStorage.getItem(NAME_KEY)), 'palaver');
  state.socket = socket;
  setStatus('Connecting…', 'connecting');
  let opened = false;
  socket.onopen = () => {
    opened = true;
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
    for (const ev of session.receive(m)) render(ev);
  };
  socket.onclose = (ev) => {
    if (state.socket !== socket) return;
    state.socket = null;
    for (const e of session.dropped('not confirmed: the connection dropped')) render(e);
    if (closedByServer(ev)) return;
    if (!state.wanted) {
      setStatus('Disconnected', 'disconnected');
      return;
    }
    if (!opened && (state.account || state.auth === 'members')) {
      // Refused before it opened, signed in: perhaps the session ended
      // (signed out elsewhere, expired: the handshake answers 401).
      // /api/me clears a dead cookie and says whether the chat is for
      // members. (A guest of an open chat just retries: asking on every
      // failed attempt would add a failed request to each retry while
      // palaverd restarts.)
      refreshAccount().then(() => (needsSignin() ? askSignin() : scheduleReconnect()));
      return;
    }
    scheduleReconnect();
  };
}

// The server's own close codes (docs/protocol.md): kicked (4001) may come
// back after a pause, banned (4003) may not, a session that ended (4002:
// signed out elsewhere, revoked, password changed) goes back to being a
// guest or to the sign-in screen. True when handled here.
function closedByServer(ev) {
  const why = ev.reason ? `: ${ev.reason.replace(/^(kicked|banned) by [^:]*:? ?/, '')}` : '';
  if (ev.code === 4001) {
    notice(`A moderator removed you from the chat${why ? why : ''}. You can come back.`, 'error');
    setStatus('Removed', 'disconnected');
    state.wanted = true;
    state.retry = Math.max(state.retry, 4); // not at once: a pause first
    scheduleReconnect();
    return true;
  }
  if (ev.code === 4003) {
    notice(`You are banned from this chat${why ? why : ''}.`, 'error');
    state.wanted = false;
    setStatus('Banned', 'disconnected');
    refreshAccount();
    return true;
  }
  if (ev.code === 4004) {
    notice('This chat is for members now: sign in to go on.', 'error');
    refreshAccount().then(() => (needsSignin() ? askSignin() : connect()));
    return true;
  }
  if (ev.code === 4002) {
    notice('Your session has ended (signed out, revoked, or the password changed).', 'error');
    refreshAccount().then(() => {
      if (needsSignin()) askSignin();
      else if (!state.socket) connect();
    });
    return true;
  }
  return false;
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

// ---- incoming: the session's events, rendered ----------------------------

function render(ev) {
  switch (ev.kind) {
    case 'me':
      showMe();
      updateCounter();
      requestRooms();
      if (state.account) send1(JSON.stringify({ type: 'settings' })); // our receipts setting
      break;
    case 'receipts':
      updateTicks(ev.room);
      break;
    case 'typing':
      renderTyping();
      break;
    case 'settings':
      $('read-receipts').checked = session.readReceipts !== false;
      updateTicks(state.room);
      break;
    case 'seen':
      showSeen(ev.m);
      break;
    case 'users':
      renderUsers();
      renderMembers();
      break;
    case 'message':
      showMessage(ev);
      break;
    case 'confirmed': {
      const li = state.own.get(ev.msgId);
      if (!li) break;
      state.own.delete(ev.msgId);
      const err = li.querySelector('.error');
      if (err) err.remove();
      li.dataset.seq = String(ev.seq);
      setMessageState(li, 'sent', 'Sent');
      break;
    }
    case 'acked': {
      const li = state.own.get(ev.msgId);
      if (!li) break;
      state.own.delete(ev.msgId);
      li.dataset.seq = String(ev.seq);
      if (Number.isInteger(ev.rseq)) li.dataset.rseq = String(ev.rseq);
      if (state.account) li.dataset.account = String(state.account.id);
      setMessageState(li, 'sent', 'Sent');
      addActions(li);
      updateTick(li);
      break;
    }
    case 'unsaved': {
      // Relayed to everyone online, but the server could not save it.
      const li = state.own.get(ev.msgId);
      if (!li) break;
      state.own.delete(ev.msgId);
      setMessageState(li, 'unsaved', 'Sent, not saved');
      li.title = ev.message;
      break;
    }
    case 'failed': {
      // Refused, or its connection dropped: shown as not sent, with Retry
      // (a replay after the reconnect may still confirm it).
      const li = state.own.get(ev.msgId);
      if (li) markFailed(li, ev.msgId, ev.text, ev.why);
      break;
    }
    case 'notice':
      notice(ev.text, ev.cls);
      break;
    case 'missed':
      notice(`${ev.n} message${ev.n > 1 ? 's' : ''} arrived while you were away`);
      live.textContent = `${ev.n} missed message${ev.n > 1 ? 's' : ''}`;
      break;
    case 'reset':
      if (ev.renumbered) state.runTop = log.lastElementChild;
      break;
    case 'older':
      showOlder(ev);
      break;
    case 'olderState':
      updateOlder();
      break;
    case 'edited': {
      const li = rowOf(ev.seq);
      if (li) setText(li, ev.text, ev.edited);
      break;
    }
    case 'deleted': {
      const li = rowOf(ev.seq);
      if (li) markDeleted(li);
      else if (!ev.shown) append(placeIn(deletedItem(ev.seq, ev.date), { room: ev.room }), false);
      break;
    }
    case 'moderation':
      moderated(ev.m);
      break;
    case 'rooms':
      roomsChanged();
      break;
    case 'roomEvent':
      roomEvent(ev);
      break;
    case 'dm':
      requestRooms();
      switchRoom(ev.room);
      break;
    case 'members':
      showMembers(ev.m);
      updateTicks(ev.m.room);
      break;
    default:
      break;
  }
}

function showMessage({ m, history, replayed, mine }) {
  const li = messageItem(m.from ? m.from.name : '?', m.text, m.serverDate || m.date, mine,
    m.from && m.from.role, m.files);
  li.dataset.seq = String(m.seq);
  placeIn(li, m);
  if (m.from && m.from.account) li.dataset.account = String(m.from.account);
  if (m.edited) setText(li, m.text, m.edited);
  addActions(li);
  if (history) li.classList.add('history');
  append(li, !history && !li.hidden);
  if (!history && !replayed && !li.hidden) {
    const shared = Array.isArray(m.files) && m.files.length
      ? ` (shared ${m.files.length === 1 ? 'a file' : `${m.files.length} files`})` : '';
    live.textContent = `${m.from ? m.from.name : 'someone'}: ${m.text}${shared}`;
  }
  if (!mine) noteReceived(m);
  if (!history && !replayed && !mine && document.hidden) {
    state.unreadHidden++;
    const r = session.rooms.get(m.room || 'lobby');
    const forMe = (r && r.kind === 'dm') || mentions(m.text, myName());
    if (forMe) attention(m, r);
    showBadge();
  }
  if (!mine && mentions(m.text, myName())) li.classList.add('mentions-me');
}

// ---- receipts, typing, mentions (docs/receipts.md) --------------------------

const TYPING_REFRESH_MS = 3000; // the server forgets a typist after 6 s

function myName() {
  return session.me ? session.me.name : state.account ? state.account.name : '';
}

// A message of someone else's in a DM or small room reached us: say so
// (cumulative per room, one batch a second at most).
function noteReceived(m) {
  session.noteReceived(m.room || 'lobby', m.rseq);
  if (state.receivedTimer) return;
  state.receivedTimer = setTimeout(() => {
    state.receivedTimer = null;
    for (const frame of session.receivedRequests()) send1(frame);
  }, MARKER_DELAY());
}

// Where one of our own messages stands: Sent, Delivered, Read (a DM), or
// Delivered to / Seen by so many (a small room). Big rooms stream nothing:
// their messages stay "Sent", and the state asks "who has seen it?".
function updateTick(li) {
  if (!li.classList.contains('mine') || !li.dataset.rseq) return;
  const s = li.querySelector('.state');
  if (!s || !['sent', 'delivered', 'read', 'seen'].includes(s.dataset.state)) return;
  const room = li.dataset.room || 'lobby';
  const r = session.receipt(room, Number(li.dataset.rseq), state.account && state.account.id);
  if (!r || r.of === 0) {
    seenButton(li, room);
    return;
  }
  const dm = r.of === 1;
  if (r.read > 0 && r.read === r.of) setMessageState(li, 'read', dm ? 'Read' : 'Seen by everyone');
  else if (r.read > 0) setMessageState(li, 'read', `Seen by ${r.read} of ${r.of}`);
  else if (r.delivered === r.of) setMessageState(li, 'delivered', 'Delivered');
  else if (r.delivered > 0) setMessageState(li, 'delivered', `Delivered to ${r.delivered} of ${r.of}`);
  else setMessageState(li, 'sent', 'Sent');
  li.querySelector('.state').title = r.readers.length ? `Seen by ${r.readers.join(', ')}` : '';
}

function updateTicks(room) {
  const sel = `li.mine[data-rseq][data-room="${CSS.escape(room || 'lobby')}"]`;
  for (const li of log.querySelectorAll(sel)) updateTick(li);
}

// In a room without streamed positions, our message's state is a button
// that asks who has seen it.
function seenButton(li, room) {
  const s = li.querySelector('.state');
  if (!state.account || s.querySelector('button')) return;
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'seen-btn link';
  b.textContent = s.textContent;
  b.setAttribute('aria-label', 'Who has seen this message?');
  b.addEventListener('click', () => send1(JSON.stringify({
    type: 'seen', room, rseq: Number(li.dataset.rseq), msgId: `seen:${li.dataset.rseq}`,
  })));
  s.replaceChildren(b);
}

function showSeen(m) {
  const li = log.querySelector(`li.mine[data-room="${CSS.escape(m.room)}"][data-rseq="${Number(m.rseq)}"]`);
  if (!li) return;
  const s = li.querySelector('.state');
  const label = Number.isInteger(m.read)
    ? `Seen by ${m.read} of ${m.of}${m.readers && m.readers.length ? `: ${m.readers.join(', ')}${m.read > m.readers.length ? '…' : ''}` : ''}`
    : `Delivered to ${m.delivered} of ${m.of}`;
  s.dataset.state = 'seen';
  const b = s.querySelector('button');
  if (b) b.textContent = label;
  else s.textContent = label;
}

// "X is typing…" under the shown room's messages (our own name left out).
function renderTyping() {
  const me = myName();
  const names = (session.typing.get(state.room) || []).filter((n) => n !== me);
  const el = $('typing');
  el.textContent = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…`
      : names.length <= 3 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)} are typing…`
        : 'Several people are typing…';
}

// Start/stop as the composer changes; refreshed while typing goes on.
function typingChanged() {
  const now = Date.now();
  const typing = text.value.trim() !== '';
  if (typing && (state.typingRoom !== state.room || now - state.typingSent >= TYPING_REFRESH_MS)) {
    if (state.typingRoom && state.typingRoom !== state.room) stopTyping();
    send1(JSON.stringify(state.room === 'lobby' ? { type: 'typing', typing: true }
      : { type: 'typing', room: state.room, typing: true }));
    state.typingRoom = state.room;
    state.typingSent = now;
  } else if (!typing) {
    stopTyping();
  }
}

function stopTyping() {
  if (!state.typingRoom) return;
  const room = state.typingRoom;
  state.typingRoom = null;
  send1(JSON.stringify(room === 'lobby' ? { type: 'typing', typing: false }
    : { type: 'typing', room, typing: false }));
}

// A mention or DM while the tab is hidden: the title and icon say so,
// and a desktop notification if the person asked for them.
function attention(m, r) {
  state.attention++;
  if (localStorage.getItem(NOTIFY_KEY) !== 'on' || !('Notification' in window)
    || Notification.permission !== 'granted') return;
  const from = m.from ? m.from.name : 'someone';
  const where = r && r.kind === 'dm' ? 'direct message' : `# ${m.room || 'lobby'}`;
  try {
    const n = new Notification(`${from} (${where})`, { body: String(m.text).slice(0, 140), tag: m.room || 'lobby' });
    n.onclick = () => { window.focus(); switchRoom(m.room || 'lobby'); n.close(); };
  } catch { /* some browsers only notify from a service worker */ }
}

function showBadge() {
  const n = state.attention;
  document.title = n > 0 ? `(${n}) @ ${baseTitle}`
    : state.unreadHidden > 0 ? `(${state.unreadHidden}) ${baseTitle}` : baseTitle;
  const icon = document.querySelector('link[rel="icon"]');
  if (!icon) return;
  if (n === 0) {
    icon.href = 'data:,';
    return;
  }
  const c = document.createElement('canvas');
  c.width = c.height = 32;
  const g = c.getContext('2d');
  g.fillStyle = '#c62828';
  g.beginPath();
  g.arc(16, 16, 15, 0, 2 * Math.PI);
  g.fill();
  g.fillStyle = '#fff';
  g.font = 'bold 20px sans-serif';
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  g.fillText(n > 9 ? '9+' : String(n), 16, 17);
  icon.href = c.toDataURL('image/png');
}

const NOTIFY_KEY = 'palaver-notify';

// Desktop notifications: opt-in, and only where the browser allows them
// (a secure context: https, or localhost).
function setupNotify() {
  const b = $('notify');
  if (!('Notification' in window) || !window.isSecureContext) return;
  const show = () => {
    const on = localStorage.getItem(NOTIFY_KEY) === 'on' && Notification.permission === 'granted';
    b.textContent = on ? 'Notifications on' : 'Notify me';
    b.setAttribute('aria-pressed', on ? 'true' : 'false');
  };
  b.hidden = false;
  show();
  b.addEventListener('click', async () => {
    if (localStorage.getItem(NOTIFY_KEY) === 'on') localStorage.removeItem(NOTIFY_KEY);
    else if (await Notification.requestPermission() === 'granted') localStorage.setItem(NOTIFY_KEY, 'on');
    show();
  });
}
setupNotify();

$('read-receipts').addEventListener('change', (ev) => {
  send1(JSON.stringify({ type: 'settings', readReceipts: ev.target.checked }));
});

// ---- older history (scroll-back) -------------------------------------------

function updateOlder() {
  const connected = state.socket && state.socket.readyState === WebSocket.OPEN;
  const lobby = state.room === 'lobby';
  const page = session.pages.get(state.room);
  const loading = lobby ? session.loadingOlder : Boolean(page && page.loading);
  olderBtn.hidden = lobby ? !session.olderPossible() : !session.roomOlderPossible(state.room);
  olderBtn.disabled = !connected || loading;
  olderBtn.textContent = loading ? 'Loading…' : 'Load older messages';
  beginning.hidden = lobby ? !session.atBeginning() : !(page && (page.more === false || page.oldestRseq <= 1));
}

function loadOlder() {
  if (olderBtn.hidden || olderBtn.disabled) return;
  const frame = state.room === 'lobby' ? session.olderRequest() : session.roomOlderRequest(state.room);
  if (!frame) return;
  updateOlder();
  state.socket.send(frame);
}

function showOlder({ items }) {
  const lis = items.map(({ m, mine }) => {
    if (m.type === 'deleted') return placeIn(deletedItem(m.seq, m.serverDate), m);
    const li = placeIn(messageItem(m.from ? m.from.name : '?', m.text, m.serverDate || m.date, mine,
      m.from && m.from.role), m);
    li.dataset.seq = String(m.seq);
    if (m.from && m.from.account) li.dataset.account = String(m.from.account);
    if (m.edited) setText(li, m.text, m.edited);
    li.classList.add('history');
    addActions(li);
    return li;
  });
  // Keep what the reader looks at in place while rows appear above it.
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  if (state.runTop && state.runTop.parentNode === log) state.runTop.after(...lis);
  else log.prepend(...lis);
  scroller.scrollTop = scroller.scrollHeight - fromBottom;
}

olderBtn.addEventListener('click', loadOlder);

// ---- rendering -----------------------------------------------------------

function avatar(name) {
  const a = document.createElement('span');
  a.className = 'avatar';
  a.setAttribute('aria-hidden', 'true');
  a.textContent = initials(name);
  a.style.setProperty('--hue', String(avatarColor(name)));
  return a;
}

// The sender's role, from the server (never the client's claim): guests
// are marked as guests, admins and moderators as what they are.
function roleBadge(role) {
  if (!role || role === 'member') return null;
  const b = document.createElement('span');
  b.className = `role role-${role === 'guest' ? 'guest' : 'staff'}`;
  b.textContent = role;
  return b;
}

function messageItem(name, body, when, mine, role, files) {
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
  const badge = roleBadge(role || (mine && state.account ? state.account.role : null));
  head.append(...(badge ? [who, badge, t] : [who, t]));
  const p = document.createElement('p');
  p.className = 'text';
  p.dir = 'auto';
  p.append(...linkify(body));
  box.append(head, p);
  if (Array.isArray(files) && files.length) {
    if (!body) p.hidden = true;
    box.append(renderFiles(files, openLightbox));
  }
  li.append(box);
  return li;
}

// ---- edits, deletions, moderation (docs/accounts.md) ----------------------

const texts = new WeakMap(); // <li> -> its text, for the edit box

function rowOf(seq) {
  return log.querySelector(`li[data-seq="${Number(seq)}"]`);
}

const isStaff = () => Boolean(state.account && (state.account.role === 'admin' || state.account.role === 'moderator'));

// Edit and Delete on your own messages, Delete on anyone's for moderators.
// The server decides again (a stale page only gets an error).
function addActions(li) {
  if (!state.account || !li.dataset.seq || li.classList.contains('deleted')) return;
  const own = li.dataset.account === String(state.account.id);
  if (!own && !isStaff()) return;
  li.querySelector('.actions')?.remove();
  const bar = document.createElement('span');
  bar.className = 'actions';
  const button = (label, fn) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link';
    b.textContent = label;
    b.addEventListener('click', fn);
    bar.append(b);
  };
  if (own) button('Edit', () => editRow(li));
  // Deleting takes two clicks: the first asks, in place (no modal).
  button('Delete', (ev) => {
    const b = ev.currentTarget;
    if (b.dataset.armed !== 'yes') {
      b.dataset.armed = 'yes';
      b.textContent = own ? 'Confirm delete' : 'Confirm delete for everyone';
      setTimeout(() => { b.dataset.armed = ''; b.textContent = 'Delete'; }, 5000);
      return;
    }
    if (!state.socket || state.socket.readyState !== WebSocket.OPEN) return;
    state.socket.send(JSON.stringify({ type: 'delete', target: Number(li.dataset.seq) }));
  });
  li.querySelector('.head').append(bar);
}

function setText(li, body, edited) {
  texts.set(li, body);
  const p = li.querySelector('.text');
  if (p) p.replaceChildren(...linkify(body));
  if (edited && !li.querySelector('.edited')) {
    const e = document.createElement('span');
    e.className = 'edited';
    e.textContent = '(edited)';
    li.querySelector('.when').after(e);
  }
}

function editRow(li) {
  const p = li.querySelector('.text');
  if (!p || li.querySelector('.edit-box')) return;
  const box = document.createElement('form');
  box.className = 'edit-box';
  const area = document.createElement('textarea');
  area.value = texts.get(li) ?? p.textContent;
  area.setAttribute('aria-label', 'Edit your message');
  const save = document.createElement('button');
  save.type = 'submit';
  save.textContent = 'Save';
  const cancel = document.createElement('button');
  cancel.type = 'button';
  cancel.textContent = 'Cancel';
  const done = () => { box.remove(); p.hidden = false; };
  cancel.addEventListener('click', done);
  area.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') done();
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      box.requestSubmit();
    }
  });
  box.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const body = area.value;
    if (body.trim() && state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify({ type: 'edit', target: Number(li.dataset.seq), text: body }));
    }
    done();
  });
  box.append(area, save, cancel);
  p.hidden = true;
  p.after(box);
  area.focus();
}

function markDeleted(li) {
  li.classList.add('deleted');
  li.querySelector('.actions')?.remove();
  li.querySelector('.edit-box')?.remove();
  li.querySelector('.edited')?.remove();
  const p = li.querySelector('.text');
  if (p) {
    p.hidden = false;
    p.textContent = 'Message deleted';
  }
}

function deletedItem(seq, when) {
  const li = messageItem('', '', when, false);
  li.dataset.seq = String(seq);
  li.querySelector('.who').textContent = '';
  li.querySelector('.avatar').textContent = '';
  markDeleted(li);
  return li;
}

function moderated(m) {
  const by = m.by ? ` (${m.by})` : '';
  const reason = m.reason ? `: ${m.reason}` : '';
  if (m.action === 'mute') {
    const until = new Date(m.until).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    notice(`A moderator${by} muted you until ${until}${reason}.`, 'error');
  } else if (m.action === 'unmute') {
    notice(`You can post again${by}.`);
  } else if (m.action === 'role' && state.account) {
    state.account.role = m.role;
    notice(`Your role is now ${m.role}${by}.`);
    showAccount();
  }
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

function markFailed(li, msgId, body, why) {
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
    session.retry(msgId);
    state.own.delete(msgId);
    send(body, li, sentFiles.get(li));
  });
  err.append(' ', retry);
}

function notice(body, cls = 'notice') {
  const li = document.createElement('li');
  li.className = cls;
  li.textContent = body;
  li.dataset.room = state.room; /* said to the reader, where they are */
  append(li, false);
}

// ---- rooms (docs/rooms.md) ---------------------------------------------------
// One log for every room: each row names its room and only the shown
// room's rows are visible, so switching is instant and a reconnect's
// replay lands in every room at once.

const roomList = $('room-list');

// A row belongs to its message's room; it is hidden unless that room is shown.
function placeIn(li, m) {
  li.dataset.room = (m && m.room) || 'lobby';
  if (m && Number.isInteger(m.rseq)) li.dataset.rseq = String(m.rseq);
  li.hidden = li.dataset.room !== state.room;
  return li;
}

function roomLabel(r) {
  if (r.kind === 'dm') return `@ ${(r.with || []).map((u) => u.name).join(', ') || 'direct message'}`;
  return `# ${r.room}`;
}

function send1(frame) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(frame);
}

function requestRooms() {
  if (state.account) send1(JSON.stringify({ type: 'rooms' }));
}

// The sidebar, redrawn at most once a frame however fast messages come.
function roomsChanged() {
  if (state.roomsFrame) return;
  state.roomsFrame = requestAnimationFrame(() => {
    state.roomsFrame = 0;
    renderRooms();
  });
}

function renderRooms() {
  $('room-new').hidden = !state.account;
  const rooms = [...session.rooms.values()];
  if (!rooms.length) rooms.push({ room: 'lobby', kind: 'public' });
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.room : null;
  roomList.replaceChildren(...rooms.map((r) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.room = r.room;
    const name = document.createElement('span');
    name.textContent = roomLabel(r);
    b.append(name);
    const n = r.room === state.room ? 0 : session.unread(r.room);
    if (n > 0) {
      const badge = document.createElement('span');
      badge.className = 'unread';
      badge.textContent = n > 99 ? '99+' : String(n);
      b.append(badge);
      b.setAttribute('aria-label', `${roomLabel(r)}, ${n} unread`);
    }
    if (r.room === state.room) b.setAttribute('aria-current', 'true');
    b.tabIndex = r.room === state.room ? 0 : -1; // one tab stop; arrows move inside
    b.addEventListener('click', () => switchRoom(r.room));
    li.append(b);
    return li;
  }));
  if (focused) roomList.querySelector(`button[data-room="${CSS.escape(focused)}"]`)?.focus();
  renderRoomHead();
  markRead();
}

function renderRoomHead() {
  const r = session.rooms.get(state.room) || { room: 'lobby', kind: 'public', topic: '' };
  $('room-title').textContent = roomLabel(r);
  $('room-topic').textContent = r.archived ? `${r.topic || ''} (archived: read-only)` : r.topic || '';
  const own = r.room !== 'lobby';
  $('room-members').hidden = !own;
  $('room-invite').hidden = !own || r.kind === 'dm' || r.archived;
  $('room-leave').hidden = !own || r.kind === 'dm';
  // Renaming: the room's owner or moderators (the server decides; this
  // only hides a button that would be refused).
  $('room-rename').hidden = !own || r.kind === 'dm' || r.archived
    || !(r.role === 'owner' || r.role === 'moderator' || isStaff());
}

// Shows `room`: its rows, its head, its "new messages" marker above the
// first unread one; the composer writes to it from now on.
function switchRoom(room) {
  if (!room) return;
  if (state.typingRoom && state.typingRoom !== room) stopTyping();
  const unreadFrom = (session.rooms.get(room) || {}).lastRead;
  const unread = session.unread(room);
  state.room = room;
  for (const old of log.querySelectorAll('.unread-marker')) old.remove();
  for (const li of log.children) li.hidden = li.dataset.room !== room;
  if (unread > 0 && Number.isInteger(unreadFrom)) {
    const first = [...log.querySelectorAll(`li[data-room="${CSS.escape(room)}"][data-rseq]`)]
      .find((li) => Number(li.dataset.rseq) > unreadFrom);
    if (first) {
      const marker = document.createElement('li');
      marker.className = 'unread-marker';
      marker.dataset.room = room;
      marker.textContent = 'New messages';
      first.before(marker);
    }
  }
  state.unseenBelow = 0;
  newerBtn.hidden = true;
  scroller.scrollTop = scroller.scrollHeight;
  renderRooms();
  renderMembers();
  requestMembers(room);
  renderTyping();
  renderTray();
  updateTicks(room);
  updateOlder();
  // A room we have never paged in: its latest page now.
  if (room !== 'lobby' && !log.querySelector(`li[data-room="${CSS.escape(room)}"][data-seq]`)) loadOlder();
}

// Read markers: only for a room actually shown, with the page visible and
// scrolled to the bottom; at most one a second, a second or two after what
// they cover. The random part matters: every page of a room gets each
// message at the same moment, and 1,000 timers of exactly one second would
// reach the server as one burst (measured: chat p99 1.55x, docs/receipts.md).
const MARKER_DELAY = () => 1000 + Math.random() * 1000;

function markRead() {
  if (state.readTimer || document.hidden || !atBottom()) return;
  state.readTimer = setTimeout(() => {
    state.readTimer = null;
    if (document.hidden || !atBottom()) return;
    const frame = session.readRequest(state.room);
    if (frame) {
      send1(frame);
      roomsChanged();
    }
  }, MARKER_DELAY());
}

function roomEvent({ m, history }) {
  const who = m.user ? m.user.name : m.by ? m.by.name : 'someone';
  const by = m.by && m.user && m.by.name !== m.user.name ? ` (by ${m.by.name})` : '';
  const what = {
    created: `${m.by ? m.by.name : 'someone'} created this room`,
    joined: `${who} joined`,
    invited: `${who} was invited${by}`,
    left: `${who} left`,
    removed: `${who} was removed${by}`,
    topic: `Topic: ${m.topic || '(none)'}`,
    archived: 'This room is archived (read-only)',
    renamed: `${m.by ? m.by.name : 'Someone'} renamed # ${m.was} to # ${m.room}`,
    deleted: `${m.by ? m.by.name : 'An admin'} deleted this room`,
    retention: m.keep || m.maxAge
      ? `This room keeps ${[m.keep ? `its last ${m.keep} items` : '', m.maxAge ? `${Math.ceil(m.maxAge / 3600)} h` : ''].filter(Boolean).join(', at most ')}`
      : 'This room keeps what the server keeps',
  }[m.action] || m.action;
  if (m.action === 'renamed' && typeof m.was === 'string') renameRoom(m.was, m.room);
  const li = document.createElement('li');
  li.className = 'room-note';
  li.textContent = what;
  if (m.action === 'created' && state.creating === m.room) {
    state.creating = null;
    setTimeout(() => switchRoom(m.room));
  }
  li.dataset.seq = String(m.seq);
  placeIn(li, m);
  append(li, false);
  if (!history) {
    requestRooms();
    if (m.type === 'member' && m.room === state.room) requestMembers(m.room);
  }
  // We left, or the room is gone: back to the lobby.
  const gone = m.action === 'deleted'
    || ((m.action === 'left' || m.action === 'removed') && m.user && state.account
      && m.user.account === state.account.id);
  if (gone && state.room === m.room) switchRoom('lobby');
}

// Everything on the page that names the room `was` names `now` instead:
// its messages and notes, its member list, and the room shown.
function renameRoom(was, now) {
  for (const li of log.querySelectorAll(`li[data-room="${CSS.escape(was)}"]`)) li.dataset.room = now;
  if (membersOf.has(was)) {
    membersOf.set(now, { ...membersOf.get(was), room: now });
    membersOf.delete(was);
  }
  if (state.room === was) {
    state.room = now;
    renderRoomHead();
  }
  renderRooms();
}

// The shown room's members, beside those online (the lobby's members are
// everyone: its list is the online one). Online is re-derived from the
// presence list, so it follows joins and leaves without asking again.
const membersOf = new Map(); // room -> its last members reply

function showMembers(m) {
  membersOf.set(m.room, m);
  renderMembers();
}

function renderMembers() {
  const m = state.room === 'lobby' ? null : membersOf.get(state.room);
  $('members-h').hidden = !m;
  $('members').hidden = !m;
  if (!m) return;
  const online = new Set([...session.people.values()].map((p) => p.account).filter(Boolean));
  $('members-count').textContent = String(m.count);
  $('members').replaceChildren(...(m.members || []).map((u) => {
    const li = document.createElement('li');
    li.append(avatar(u.name));
    const n = document.createElement('span');
    n.className = 'name';
    const on = u.account ? online.has(u.account) : u.online;
    n.textContent = `${u.name}${u.role === 'owner' ? ' (owner)' : ''}`;
    li.append(n);
    const dot = document.createElement('span');
    dot.className = on ? 'presence on' : 'presence';
    dot.textContent = on ? 'online' : 'away';
    li.append(dot);
    // The room's owner (or staff) may take a member out; the server decides.
    const r = session.rooms.get(state.room) || {};
    const mine = state.account && u.account === state.account.id;
    if (u.account && !mine && r.kind !== 'dm' && (r.role === 'owner' || isStaff())) {
      const rm = document.createElement('button');
      rm.type = 'button';
      rm.className = 'remove-member';
      rm.textContent = 'Remove';
      rm.setAttribute('aria-label', `Remove ${u.name} from this room`);
      rm.addEventListener('click', () => send1(JSON.stringify({ type: 'remove', room: state.room, user: u.name })));
      li.append(rm);
    }
    return li;
  }));
}

function requestMembers(room) {
  if (room !== 'lobby') send1(JSON.stringify({ type: 'members', room }));
}

roomList.addEventListener('keydown', (ev) => {
  if (ev.key !== 'ArrowDown' && ev.key !== 'ArrowUp') return;
  const buttons = [...roomList.querySelectorAll('button')];
  const i = buttons.indexOf(document.activeElement);
  const next = buttons[(i + (ev.key === 'ArrowDown' ? 1 : buttons.length - 1)) % buttons.length];
  if (next) {
    ev.preventDefault();
    next.focus();
  }
});
// Alt+Up / Alt+Down: the previous or next room, from anywhere.
document.addEventListener('keydown', (ev) => {
  if (!ev.altKey || (ev.key !== 'ArrowDown' && ev.key !== 'ArrowUp')) return;
  const names = [...session.rooms.keys()];
  if (names.length < 2) return;
  ev.preventDefault();
  const i = names.indexOf(state.room);
  switchRoom(names[(i + (ev.key === 'ArrowDown' ? 1 : names.length - 1)) % names.length]);
});

$('room-new').addEventListener('click', () => {
  const list = $('room-public');
  list.replaceChildren(...session.publicRooms.map((r) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = `Join # ${r.room}`;
    b.addEventListener('click', () => {
      send1(JSON.stringify({ type: 'join', room: r.room }));
      $('room-dialog').close();
    });
    const t = document.createElement('span');
    t.textContent = ` ${r.topic || ''} (${r.members} member${r.members === 1 ? '' : 's'})`;
    li.append(b, t);
    return li;
  }));
  $('room-dialog').showModal();
  $('room-name').focus();
});
$('room-cancel').addEventListener('click', () => $('room-dialog').close());
$('room-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const room = $('room-name').value.trim();
  if (!room) return;
  state.creating = room;
  send1(JSON.stringify({ type: 'create', room, kind: $('room-kind').value, topic: $('room-topic-input').value }));
  $('room-dialog').close();
  $('room-name').value = '';
  $('room-topic-input').value = '';
});
$('dm-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const user = $('dm-name').value.trim();
  if (!user) return;
  send1(JSON.stringify({ type: 'dm', user }));
  $('room-dialog').close();
  $('dm-name').value = '';
});
$('room-invite').addEventListener('click', () => {
  $('invite-dialog').showModal();
  $('room-invite-name').focus();
});
$('room-invite-cancel').addEventListener('click', () => $('invite-dialog').close());
$('room-invite-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const user = $('room-invite-name').value.trim();
  if (!user) return;
  send1(JSON.stringify({ type: 'invite', room: state.room, user }));
  $('invite-dialog').close();
  $('room-invite-name').value = '';
});
$('room-rename').addEventListener('click', () => {
  $('room-rename-name').value = state.room;
  $('rename-dialog').showModal();
  $('room-rename-name').select();
});
$('room-rename-cancel').addEventListener('click', () => $('rename-dialog').close());
$('room-rename-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = $('room-rename-name').value.trim();
  if (name && name !== state.room) send1(JSON.stringify({ type: 'rename-room', room: state.room, name }));
  $('rename-dialog').close();
});
$('room-leave').addEventListener('click', () => send1(JSON.stringify({ type: 'leave', room: state.room })));
$('room-members').addEventListener('click', () => {
  requestMembers(state.room);
  $('members').focus();
});

function atBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
}

// The log keeps at most WINDOW rows: a flood of 100,000 messages must not
// become 100,000 DOM nodes. Rows above the window go (in chunks, not one
// per message) while the reader is at the bottom; scrolled up, the window
// may grow to four times that before the oldest go, with the view kept
// in place. What went pages back in from the server on scroll.
const WINDOW = 500;

function trim(stick) {
  const rows = log.childElementCount;
  if (rows <= WINDOW + (stick ? 100 : 3 * WINDOW)) return;
  const before = scroller.scrollHeight;
  while (log.childElementCount > WINDOW) {
    const first = log.firstElementChild;
    if (first === state.runTop) state.runTop = null;
    first.remove();
  }
  const oldest = log.querySelector('[data-seq]');
  if (oldest) session.forgetBefore(Number(oldest.dataset.seq));
  if (!stick) scroller.scrollTop -= before - scroller.scrollHeight;
  updateOlder();
}

// Keeps the view at the bottom unless the reader has scrolled up; then a
// "new messages" button counts what arrived below.
function append(li, counts) {
  const stick = atBottom();
  log.append(li);
  trim(stick);
  if (stick) {
    scroller.scrollTop = scroller.scrollHeight;
    if (!li.hidden) markRead();
  } else if (counts) {
    state.unseenBelow++;
    newerBtn.textContent = `${state.unseenBelow} new message${state.unseenBelow > 1 ? 's' : ''} ↓`;
    newerBtn.hidden = false;
  }
}

// Older history loads when the reader scrolls *up* to the top. The page's
// own scrolling to the bottom (new messages) moves down and never counts:
// while the first messages fill a short log, its scroll events can land
// near the top.
let lastScrollTop = 0;
scroller.addEventListener('scroll', () => {
  if (atBottom()) {
    state.unseenBelow = 0;
    newerBtn.hidden = true;
    markRead();
  }
  const up = scroller.scrollTop < lastScrollTop;
  lastScrollTop = scroller.scrollTop;
  if (up && scroller.scrollTop < 40) loadOlder(); // reached the top: older history
});
newerBtn.addEventListener('click', () => {
  scroller.scrollTop = scroller.scrollHeight;
  text.focus();
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) {
    state.unreadHidden = 0;
    state.attention = 0;
    showBadge();
    markRead();
  }
});

function renderUsers() {
  countEl.textContent = String(session.online);
  const items = [...session.users].sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => {
    const li = document.createElement('li');
    li.append(avatar(name));
    const n = document.createElement('span');
    n.className = 'name';
    n.textContent = session.me && id === session.me.id ? `${name} (you)` : name;
    li.append(n);
    // A direct message to another account, for a signed-in person.
    const who = session.people.get(id);
    if (state.account && who && who.account && who.account !== state.account.id) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'dm-btn';
      b.textContent = 'DM';
      b.setAttribute('aria-label', `Direct message ${name}`);
      b.addEventListener('click', () => send1(JSON.stringify({ type: 'dm', user: name })));
      li.append(b);
    }
    return li;
  });
  usersEl.replaceChildren(...items);
}

function showMe() {
  const name = session.me ? session.me.name
    : state.account ? state.account.name : localStorage.getItem(NAME_KEY) || '';
  meBtn.querySelector('.me-name').textContent = name;
  const a = meBtn.querySelector('.avatar');
  a.textContent = initials(name);
  a.style.setProperty('--hue', String(avatarColor(name)));
  meBtn.setAttribute('aria-label', `Your name: ${name}. Change it`);
}

// ---- sending -------------------------------------------------------------

function overLimit() {
  return utf8Length(text.value) > session.maxText;
}

function updateCounter() {
  const n = utf8Length(text.value);
  counter.textContent = `${n} / ${session.maxText}`;
  const over = n > session.maxText;
  counter.classList.toggle('over', over);
  text.setAttribute('aria-invalid', over ? 'true' : 'false');
  sendBtn.disabled = over || uploading() || !state.socket || state.socket.readyState !== WebSocket.OPEN;
  sendBtn.textContent = uploading() ? 'Uploading…' : 'Send';
}

const sentFiles = new WeakMap(); // <li> of our own message -> the files it carries (a retry)

function send(body, existing, files) {
  const li = existing || messageItem(session.me ? session.me.name : 'me', body, Date.now(), true,
    null, files);
  if (files) sentFiles.set(li, files);
  if (!existing) {
    li.dataset.room = state.room;
    append(li, false);
  }
  scroller.scrollTop = scroller.scrollHeight;
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
    markFailed(li, null, body, 'not connected');
    return;
  }
  setMessageState(li, 'sending', 'Sending…');
  const { msgId, frame } = session.send(body, Date.now(), li.dataset.room || 'lobby',
    files && files.map((f) => f.id));
  state.own.set(msgId, li);
  state.socket.send(frame);
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const body = text.value;
  if (uploading()) return;
  const files = roomTray().filter((a) => a.state === 'ready').map((a) => a.desc);
  if ((!body.trim() && !files.length) || overLimit()) return;
  state.typingRoom = null; // the message ends our typing there (the server knows)
  send(body, null, files.length ? files : null);
  text.value = '';
  state.tray = state.tray.filter((a) => a.room !== state.room);
  renderTray();
  updateCounter();
});

// ---- attaching files (docs/files.md) -------------------------------------

const tray = $('tray');
const fileInput = $('file-input');
const openLightbox = lightbox($('lightbox'));
const MAX_FILES = 10; // files one message carries (the server's limit)

// The tray is per room (an upload belongs to the room it went to): the
// room shown has its own.
function roomTray() {
  return state.tray.filter((a) => a.room === state.room);
}

function uploading() {
  return roomTray().some((a) => a.state === 'uploading');
}

function attach(files) {
  for (const file of files) {
    if (roomTray().length >= MAX_FILES) {
      notice(`A message carries at most ${MAX_FILES} files: ${file.name || 'a file'} was left out.`, 'notice error');
      break;
    }
    const a = new Attachment(file, state.room, { onchange: renderTray });
    state.tray.push(a);
  }
  renderTray();
}

function trayItem(a) {
  const li = document.createElement('li');
  li.className = `tray-item ${a.state}`;
  const name = document.createElement('span');
  name.className = 'file-name';
  name.dir = 'auto';
  name.textContent = a.name;
  const meta = document.createElement('span');
  meta.className = 'file-meta';
  meta.textContent = a.state === 'failed' ? a.error
    : a.state === 'cancelled' ? 'cancelled'
      : `${humanSize(a.file.size)}${a.state === 'ready' ? ' · ready' : ''}`;
  if (a.state === 'failed') meta.setAttribute('role', 'alert');
  const bar = document.createElement('progress');
  bar.max = Math.max(1, a.total);
  bar.value = a.state === 'ready' ? bar.max : a.sent;
  bar.setAttribute('aria-label', `Uploading ${a.name}`);
  bar.hidden = a.state !== 'uploading';
  li.append(name, meta, bar);
  if (a.stripped) {
    const gps = document.createElement('span');
    gps.className = 'gps-note';
    gps.textContent = 'Location data removed from this photo';
    li.append(gps);
  }
  const x = document.createElement('button');
  x.type = 'button';
  x.className = 'remove';
  x.textContent = a.state === 'uploading' ? 'Cancel' : 'Remove';
  x.setAttribute('aria-label', `${x.textContent} ${a.name}`);
  x.addEventListener('click', () => {
    a.cancel();
    state.tray = state.tray.filter((t) => t !== a);
    renderTray();
    text.focus();
  });
  li.append(x);
  return li;
}

function renderTray() {
  state.tray = state.tray.filter((a) => a.state !== 'cancelled');
  const here = roomTray();
  tray.replaceChildren(...here.map(trayItem));
  tray.hidden = here.length === 0;
  updateCounter();
}

$('attach').addEventListener('click', () => fileInput.click());
fileInput.addEventListener('change', () => {
  attach([...fileInput.files]);
  fileInput.value = '';
});
text.addEventListener('paste', (ev) => {
  const files = ev.clipboardData ? [...ev.clipboardData.files] : [];
  if (!files.length) return;
  ev.preventDefault();
  attach(files);
});
for (const zone of [scroller, form]) {
  zone.addEventListener('dragover', (ev) => {
    if (!ev.dataTransfer || ![...ev.dataTransfer.types].includes('Files')) return;
    ev.preventDefault();
    document.body.classList.add('dropping');
  });
  zone.addEventListener('dragleave', () => document.body.classList.remove('dropping'));
  zone.addEventListener('drop', (ev) => {
    document.body.classList.remove('dropping');
    if (!ev.dataTransfer || !ev.dataTransfer.files.length) return;
    ev.preventDefault();
    attach([...ev.dataTransfer.files]);
  });
}

text.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    form.requestSubmit();
  }
});
text.addEventListener('input', () => {
  updateCounter();
  typingChanged();
});
text.addEventListener('blur', stopTyping);

// ---- name ----------------------------------------------------------------

function askName() {
  $('name-error').hidden = true;
  nameInput.value = (state.account && state.account.name) || (session.me && session.me.name)
    || localStorage.getItem(NAME_KEY) || '';
  nameDialog.showModal();
  nameInput.select();
}

nameForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const name = nameInput.value.trim();
  if (!name) return;
  const err = $('name-error');
  err.hidden = true;
  if (state.account) {
    // The account's name: stored, and everyone online is told.
    const r = await api('/api/rename', { name });
    if (!r.ok) {
      err.textContent = r.data.message || `Not renamed (HTTP ${r.status}).`;
      err.hidden = false;
      return;
    }
    state.account = r.data.user;
    nameDialog.close();
    showAccount();
    text.focus();
    return;
  }
  localStorage.setItem(NAME_KEY, name);
  nameDialog.close();
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify({ type: 'hello', name }));
  }
  showMe();
  text.focus();
});
meBtn.addEventListener('click', askName);

// ---- account (docs/accounts.md) --------------------------------------------

function showAccount() {
  const a = state.account;
  accountEl.hidden = !a;
  accountEl.textContent = a ? `Signed in as ${a.name} (${a.role})` : '';
  signinBtn.hidden = Boolean(a);
  signoutBtn.hidden = !a;
  $('moderate').hidden = !isStaff();
  for (const li of log.querySelectorAll('li[data-seq]')) {
    li.querySelector('.actions')?.remove();
    addActions(li);
  }
  // A signed-in person's name is the account's: renaming it renames the
  // account (POST /api/rename), not this connection (hello).
  showMe();
}

async function refreshAccount() {
  try {
    const r = await fetch('/api/me', { credentials: 'same-origin', cache: 'no-store' });
    if (r.ok) {
      const me = await r.json();
      state.account = me.user;
      state.auth = me.auth || 'open';
      state.registration = me.registration || 'closed';
    }
  } catch {
    // Unreachable (a restart): what we knew stands.
  }
  showAccount();
}

const needsSignin = () => !state.account && state.auth === 'members';

// A chat for members only, and nobody signed in: no connection, the
// sign-in dialog instead.
function askSignin() {
  state.wanted = false;
  clearTimeout(state.retryTimer);
  clearInterval(state.countdown);
  setStatus('Sign in to chat', 'disconnected');
  connectBtn.disabled = true;
  openSignin();
}

function openSignin() {
  signinError.hidden = true;
  registerLink.hidden = state.registration !== 'open';
  if (!signinDialog.open) signinDialog.showModal();
  $('signin-name').focus();
}

// Signing in or out changes who this page is: a new connection, whose
// handshake carries (or no longer carries) the session cookie.
function reconnectAs() {
  const s = state.socket;
  state.socket = null;
  if (s) {
    s.onclose = null;
    s.close(1000, 'account changed');
    for (const ev of session.dropped('not confirmed: you signed in or out')) render(ev);
  }
  connect();
}

async function api(path, body) {
  // 503 with Retry-After: every password-hash slot was busy (a burst of
  // sign-ins); the server says when to come back, up to 10 times.
  let r;
  for (let attempt = 0; ; attempt++) {
    r = await fetch(path, {
      method: 'POST', credentials: 'same-origin', cache: 'no-store',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    const wait = Number(r.headers.get('Retry-After'));
    if (r.status !== 503 || !(wait > 0) || attempt >= 10) break;
    await new Promise((ok) => setTimeout(ok, wait * 1000 * (0.5 + Math.random())));
  }
  let data = {};
  try { data = await r.json(); } catch { /* an empty or broken body */ }
  return { ok: r.ok, status: r.status, data, retry: r.headers.get('Retry-After') };
}

signinBtn.addEventListener('click', openSignin);
$('signin-cancel').addEventListener('click', () => signinDialog.close());
signinForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const password = $('signin-password');
  const r = await api('/api/login', { name: $('signin-name').value.trim(), password: password.value });
  password.value = '';
  if (!r.ok) {
    signinError.textContent = r.status === 429
      ? `Too many failed attempts: try again in ${r.retry || 'a few'} s.`
      : (r.data.message || `Sign-in failed (HTTP ${r.status}).`);
    signinError.hidden = false;
    return;
  }
  state.account = r.data.user;
  state.wanted = true;
  signinDialog.close();
  showAccount();
  reconnectAs();
  text.focus();
});
signoutBtn.addEventListener('click', async () => {
  // Our connection goes first: signing out closes the session's sockets
  // (4002), and that close is ours, not news from the server.
  const s = state.socket;
  state.socket = null;
  if (s) {
    s.onclose = null;
    s.close(1000, 'signed out');
    for (const ev of session.dropped('not confirmed: you signed out')) render(ev);
  }
  await api('/api/logout', {});
  state.account = null;
  showAccount();
  if (needsSignin()) askSignin();
  else connect();
});

// ---- your account: sessions and password; moderation ----------------------

async function getJSON(path) {
  try {
    const r = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
    return r.ok ? await r.json() : null;
  } catch {
    return null;
  }
}

const when = (ms) => new Date(ms).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });

async function showSessions() {
  const data = await getJSON('/api/sessions');
  const items = (data ? data.sessions : []).map((x) => {
    const li = document.createElement('li');
    li.textContent = `${x.addr || 'unknown address'}, last used ${when(x.lastUsed)}${x.current ? ' (this one)' : ''} `;
    if (!x.current) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Sign out';
      b.addEventListener('click', async () => {
        await api('/api/sessions/revoke', { id: x.id });
        showSessions();
      });
      li.append(b);
    }
    return li;
  });
  $('sessions').replaceChildren(...items);
}

async function showTokens() {
  const data = await getJSON('/api/tokens');
  $('tokens').replaceChildren(...(data ? data.tokens : []).map((t) => {
    const li = document.createElement('li');
    li.textContent = `${t.name}, made ${when(t.created)}${t.lastUsed ? `, last used ${when(t.lastUsed)}` : ''} `;
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'Revoke';
    b.addEventListener('click', async () => {
      await api('/api/tokens/revoke', { id: t.id });
      showTokens();
    });
    li.append(b);
    return li;
  }));
}

$('token-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const r = await api('/api/tokens', { name: $('token-name').value.trim() });
  const out = $('token-result');
  if (r.ok) {
    const code = document.createElement('code');
    code.textContent = r.data.token;
    out.replaceChildren('Copy it now, it is not shown again: ', code);
    $('token-name').value = '';
  } else {
    out.textContent = r.data.message || `Not made (HTTP ${r.status}).`;
  }
  showTokens();
});

accountEl.addEventListener('click', () => {
  $('password-result').textContent = '';
  $('token-result').textContent = '';
  $('account-dialog').showModal();
  showSessions();
  showTokens();
});
$('account-close').addEventListener('click', () => $('account-dialog').close());
$('password-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const cur = $('password-current');
  const nw = $('password-new');
  const r = await api('/api/password', { current: cur.value, password: nw.value });
  cur.value = '';
  nw.value = '';
  $('password-result').textContent = r.ok ? 'Password changed; your other sessions are signed out.'
    : (r.data.message || `Not changed (HTTP ${r.status}).`);
  showSessions();
});

async function showModeration() {
  const [users, audit] = await Promise.all([getJSON('/api/users'), getJSON('/api/audit')]);
  $('mod-users').replaceChildren(...(users ? users.users : []).map((u) => {
    const li = document.createElement('li');
    const flags = [u.role, u.banned ? 'banned' : '', u.mutedUntil ? `muted until ${when(u.mutedUntil)}` : '']
      .filter(Boolean).join(', ');
    li.textContent = `${u.name} — ${flags}`;
    return li;
  }));
  $('mod-audit').replaceChildren(...(audit ? audit.audit : []).map((a) => {
    const li = document.createElement('li');
    li.textContent = `${when(a.at)}: ${a.by} ${a.action} ${a.target}${a.detail ? ` (${a.detail})` : ''}`;
    return li;
  }));
}

$('moderate').addEventListener('click', () => {
  $('mod-result').textContent = '';
  $('mod-dialog').showModal();
  $('mod-user').focus();
  showModeration();
});
$('mod-close').addEventListener('click', () => $('mod-dialog').close());
$('invite-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const r = await api('/api/invites', {
    role: $('invite-role').value, uses: Number($('invite-uses').value), hours: Number($('invite-hours').value),
  });
  const out = $('invite-result');
  if (r.ok) {
    const code = document.createElement('code');
    code.textContent = new URL(r.data.link, location.href).href;
    out.replaceChildren(`Send this link (${r.data.uses} use${r.data.uses > 1 ? 's' : ''}, ${r.data.hours} h): `, code);
  } else {
    out.textContent = r.data.message || `Not made (HTTP ${r.status}).`;
  }
});
$('mod-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const action = $('mod-action').value;
  const body = { action, user: $('mod-user').value.trim(), reason: $('mod-reason').value };
  if (action === 'mute') body.minutes = Number($('mod-minutes').value);
  if (action === 'role') body.role = $('mod-role').value;
  const r = await api('/api/moderate', body);
  $('mod-result').textContent = r.ok ? `Done: ${action} ${r.data.user}.`
    : (r.data.message || `Refused (HTTP ${r.status}).`);
  showModeration();
});

updateCounter();
refreshAccount().then(() => {
  if (needsSignin()) {
    askSignin();
    return;
  }
  connect();
  if (!state.account && !localStorage.getItem(NAME_KEY)) askName();
  else text.focus();
});
