// The page's protocol and recovery state, with no DOM and no socket: frames
// from the server go in (receive), what the view must do comes out as a
// list of events. The page (app.js) renders the events and owns the socket;
// tests/browser/session.test.js drives this module with frames under node.
// The protocol is docs/protocol.md; recovery (since/server, resume, reset)
// is docs/durability.md.
//
// Events, each {kind, ...}:
//   me                       our identity or name changed (session.me)
//   users                    the online list changed (session.users, .online)
//   message  {m, history, replayed, mine}   show a message (new, from the
//            join history, or replayed after a reconnect)
//   confirmed {msgId, seq}   a message of ours whose ack was lost is in the
//                            replay: mark it sent (not shown twice)
//   acked    {msgId, seq}    our message was stored and relayed
//   unsaved  {msgId, message}   relayed but not stored
//   failed   {msgId, text, why} refused, or its connection dropped
//   notice   {text, cls}     a line for the log ('notice' or 'error')
//   missed   {n}             n messages arrived while we were away
//   reset    {renumbered}    since could not be honoured; with renumbered,
//                            old and new seq numbers do not compare
//   older    {items: [{m, mine}], more}   a page of older history
//   olderState               the "load older" state changed
//   edited   {seq, text, edited}  message seq has new text (an edit event)
//   deleted  {seq, by}       message seq was deleted (a delete event, or its
//                            tombstone in a history, resume or page)
//   moderation {m}           a moderator acted on us (mute, role, kick, ban)
//   rooms                    the room list or an unread count changed
//                            (session.rooms)
//   roomEvent {m, history}   a room or member event (created, invited,
//                            joined, left, topic, archived, renamed) to show
//   dm       {room}          the DM asked for is open: switch to it
//   members  {m}             a room's member list arrived
//
// Rooms (docs/rooms.md): every message names its room ("lobby" when it
// does not); session.rooms holds what the server's room list said, kept
// up to date by the messages that arrive (rseq) and the read markers
// (lastRead), so unread = rseq - lastRead without asking again.

export const RESET_REASONS = {
  'too-far': 'You were away for too long to catch up on everything; showing the latest messages.',
  unavailable: 'Some messages could not be recovered; showing the latest messages.',
  ahead: 'The server’s history was restored from an older state; showing its latest messages.',
  'other-history': 'The server’s history has changed; showing its latest messages.',
};

export class Session {
  constructor() {
    this.server = '';         // the history id: names the seq numbering
    this.seen = new Set();    // "server:seq" of every message shown
    this.lastSeq = null;      // every message up to this seq has reached us
    this.oldestSeq = null;    // the oldest shown of this numbering (page back from it)
    this.more = null;         // older messages exist: true, false, null (not asked)
    this.loadingOlder = false;
    this.replaying = 0;       // missed messages still to come after "resume"
    this.loadingHistory = 0;  // join-history messages still to come after "presence"
    this.myIds = new Set();   // our public ids, old connections' included
    this.me = null;           // {id, name}
    this.maxText = 4096;
    this.users = new Map();   // id -> name
    this.people = new Map();  // id -> {account, role} of those online
    this.rooms = new Map();   // room name -> {room, kind, topic, rseq, lastRead, with, ...}
    this.publicRooms = [];    // public rooms we could join (from the room list)
    this.pages = new Map();   // room name -> {oldestRseq, more, loading}: rooms but the lobby
    // Receipts (docs/receipts.md): room -> Map(account -> {name, delivered, read}),
    // for DMs and small rooms, whose positions the server streams.
    this.positions = new Map();
    this.typing = new Map();  // room -> names typing there (ours included; the page filters)
    this.readReceipts = null; // our own setting, once the server said it
    this.received = new Map(); // room -> highest rseq received, not yet confirmed
    this.online = 0;
    this.pending = new Map(); // msgId -> text, sent on this connection, not acked
    this.unconfirmed = [];    // {msgId, text}: their connection dropped before the ack
    this.nextId = 1;
  }

  // The WebSocket URL: back after a drop, ask for exactly what we missed.
  url(href, name) {
    const url = new URL('/ws', href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    if (name) url.searchParams.set('name', name);
    if (this.server && this.lastSeq !== null) {
      url.searchParams.set('since', String(this.lastSeq));
      url.searchParams.set('server', this.server);
    }
    return url.toString();
  }

  // A chat message to send: its msgId (pending until acked) and the frame.
  // A message for the lobby names no room, as every older client does.
  send(text, now, room = 'lobby', files = null) {
    const msgId = `m${this.nextId++}`;
    this.pending.set(msgId, text);
    const m = { type: 'message', msgId, text, clientKey: '', date: now };
    if (room !== 'lobby') m.room = room;
    if (files && files.length) m.files = files; // ids of our uploads (docs/files.md)
    return { msgId, frame: JSON.stringify(m) };
  }

  // Unread messages of a room (0 for rooms we know nothing of).
  unread(room) {
    const r = this.rooms.get(room);
    return r && Number.isInteger(r.lastRead) ? Math.max(0, r.rseq - r.lastRead) : 0;
  }

  // The read marker for `room` if there is news to mark, else null; the
  // position moves here at once (the server never moves it back).
  readRequest(room) {
    const r = this.rooms.get(room);
    if (!r || !Number.isInteger(r.lastRead) || r.rseq <= r.lastRead) return null;
    r.lastRead = r.rseq;
    return JSON.stringify({ type: 'read', room, rseq: r.rseq });
  }

  // Older pages of a room other than the lobby (the lobby pages by seq,
  // as before rooms: olderRequest()).
  roomOlderPossible(room) {
    const p = this.pages.get(room);
    return Boolean(p && p.more !== false && p.oldestRseq > 1);
  }

  roomOlderRequest(room) {
    const p = this.pages.get(room);
    if (!p || p.loading || !this.roomOlderPossible(room)) return null;
    p.loading = true;
    return JSON.stringify({
      type: 'history', room, before: p.oldestRseq, limit: 50, msgId: `h${this.nextId++}`,
    });
  }

  #notePage(room, rseq) {
    if (room === 'lobby' || !Number.isInteger(rseq)) return;
    const p = this.pages.get(room) || { oldestRseq: rseq, more: null, loading: false };
    if (rseq < p.oldestRseq) p.oldestRseq = rseq;
    this.pages.set(room, p);
  }

  // A message or event of `room` at `rseq` arrived: the room's position
  // moves, and our own words count as read. True if a known room changed.
  #noteRoom(m, mine) {
    const name = m.room || 'lobby';
    const r = this.rooms.get(name);
    this.#notePage(name, m.rseq);
    if (!r || !Number.isInteger(m.rseq) || m.rseq <= r.rseq) return false;
    r.rseq = m.rseq;
    if (mine && Number.isInteger(r.lastRead)) r.lastRead = m.rseq;
    if (m.type === 'message') r.last = m;
    return true;
  }

  // The person retries a message that failed: it is no longer waiting for
  // a replay to confirm it.
  retry(msgId) {
    this.unconfirmed = this.unconfirmed.filter((u) => u.msgId !== msgId);
  }

  // The connection dropped: what was pending is not confirmed (a replay
  // after the reconnect may still confirm it).
  dropped(why) {
    const out = [];
    for (const [msgId, text] of this.pending) {
      out.push({ kind: 'failed', msgId, text, why });
      this.unconfirmed.push({ msgId, text });
    }
    this.pending.clear();
    this.loadingOlder = false;
    out.push({ kind: 'olderState' });
    return out;
  }

  // Whether older history can be asked for, and whether its beginning is
  // shown.
  olderPossible() {
    return this.more !== false && this.oldestSeq !== null && this.oldestSeq > 1;
  }

  atBeginning() {
    return this.more === false || this.oldestSeq === 1;
  }

  // The page keeps a bounded window of messages: it dropped every message
  // older than `seq` from view. Older pages start from there again, and
  // the dropped messages are no longer "seen", so they show when paged
  // back in.
  forgetBefore(seq) {
    if (!Number.isInteger(seq) || (this.oldestSeq !== null && seq <= this.oldestSeq)) return;
    for (const k of this.seen) {
      if (Number(k.slice(k.lastIndexOf(':') + 1)) < seq) this.seen.delete(k);
    }
    this.oldestSeq = seq;
    if (seq > 1) this.more = true;
  }

  // The frame that asks for the page before the oldest shown, or null.
  olderRequest() {
    if (this.loadingOlder || !this.olderPossible()) return null;
    this.loadingOlder = true;
    return JSON.stringify({
      type: 'history', before: this.oldestSeq, limit: 50, msgId: `h${this.nextId++}`,
    });
  }

  receive(m) {
    const out = [];
    switch (m.type) {
      case 'id':
        this.server = m.server || '';
        this.me = m.you || null;
        if (m.you) this.myIds.add(m.you.id);
        if (Number.isInteger(m.maxText)) this.maxText = m.maxText;
        out.push({ kind: 'me' });
        break;
      case 'presence':
        this.users = new Map((m.users || []).map((u) => [u.id, u.name]));
        this.people = new Map((m.users || []).map((u) => [u.id, { account: u.account, role: u.role }]));
        this.online = m.online;
        this.loadingHistory = m.history || 0;
        if (this.lastSeq === null && Number.isInteger(m.lastSeq)) this.lastSeq = m.lastSeq;
        out.push({ kind: 'users' });
        break;
      case 'message':
        this.#message(m, out);
        break;
      case 'deleted': // a tombstone: a deleted message's place in the stream
      case 'edit':
      case 'delete':
        this.#change(m, out);
        break;
      case 'moderation':
        out.push({ kind: 'moderation', m });
        break;
      case 'resume':
        this.replaying = m.history || 0;
        this.loadingHistory = 0;
        if (this.replaying > 0) out.push({ kind: 'missed', n: this.replaying });
        break;
      case 'reset':
        this.#reset(m, out);
        break;
      case 'history':
        this.#older(m, out);
        break;
      case 'join':
      case 'leave':
        this.#presenceChange(m, out);
        break;
      case 'rename':
        if (this.users.has(m.user.id)) this.users.set(m.user.id, m.user.name);
        if (this.me && m.user.id === this.me.id) {
          this.me = m.user;
          out.push({ kind: 'me' });
        }
        out.push({ kind: 'users' }, { kind: 'notice', text: `${m.oldName} is now ${m.user.name}`, cls: 'notice' });
        break;
      case 'ack':
        this.#ack(m, out);
        break;
      case 'rooms':
        this.#roomList(m, out);
        break;
      case 'room':
      case 'member':
        this.#roomEvent(m, out);
        break;
      case 'read': {
        const r = this.rooms.get(m.room);
        if (r && Number.isInteger(m.rseq) && m.rseq > (r.lastRead || 0)) r.lastRead = m.rseq;
        out.push({ kind: 'rooms' });
        break;
      }
      case 'dm':
        out.push({ kind: 'dm', room: m.room });
        break;
      case 'members':
        // A streamed room's member list carries everyone's positions.
        if ((m.members || []).some((u) => Number.isInteger(u.delivered))) {
          this.#positions(m.room, m.members, true);
        }
        out.push({ kind: 'members', m });
        break;
      case 'receipts':
        this.#positions(m.room, m.positions || [], false);
        out.push({ kind: 'receipts', room: m.room });
        break;
      case 'seen':
        out.push({ kind: 'seen', m });
        break;
      case 'typing':
        this.typing.set(m.room, Array.isArray(m.users) ? m.users.filter((u) => typeof u === 'string') : []);
        out.push({ kind: 'typing', room: m.room });
        break;
      case 'settings':
        this.readReceipts = m.readReceipts !== false;
        out.push({ kind: 'settings' });
        break;
      case 'error':
        this.#error(m, out);
        break;
      default:
        break;
    }
    return out;
  }

  #noteSeq(seq, out) {
    if (!Number.isInteger(seq)) return;
    if (this.lastSeq === null || seq > this.lastSeq) this.lastSeq = seq;
    if (this.oldestSeq === null || seq < this.oldestSeq) {
      this.oldestSeq = seq;
      out.push({ kind: 'olderState' });
    }
  }

  #mine(m) {
    return Boolean(m.from && this.myIds.has(m.from.id));
  }

  #roomList(m, out) {
    const next = new Map();
    for (const r of m.rooms || []) {
      const old = this.rooms.get(r.room);
      // A message that arrived after the list was made is newer than it.
      if (old && old.rseq > r.rseq) r.rseq = old.rseq;
      if (old && Number.isInteger(old.lastRead) && old.lastRead > (r.lastRead || 0)) r.lastRead = old.lastRead;
      next.set(r.room, r);
      if (r.room !== 'lobby' && !this.pages.has(r.room) && r.rseq > 0) {
        this.pages.set(r.room, { oldestRseq: r.rseq + 1, more: null, loading: false });
      }
    }
    this.rooms = next;
    this.publicRooms = m.public || [];
    out.push({ kind: 'rooms' });
  }

  // Room and member events have seqs of their own: they count in a join
  // history and a replay like messages.
  #roomEvent(m, out) {
    const replayed = this.replaying > 0;
    if (replayed) this.replaying--;
    const history = !replayed && this.loadingHistory > 0;
    if (history) this.loadingHistory--;
    this.#noteSeq(m.seq, out);
    const key = `${this.server}:${m.seq}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (m.action === 'renamed') this.#renamed(m.was, m.room);
    this.#noteRoom(m, false);
    out.push({ kind: 'roomEvent', m, history: history || replayed });
  }

  // A room was renamed: what we know of it moves to its new name. (In a
  // replay its messages already carry the new name -- the server rewrote
  // them -- so an entry may exist under both: the newer positions win.)
  #renamed(was, now) {
    if (typeof was !== 'string' || typeof now !== 'string' || was === now) return;
    const old = this.rooms.get(was);
    if (old) {
      const cur = this.rooms.get(now);
      const r = { ...old, ...(cur || {}), room: now };
      r.rseq = Math.max(old.rseq || 0, (cur && cur.rseq) || 0);
      if (Number.isInteger(old.lastRead) || (cur && Number.isInteger(cur.lastRead))) {
        r.lastRead = Math.max(old.lastRead || 0, (cur && cur.lastRead) || 0);
      }
      this.rooms.delete(was);
      this.rooms.set(now, r);
    }
    const p = this.pages.get(was);
    if (p) {
      const q = this.pages.get(now);
      if (!q || p.oldestRseq < q.oldestRseq) this.pages.set(now, p);
      this.pages.delete(was);
    }
    for (const map of [this.positions, this.typing]) {
      if (map.has(was) && !map.has(now)) map.set(now, map.get(was));
      map.delete(was);
    }
  }

  #message(m, out) {
    const key = `${this.server}:${m.seq}`;
    const replayed = this.replaying > 0;
    if (replayed) this.replaying--;
    const history = !replayed && this.loadingHistory > 0;
    if (history) this.loadingHistory--;
    this.#noteSeq(m.seq, out);
    if (this.seen.has(key)) return; // history we already show, after a reconnect
    this.seen.add(key);
    if (this.#noteRoom(m, this.#mine(m))) out.push({ kind: 'rooms' });
    // A message of ours from a connection that dropped before its ack:
    // the replay shows the server got it.
    if (replayed && m.from && this.myIds.has(m.from.id) && !(this.me && m.from.id === this.me.id)) {
      const i = this.unconfirmed.findIndex((u) => u.text === m.text);
      if (i >= 0) {
        const [u] = this.unconfirmed.splice(i, 1);
        out.push({ kind: 'confirmed', msgId: u.msgId, seq: m.seq });
        return;
      }
    }
    out.push({ kind: 'message', m, history, replayed, mine: this.#mine(m) });
  }

  // Edits and deletions have seqs of their own (docs/protocol.md): they
  // count in a join history and a replay like messages, and move lastSeq,
  // so a resume does not ask for them again.
  #change(m, out) {
    if (this.replaying > 0) this.replaying--;
    else if (this.loadingHistory > 0) this.loadingHistory--;
    this.#noteSeq(m.seq, out);
    const key = `${this.server}:${m.seq}`;
    if (m.type === 'deleted') {
      // A message we show (or never saw) is gone: its row says so.
      const shown = this.seen.has(key);
      this.seen.add(key);
      out.push({ kind: 'deleted', seq: m.seq, shown, date: m.serverDate, room: m.room || 'lobby' });
      return;
    }
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (m.type === 'edit') out.push({ kind: 'edited', seq: m.target, text: m.text, edited: m.edited });
    else out.push({ kind: 'deleted', seq: m.target, by: m.by, shown: true });
  }

  #reset(m, out) {
    const renumbered = m.reason === 'ahead' || m.reason === 'other-history';
    out.push({ kind: 'notice', text: RESET_REASONS[m.reason] || 'Showing the latest messages.', cls: 'notice' });
    if (renumbered) {
      this.seen = new Set(); // seq numbers of before do not compare with the new ones
      this.oldestSeq = null;
      this.more = null;
    }
    this.lastSeq = Number.isInteger(m.lastSeq) ? m.lastSeq : null;
    this.replaying = 0;
    this.loadingHistory = m.history || 0;
    out.push({ kind: 'reset', renumbered }, { kind: 'olderState' });
  }

  #older(m, out) {
    if (m.room && m.room !== 'lobby') {
      this.#roomOlder(m, out);
      return;
    }
    this.loadingOlder = false;
    const items = [];
    for (const x of m.messages || []) {
      const key = `${this.server}:${x.seq}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      // A page shows messages as they are now (edited, or a tombstone);
      // the edit and delete events in it have nothing more to show.
      if (x.type === 'message' || x.type === 'deleted') items.push({ m: x, mine: this.#mine(x) });
    }
    if (m.messages && m.messages.length) {
      const first = m.messages[0].seq;
      this.oldestSeq = this.oldestSeq === null ? first : Math.min(this.oldestSeq, first);
    }
    this.more = Boolean(m.more);
    out.push({ kind: 'older', items, more: this.more }, { kind: 'olderState' });
  }

  // A page of a room other than the lobby (its "before" is an rseq).
  #roomOlder(m, out) {
    const p = this.pages.get(m.room) || { oldestRseq: m.before, more: null, loading: false };
    p.loading = false;
    const items = [];
    for (const x of m.messages || []) {
      const key = `${this.server}:${x.seq}`;
      if (Number.isInteger(x.rseq) && x.rseq < p.oldestRseq) p.oldestRseq = x.rseq;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      if (x.type === 'message' || x.type === 'deleted') items.push({ m: x, mine: this.#mine(x) });
    }
    p.more = Boolean(m.more);
    this.pages.set(m.room, p);
    out.push({ kind: 'older', room: m.room, items, more: p.more }, { kind: 'olderState' });
  }

  #presenceChange(m, out) {
    const list = m.users || (m.user ? [m.user] : []);
    for (const u of list) {
      if (m.type === 'join') {
        this.users.set(u.id, u.name);
        this.people.set(u.id, { account: u.account, role: u.role });
      } else {
        this.users.delete(u.id);
        this.people.delete(u.id);
      }
    }
    this.online = m.online;
    out.push({ kind: 'users' });
    const others = list.filter((u) => !this.me || u.id !== this.me.id);
    if (m.type === 'join' && others.length === 0 && list.length > 0) return; // our own join
    const names = others.map((u) => u.name);
    const who = names.length === 0 ? `${m.count} people`
      : names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`
        : names.join(', ');
    out.push({ kind: 'notice', text: `${who} ${m.type === 'join' ? 'joined' : 'left'}`, cls: 'notice' });
  }

  #ack(m, out) {
    if (m.seq !== undefined) {
      this.seen.add(`${this.server}:${m.seq}`);
      this.#noteSeq(m.seq, out);
    }
    const msgId = String(m.msgId);
    if (!this.pending.has(msgId)) return;
    this.pending.delete(msgId);
    out.push({ kind: 'acked', msgId, seq: m.seq, rseq: m.rseq });
  }

  // Positions only move forward (a frame may repeat what a member list said).
  #positions(room, list, whole) {
    const map = (whole ? null : this.positions.get(room)) || new Map();
    for (const u of list) {
      if (!u || !Number.isInteger(u.account)) continue;
      const old = map.get(u.account) || { name: u.name, delivered: 0, read: null };
      old.name = u.name;
      if (Number.isInteger(u.delivered)) old.delivered = Math.max(old.delivered, u.delivered);
      // No "read": that person shows none (or we show none): unknown, not 0.
      old.read = Number.isInteger(u.read) ? Math.max(old.read || 0, u.read) : null;
      map.set(u.account, old);
    }
    this.positions.set(room, map);
  }

  // Where our own message at rseq stands in room, for its sender: the other
  // members who have it and who have read it. null: the room streams no
  // positions (the lobby, big rooms).
  receipt(room, rseq, myAccount) {
    const map = this.positions.get(room);
    if (!map || !Number.isInteger(rseq)) return null;
    const out = { of: 0, delivered: 0, read: 0, readers: [], hidden: 0 };
    for (const [account, p] of map) {
      if (account === myAccount) continue;
      out.of++;
      if (p.delivered >= rseq || (p.read !== null && p.read >= rseq)) out.delivered++;
      if (p.read === null) out.hidden++;
      else if (p.read >= rseq) {
        out.read++;
        out.readers.push(p.name);
      }
    }
    return out;
  }

  // A message of someone else's in a streamed room reached this page: the
  // "received" to send (at most one a second per room: the page's timer),
  // or null when there is nothing new.
  noteReceived(room, rseq) {
    if (!this.positions.has(room) || !Number.isInteger(rseq)) return;
    if (rseq > (this.received.get(room) || 0)) this.received.set(room, rseq);
  }

  receivedRequests() {
    const out = [...this.received].map(([room, rseq]) => JSON.stringify({ type: 'received', room, rseq }));
    this.received.clear();
    return out;
  }

  #error(m, out) {
    const msgId = m.msgId !== undefined ? String(m.msgId) : null;
    if (msgId !== null && this.pending.has(msgId)) {
      const text = this.pending.get(msgId);
      this.pending.delete(msgId);
      if (m.code === 'not-stored') out.push({ kind: 'unsaved', msgId, message: m.message });
      else out.push({ kind: 'failed', msgId, text, why: m.message });
      return;
    }
    if (typeof m.msgId === 'string' && m.msgId.startsWith('h')) {
      this.loadingOlder = false; // a history request refused: the button works again
      for (const p of this.pages.values()) p.loading = false;
      out.push({ kind: 'olderState' });
    }
    out.push({ kind: 'notice', text: `Server: ${m.message}`, cls: 'error' });
  }
}
