// Rooms in the page (docs/rooms.md): three people, a private room and a
// DM in real Chromium against a real palaverd with its SQLite database.
// Unread badges move and clear, nothing of a room reaches a non-member's
// page, keyboard navigation and the 360 px layout work, and a page that
// was away while its room got 60 messages resumes exactly those.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PALAVERD, PASSWORD, ARTIFACTS, startPalaverd, stopPalaverd, launch, connected, roomButton, say, signIn,
} from './helpers.js';

test('three people, a private room and a DM: badges, isolation, keyboard, 360 px, a resume of 60', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palaver-rooms-'));
  const made = spawnSync(PALAVERD, ['--config', '/dev/null', '--data-dir', dir, '--create-admin', 'Ann'],
    { input: `${PASSWORD}\n`, encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const browser = await launch();
  // No rate limit: the 60 messages below go out of one connection at once.
  const srv = await startPalaverd({ args: ['--data-dir', dir, '--registration', 'open', '--rate-limit', '0'] });
  try {
    const ann = await browser.visitor();
    const bob = await browser.visitor();
    const cat = await browser.visitor();
    await signIn(ann, srv.url, 'Ann', false);
    await signIn(bob, srv.url, 'bob', true);
    await signIn(cat, srv.url, 'cat', true);
    for (const p of [ann, bob, cat]) await roomButton(p, '# lobby').waitFor();

    // Ann makes a private room from the sidebar and is taken to it.
    await ann.click('#room-new');
    await ann.fill('#room-name', 'ops');
    await ann.selectOption('#room-kind', 'private');
    await ann.fill('#room-topic-input', 'pager duty');
    await ann.click('#room-form button[type=submit]');
    await ann.locator('#room-list button[aria-current="true"]', { hasText: '# ops' }).waitFor();
    await ann.locator('#room-topic', { hasText: 'pager duty' }).waitFor();

    // She invites Bob; his sidebar gets the room, Cat's never does.
    await ann.click('#room-invite');
    await ann.fill('#room-invite-name', 'bob');
    await ann.click('#room-invite-form button[type=submit]');
    await roomButton(bob, '# ops').waitFor();

    // A message in ops: a badge on Bob's ops (he is in the lobby), then
    // read when he opens it, with the "new messages" marker above it.
    await say(ann, 'deploy at five');
    await roomButton(bob, '# ops').locator('.unread', { hasText: '1' }).waitFor();
    await bob.locator('#log .msg', { hasText: 'deploy at five' }).waitFor({ state: 'hidden' });
    await roomButton(bob, '# ops').click();
    await bob.locator('#log .msg', { hasText: 'deploy at five' }).waitFor();
    await bob.locator('#log .unread-marker').waitFor();
    await roomButton(bob, '# ops').locator('.unread').waitFor({ state: 'detached' });
    await bob.locator('#room-topic', { hasText: 'pager duty' }).waitFor();
    // The room's members beside those online: Ann (the owner, online) and Bob.
    await bob.locator('#members li', { hasText: 'Ann (owner)' }).locator('.presence.on').waitFor();
    await bob.locator('#members li', { hasText: 'bob' }).waitFor();
    assert.equal(await bob.locator('#members-count').textContent(), '2');

    // A DM from the online list: Cat to Bob.
    await cat.locator('#users li', { hasText: 'bob' }).locator('.dm-btn').click();
    await cat.locator('#room-list button[aria-current="true"]', { hasText: '@ bob' }).waitFor();
    await say(cat, 'psst, bob');
    await roomButton(bob, '@ cat').locator('.unread', { hasText: '1' }).waitFor();

    // Isolation on the page: Cat has no ops, Ann no DM, in any room.
    await roomButton(ann, '# lobby').click();
    await say(ann, 'lobby marker');
    for (const p of [cat, bob]) await p.locator('#log li', { hasText: 'lobby marker' }).waitFor({ state: 'attached' });
    assert.equal(await cat.locator('#room-list button', { hasText: 'ops' }).count(), 0);
    assert.equal(await cat.locator('#log li', { hasText: 'deploy at five' }).count(), 0);
    await ann.locator('#log li', { hasText: 'lobby marker' }).waitFor({ state: 'attached' });
    assert.equal(await ann.locator('#log li', { hasText: 'psst' }).count(), 0);

    // A DM by name, from the room dialog.
    await ann.click('#room-new');
    await ann.fill('#dm-name', 'cat');
    await ann.click('#dm-form button[type=submit]');
    await ann.locator('#room-list button[aria-current="true"]', { hasText: '@ cat' }).waitFor();

    // Keyboard: arrows move inside the room list, Enter opens; Alt+Down
    // moves to the next room from anywhere.
    await roomButton(bob, '# lobby').focus();
    await bob.keyboard.press('ArrowDown');
    const focused = await bob.evaluate(() => document.activeElement.dataset.room);
    assert.equal(focused, 'ops');
    await bob.keyboard.press('Enter');
    await bob.locator('#room-list button[aria-current="true"]', { hasText: '# ops' }).waitFor();
    await bob.focus('#text');
    await bob.keyboard.press('Alt+ArrowDown');
    await bob.locator('#room-list button[aria-current="true"]', { hasText: '@ cat' }).waitFor();
    await bob.locator('#log .msg', { hasText: 'psst, bob' }).waitFor();
    await roomButton(bob, '# ops').click();

    // Away: Bob disconnects; ops gets 60 messages; back, he has exactly those.
    await bob.click('#disconnect');
    await bob.locator('#status', { hasText: 'Disconnected' }).waitFor();
    const acks = await ann.evaluate(async (count) => {
      const url = new URL('/ws', location.href);
      url.protocol = 'ws:';
      const ws = new WebSocket(url, 'palaver');
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
      let n = 0;
      let answered = 0; // acks and errors: a refusal fails the test instead of hanging it
      const done = new Promise((resolve) => {
        ws.onmessage = (ev) => {
          const t = JSON.parse(ev.data).type;
          if (t === 'ack') n++;
          if ((t === 'ack' || t === 'error') && ++answered === count) resolve();
        };
      });
      for (let i = 0; i < count; i++) ws.send(JSON.stringify({ type: 'message', msgId: i, room: 'ops', text: `away ${i}` }));
      await done;
      ws.close();
      return n;
    }, 60);
    assert.equal(acks, 60);
    await bob.click('#connect');
    await connected(bob);
    await bob.locator('#log .msg', { hasText: /^.*away 59$/ }).waitFor();
    const texts = await bob.locator('#log li[data-room="ops"] .text').allTextContents();
    const away = texts.filter((t) => t.startsWith('away '));
    assert.equal(away.length, 60);
    assert.deepEqual(away, Array.from({ length: 60 }, (_, i) => `away ${i}`));
    assert.equal(await bob.locator('#log li[data-room="lobby"]', { hasText: 'away' }).count(), 0);

    // 360 px: the room strip, the log and the composer fit the width.
    await bob.setViewportSize({ width: 360, height: 740 });
    for (const sel of ['#room-list', '#scroller', '#text']) {
      const box = await bob.locator(sel).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 361, `${sel} fits 360 px: ${JSON.stringify(box)}`);
    }
    const bar = await bob.locator('header.top').boundingBox();
    const log = await bob.locator('#scroller').boundingBox();
    assert.ok(log.y >= bar.y + bar.height - 1, 'the log starts below the top bar, not under it');
    await bob.screenshot({ path: join(ARTIFACTS, 'rooms-360.png') });
    await bob.setViewportSize({ width: 1280, height: 800 });
    await bob.screenshot({ path: join(ARTIFACTS, 'rooms-desktop.png') });

    // Ann renames # ops (she owns it): everyone in it follows without a
    // reload -- the sidebar, the rows already shown, the room in view.
    const opsRows = await bob.locator('#log li[data-room="ops"]').count();
    await roomButton(ann, '# ops').click();
    await ann.locator('#room-list button[aria-current="true"]', { hasText: '# ops' }).waitFor();
    await ann.click('#room-rename');
    await ann.fill('#room-rename-name', 'ops-team');
    await ann.click('#room-rename-form button[type=submit]');
    await ann.locator('#room-title', { hasText: 'ops-team' }).waitFor();
    await bob.locator('#room-list button[data-room="ops-team"]').waitFor();
    assert.equal(await bob.locator('#room-list button[data-room="ops"]').count(), 0);
    await bob.locator('#log li.room-note', { hasText: 'Ann renamed # ops to # ops-team' }).waitFor({ state: 'attached' });
    assert.equal(await bob.locator('#log li[data-room="ops"]').count(), 0);
    assert.ok(await bob.locator('#log li[data-room="ops-team"]').count() >= opsRows);
    await bob.locator('#room-list button[data-room="ops-team"]').click();
    await bob.locator('#log .msg', { hasText: 'away 59' }).waitFor();
    assert.equal(await bob.locator('#room-rename').isHidden(), true); // a member, not its owner
    assert.equal(await cat.locator('#room-list button', { hasText: 'ops' }).count(), 0);

    // Ann takes Bob out of the room from its member list: his page hears
    // it, goes back to the lobby, and the room leaves his sidebar.
    await ann.locator('#members li', { hasText: 'bob' }).locator('button.remove-member').click();
    await bob.locator('#log li.room-note', { hasText: 'bob was removed (by Ann)' }).waitFor({ state: 'attached' });
    await bob.locator('#room-list button[aria-current="true"]', { hasText: 'lobby' }).waitFor();
    await bob.locator('#room-list button[data-room="ops-team"]').waitFor({ state: 'detached' });
    await ann.locator('#members li', { hasText: 'bob' }).waitFor({ state: 'detached' });

    const unexpected = (p) => p.errors.filter((e) => !/net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET)/.test(e));
    for (const p of [ann, bob, cat]) assert.deepEqual(unexpected(p), []);
  } finally {
    await browser.close();
    assert.equal(await stopPalaverd(srv), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});
