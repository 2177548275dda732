// The page's protocol and recovery state machine (htdocs/session.js), with
// no browser: server frames in, view events out. The page tests drive the
// same module through Chromium; these pin down its rules one by one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

// htdocs/ has no package.json of its own; load the module as what it is.
const src = readFileSync(new URL('../../htdocs/session.js', import.meta.url), 'utf8');
const { Session } = await import(`data:text/javascript,${encodeURIComponent(src)}`);

const kinds = (evs) => evs.map((e) => e.kind);
const msg = (seq, text, from = { id: 'b', name: 'bea' }) => ({ type: 'message', seq, text, from, serverDate: 1 });

function joined(s, { id = 'a', server = 'S1', history = 0, lastSeq = 0 } = {}) {
  s.receive({ type: 'id', you: { id, name: 'ann' }, server, maxText: 100 });
  return s.receive({ type: 'presence', users: [{ id, name: 'ann' }], online: 1, history, lastSeq });
}

test('join history is marked as history, then live messages are not', () => {
  const s = new Session();
  assert.deepEqual(kinds(s.receive({ type: 'id', you: { id: 'a', name: 'ann' }, server: 'S1', maxText: 100 })), ['me']);
  assert.equal(s.maxText, 100);
  joined(s, { history: 2, lastSeq: 2 });
  const h = [...s.receive(msg(1, 'one')), ...s.receive(msg(2, 'two'))].filter((e) => e.kind === 'message');
  assert.deepEqual(h.map((e) => [e.m.seq, e.history]), [[1, true], [2, true]]);
  const live = s.receive(msg(3, 'three')).find((e) => e.kind === 'message');
  assert.equal(live.history, false);
  assert.equal(live.mine, false);
  assert.equal(s.lastSeq, 3);
});

test('the URL asks for what was missed only once a numbering is known', () => {
  const s = new Session();
  assert.equal(new URL(s.url('http://chat.lan:8080/', 'ann')).search, '?name=ann');
  assert.equal(new URL(s.url('https://chat.lan/', null)).protocol, 'wss:');
  joined(s);
  s.receive(msg(41, 'x'));
  const u = new URL(s.url('http://chat.lan:8080/', 'ann'));
  assert.equal(u.protocol, 'ws:');
  assert.equal(u.pathname, '/ws');
  assert.equal(u.searchParams.get('since'), '41');
  assert.equal(u.searchParams.get('server'), 'S1');
});

test('own messages: sent, acked, refused, relayed but not stored', () => {
  const s = new Session();
  joined(s);
  const a = s.send('hello', 5);
  assert.deepEqual(JSON.parse(a.frame), { type: 'message', msgId: a.msgId, text: 'hello', clientKey: '', date: 5 });
  assert.deepEqual(s.receive({ type: 'ack', msgId: a.msgId, seq: 7, rseq: 3 }).filter((e) => e.kind === 'acked'),
    [{ kind: 'acked', msgId: a.msgId, seq: 7, rseq: 3 }]);
  // Its own echo is never shown twice (the ack marked the seq seen).
  assert.deepEqual(kinds(s.receive(msg(7, 'hello', { id: 'a', name: 'ann' }))), []);
  const b = s.send('too long', 6);
  const f = s.receive({ type: 'error', code: 'text-too-long', message: 'too long', msgId: b.msgId });
  assert.deepEqual(f, [{ kind: 'failed', msgId: b.msgId, text: 'too long', why: 'too long' }]);
  const c = s.send('unsaved', 7);
  assert.deepEqual(kinds(s.receive({ type: 'error', code: 'not-stored', message: 'disk', msgId: c.msgId })), ['unsaved']);
  // An error about nothing pending is a notice.
  assert.deepEqual(s.receive({ type: 'error', code: 'bad-json', message: 'no' }),
    [{ kind: 'notice', text: 'Server: no', cls: 'error' }]);
});

test('a drop fails what was pending; the replay after the reconnect confirms it', () => {
  const s = new Session();
  joined(s, { id: 'a' });
  s.receive(msg(10, 'before'));
  const lost = s.send('did it arrive?', 1);
  const dropped = s.dropped('the connection dropped');
  assert.deepEqual(dropped[0], { kind: 'failed', msgId: lost.msgId, text: 'did it arrive?', why: 'the connection dropped' });
  assert.equal(s.pending.size, 0);
  // Reconnected as a new connection (new id), resuming after seq 10.
  s.receive({ type: 'id', you: { id: 'a2', name: 'ann' }, server: 'S1' });
  s.receive({ type: 'presence', users: [], online: 1, history: 0 });
  assert.deepEqual(s.receive({ type: 'resume', since: 10, history: 3, lastSeq: 13 }), [{ kind: 'missed', n: 3 }]);
  const r1 = s.receive(msg(11, 'did it arrive?', { id: 'a', name: 'ann' }));
  assert.deepEqual(r1.filter((e) => e.kind !== 'olderState'), [{ kind: 'confirmed', msgId: lost.msgId, seq: 11 }]);
  const r2 = s.receive(msg(12, 'from bea')).find((e) => e.kind === 'message');
  assert.equal(r2.replayed, true);
  assert.equal(r2.history, false);
  assert.equal(s.receive(msg(13, 'third')).find((e) => e.kind === 'message').replayed, true);
  assert.equal(s.receive(msg(14, 'live')).find((e) => e.kind === 'message').replayed, false);
  // A seq already shown (10, before the drop) is not shown again.
  assert.deepEqual(kinds(s.receive(msg(10, 'before'))), []);
  assert.equal(s.lastSeq, 14);
});

test('a retried message no longer waits for confirmation', () => {
  const s = new Session();
  joined(s);
  const m = s.send('again', 1);
  s.dropped('dropped');
  s.retry(m.msgId);
  s.receive({ type: 'resume', history: 1 });
  const ev = s.receive(msg(2, 'again', { id: 'a', name: 'ann' })).find((e) => e.kind === 'message' || e.kind === 'confirmed');
  assert.equal(ev.kind, 'message'); // shown as the server has it; the retry is its own message
});

test('reset: too far keeps the numbering, another history renumbers', () => {
  const s = new Session();
  joined(s);
  s.receive(msg(5, 'five'));
  const far = s.receive({ type: 'reset', reason: 'too-far', history: 1, lastSeq: 900 });
  assert.deepEqual(kinds(far), ['notice', 'reset', 'olderState']);
  assert.equal(far[1].renumbered, false);
  assert.equal(s.lastSeq, 900);
  assert.deepEqual(kinds(s.receive(msg(5, 'five'))), [], 'same numbering: seq 5 is shown already');
  const other = s.receive({ type: 'reset', reason: 'other-history', history: 0, lastSeq: 3 });
  assert.equal(other.find((e) => e.kind === 'reset').renumbered, true);
  assert.equal(s.oldestSeq, null);
  assert.equal(s.more, null);
  // seq 5 of the new numbering is another message: shown.
  assert.ok(s.receive(msg(5, 'new five')).some((e) => e.kind === 'message'));
});

test('older history: one request at a time, pages prepend, the beginning is known', () => {
  const s = new Session();
  joined(s);
  s.receive(msg(40, 'forty'));
  assert.equal(s.olderPossible(), true);
  const req = JSON.parse(s.olderRequest());
  assert.equal(req.type, 'history');
  assert.equal(req.before, 40);
  assert.equal(req.limit, 50);
  assert.equal(s.olderRequest(), null, 'one request at a time');
  const page = s.receive({ type: 'history', msgId: req.msgId, more: true, messages: [msg(38, 'a'), msg(39, 'b'), msg(40, 'forty')] });
  const older = page.find((e) => e.kind === 'older');
  assert.deepEqual(older.items.map((i) => i.m.seq), [38, 39], 'seq 40 is shown already');
  assert.equal(s.oldestSeq, 38);
  assert.equal(s.atBeginning(), false);
  const req2 = JSON.parse(s.olderRequest());
  assert.equal(req2.before, 38);
  // Refused busy: the request can be made again.
  const busy = s.receive({ type: 'error', code: 'busy', message: 'busy', msgId: req2.msgId });
  assert.deepEqual(kinds(busy), ['olderState', 'notice']);
  assert.equal(s.loadingOlder, false);
  s.olderRequest();
  s.receive({ type: 'history', more: false, messages: [msg(1, 'first')] });
  assert.equal(s.atBeginning(), true);
  assert.equal(s.olderPossible(), false);
  assert.equal(s.olderRequest(), null);
});

test('join and leave notices: others named, our own join silent, big bursts counted', () => {
  const s = new Session();
  joined(s, { id: 'a' });
  assert.deepEqual(kinds(s.receive({ type: 'join', users: [{ id: 'a', name: 'ann' }], online: 1 })), ['users']);
  const j = s.receive({ type: 'join', users: [{ id: 'b', name: 'bea' }], online: 2 });
  assert.equal(j[1].text, 'bea joined');
  assert.equal(s.users.get('b'), 'bea');
  const many = Array.from({ length: 7 }, (_, i) => ({ id: `u${i}`, name: `u${i}` }));
  assert.equal(s.receive({ type: 'join', users: many, online: 9 })[1].text, 'u0, u1, u2, u3, u4 and 2 more joined');
  assert.equal(s.receive({ type: 'leave', count: 40, online: 2 })[1].text, '40 people left');
  assert.equal(s.receive({ type: 'leave', users: [{ id: 'b', name: 'bea' }], online: 1 })[1].text, 'bea left');
  assert.equal(s.users.has('b'), false);
  const r = s.receive({ type: 'rename', user: { id: 'a', name: 'anna' }, oldName: 'ann' });
  assert.deepEqual(kinds(r), ['me', 'users', 'notice']);
  assert.equal(s.me.name, 'anna');
});

test('the bounded window: dropped messages page back in and show again', () => {
  const s = new Session();
  joined(s);
  for (let i = 1; i <= 10; i++) s.receive(msg(i, `m${i}`));
  assert.equal(s.olderPossible(), false); // seq 1 is shown: the beginning
  s.forgetBefore(6); // the page dropped 1..5
  assert.equal(s.oldestSeq, 6);
  assert.equal(s.olderPossible(), true);
  assert.deepEqual(JSON.parse(s.olderRequest()).before, 6);
  const page = s.receive({ type: 'history', before: 6, more: false, messages: [1, 2, 3, 4, 5].map((i) => msg(i, `m${i}`)) });
  const older = page.find((e) => e.kind === 'older');
  assert.deepEqual(older.items.map((x) => x.m.seq), [1, 2, 3, 4, 5]); // not deduplicated away
  assert.equal(s.oldestSeq, 1);
  // Live duplicates of what is still shown stay deduplicated.
  assert.equal(s.receive(msg(8, 'm8')).filter((e) => e.kind === 'message').length, 0);
  s.forgetBefore(1); // nothing older than 1 is shown: nothing to forget
  assert.equal(s.oldestSeq, 1);
  assert.equal(s.olderPossible(), false);
});

test('edits and deletions: counted in the join history, seqs noted, shown once, pages skip events', () => {
  const s = new Session();
  joined(s, { history: 4, lastSeq: 4 });
  const evs = [
    ...s.receive({ type: 'message', seq: 1, text: 'frist', edited: 9, from: { id: 'b', name: 'bea' } }),
    ...s.receive({ type: 'deleted', seq: 2, serverDate: 1 }),
    ...s.receive({ type: 'edit', seq: 3, target: 1, text: 'first', edited: 9 }),
    ...s.receive({ type: 'delete', seq: 4, target: 2, by: { id: 'm', name: 'mo' } }),
  ];
  assert.deepEqual(kinds(evs).filter((k) => k !== 'olderState'), ['message', 'deleted', 'edited', 'deleted']);
  assert.equal(evs.find((e) => e.kind === 'deleted').shown, false); // a tombstone we never showed
  assert.equal(s.lastSeq, 4);
  // The history is over: the next message is live.
  assert.equal(s.receive(msg(5, 'live')).find((e) => e.kind === 'message').history, false);
  // A replayed event we already had is not applied twice.
  assert.deepEqual(kinds(s.receive({ type: 'edit', seq: 3, target: 1, text: 'first' })), []);
  // A live deletion of a message we show.
  const d = s.receive({ type: 'delete', seq: 6, target: 5, by: { id: 'm', name: 'mo' } });
  assert.deepEqual(d.map((e) => [e.kind, e.seq]), [['deleted', 5]]);
  // A page: messages and tombstones, not the events.
  s.forgetBefore(5);
  s.olderRequest();
  const page = s.receive({
    type: 'history', before: 5, more: false,
    messages: [msg(1, 'first'), { type: 'deleted', seq: 2 }, { type: 'edit', seq: 3, target: 1, text: 'first' }],
  });
  assert.deepEqual(page.find((e) => e.kind === 'older').items.map((i) => i.m.seq), [1, 2]);
  // A moderator's action on us is passed on as it came.
  assert.equal(s.receive({ type: 'moderation', action: 'mute', until: 5 })[0].kind, 'moderation');
});

test('rooms: unread from rseq and the read position, markers only forward, room pages by rseq', () => {
  const s = new Session();
  joined(s, { lastSeq: 10 });
  const ev = s.receive({
    type: 'rooms',
    rooms: [{ room: 'lobby', rseq: 10, lastRead: 10 }, { room: 'ops', kind: 'private', rseq: 7, lastRead: 5 }],
    public: [{ room: 'news', members: 3 }],
  });
  assert.deepEqual(kinds(ev), ['rooms']);
  assert.equal(s.unread('ops'), 2);
  assert.equal(s.unread('nowhere'), 0);
  assert.deepEqual(s.publicRooms.map((r) => r.room), ['news']);
  // A message of ops from someone else: one more unread, and the sidebar told.
  const m = { ...msg(11, 'hi'), room: 'ops', rseq: 8 };
  assert.deepEqual(kinds(s.receive(m)).filter((k) => k !== 'olderState'), ['rooms', 'message']);
  assert.equal(s.unread('ops'), 3);
  // Reading: the marker carries the room's newest rseq, once.
  assert.deepEqual(JSON.parse(s.readRequest('ops')), { type: 'read', room: 'ops', rseq: 8 });
  assert.equal(s.readRequest('ops'), null);
  assert.equal(s.unread('ops'), 0);
  // Another tab read further; an older marker never moves it back.
  s.receive({ type: 'read', room: 'ops', rseq: 6 });
  assert.equal(s.rooms.get('ops').lastRead, 8);
  // Our own message counts as read.
  s.receive({ ...msg(12, 'mine', { id: 'a', name: 'ann' }), room: 'ops', rseq: 9 });
  assert.equal(s.unread('ops'), 0);
  // Sending to a room names it; to the lobby, no room (older servers' shape).
  assert.equal(JSON.parse(s.send('x', 1, 'ops').frame).room, 'ops');
  assert.equal(JSON.parse(s.send('x', 1).frame).room, undefined);
  // Pages of a room go back by rseq from the oldest seen, until "more" is false.
  const req = JSON.parse(s.roomOlderRequest('ops'));
  assert.equal(req.room, 'ops');
  assert.equal(req.before, 8);
  assert.equal(s.roomOlderRequest('ops'), null); // one at a time
  const page = s.receive({ type: 'history', room: 'ops', before: 8, more: false,
    messages: [{ ...msg(3, 'old'), room: 'ops', rseq: 3 }, { type: 'member', action: 'joined', seq: 4, room: 'ops', rseq: 4 }] });
  const older = page.find((e) => e.kind === 'older');
  assert.equal(older.room, 'ops');
  assert.deepEqual(older.items.map((i) => i.m.text), ['old']); // events are not page rows
  assert.equal(s.roomOlderPossible('ops'), false);
  // Room and member events count in a replay like messages.
  s.receive({ type: 'resume', history: 1 });
  const re = s.receive({ type: 'member', action: 'invited', seq: 13, room: 'ops', rseq: 10, user: { name: 'bob' } });
  assert.equal(re.find((e) => e.kind === 'roomEvent').history, true);
  assert.equal(s.replaying, 0);
  assert.equal(s.lastSeq, 13);
});

test('receipts: positions only move forward; a DM message goes Sent, Delivered, Read', () => {
  const s = new Session();
  joined(s);
  const room = 'dm:1:2';
  assert.equal(s.receipt(room, 5, 1), null); // nothing streamed: a big room or the lobby
  s.receive({ type: 'members', room, members: [
    { name: 'ann', account: 1, delivered: 4, read: 4 }, { name: 'bob', account: 2, delivered: 4, read: 3 }] });
  assert.deepEqual(s.receipt(room, 5, 1), { of: 1, delivered: 0, read: 0, readers: [], hidden: 0 });
  assert.deepEqual(kinds(s.receive({ type: 'receipts', room, positions: [{ name: 'bob', account: 2, delivered: 5, read: 3 }] })), ['receipts']);
  assert.equal(s.receipt(room, 5, 1).delivered, 1);
  assert.equal(s.receipt(room, 5, 1).read, 0);
  s.receive({ type: 'receipts', room, positions: [{ name: 'bob', account: 2, delivered: 4, read: 5 }] });
  assert.deepEqual(s.receipt(room, 5, 1), { of: 1, delivered: 1, read: 1, readers: ['bob'], hidden: 0 });
  // A person who shows no read receipts: read unknown, never "0".
  s.receive({ type: 'receipts', room, positions: [{ name: 'bob', account: 2, delivered: 6 }] });
  assert.equal(s.receipt(room, 6, 1).hidden, 1);
  assert.equal(s.receipt(room, 6, 1).read, 0);
  // "received" markers: per room, the highest, once.
  s.noteReceived(room, 7);
  s.noteReceived(room, 6);
  assert.deepEqual(s.receivedRequests().map((f) => JSON.parse(f)), [{ type: 'received', room, rseq: 7 }]);
  assert.deepEqual(s.receivedRequests(), []);
  s.noteReceived('lobby', 9); // not streamed: nothing to confirm
  assert.deepEqual(s.receivedRequests(), []);
  // Typing lists and the setting.
  assert.deepEqual(kinds(s.receive({ type: 'typing', room, users: ['bob', 7] })), ['typing']);
  assert.deepEqual(s.typing.get(room), ['bob']);
  s.receive({ type: 'settings', readReceipts: false });
  assert.equal(s.readReceipts, false);
});
