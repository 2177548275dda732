// Receipts, typing and mentions in the page (docs/receipts.md), in real
// Chromium against a real palaverd: two people in a DM see their message
// go Sent -> Delivered -> Read (Read only once the other page shows it),
// a third person in a small room sees "... is typing…" and it goes away,
// turning read receipts off keeps a message at Delivered, and a mention
// raises the title and icon badge while the tab is hidden.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PALAVERD, PASSWORD, startPalaverd, stopPalaverd, launch, roomButton, say, signIn,
} from './helpers.js';

const ownState = (page, text) => page.locator('#log li.mine', { hasText: text }).locator('.state');

// Makes the page believe its tab is hidden (or visible again), as a
// switch to another tab would.
async function setHidden(page, hidden) {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

test('a DM goes Sent, Delivered, Read; typing shows and goes; receipts off; a mention badges the hidden tab', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palaver-receipts-'));
  const made = spawnSync(PALAVERD, ['--config', '/dev/null', '--data-dir', dir, '--create-admin', 'Ann'],
    { input: `${PASSWORD}\n`, encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const browser = await launch();
  const srv = await startPalaverd({ args: ['--data-dir', dir, '--registration', 'open'] });
  try {
    const ann = await browser.visitor();
    const bob = await browser.visitor();
    const cat = await browser.visitor();
    await signIn(ann, srv.url, 'Ann', false);
    await signIn(bob, srv.url, 'bob', true);
    await signIn(cat, srv.url, 'cat', true);

    // Bob is hidden (another tab) when Ann's DM comes: it reaches his
    // page (Delivered, derived by the server) but he has not seen it.
    await ann.locator('#users li', { hasText: 'bob' }).locator('.dm-btn').click();
    await ann.locator('#room-list button[aria-current="true"]', { hasText: '@ bob' }).waitFor();
    await setHidden(bob, true);
    await say(ann, 'lunch at noon?');
    await ownState(ann, 'lunch at noon?').filter({ hasText: /^Delivered$/ }).waitFor();
    // A DM is for him: the hidden tab's title and icon say so.
    await bob.waitForFunction(() => document.title.startsWith('(1) @ '));
    assert.match(await bob.locator('link[rel="icon"]').getAttribute('href'), /^data:image\/png/);
    // Still not read: his page is hidden, and then shows the lobby.
    await setHidden(bob, false);
    assert.equal(await ownState(ann, 'lunch at noon?').textContent(), 'Delivered');
    assert.equal(await bob.title(), 'palaver');
    // He opens the DM: now it is read.
    await roomButton(bob, '@ Ann').click();
    await bob.locator('#log .msg', { hasText: 'lunch at noon?' }).waitFor();
    await ownState(ann, 'lunch at noon?').filter({ hasText: /^Read$/ }).waitFor();

    // Typing: Bob types in the DM; Ann sees it, then it goes when he sends.
    await bob.fill('#text', 'sure, wh');
    await bob.locator('#text').press('e');
    await ann.locator('#typing', { hasText: 'bob is typing…' }).waitFor();
    await bob.press('#text', 'Enter');
    await ann.locator('#log .msg', { hasText: 'sure, whe' }).waitFor();
    await ann.locator('#typing').filter({ hasText: /^$/ }).waitFor();

    // A small room of three: Cat sees Bob typing there too.
    await ann.click('#room-new');
    await ann.fill('#room-name', 'lunch');
    await ann.click('#room-form button[type=submit]');
    await ann.locator('#room-list button[aria-current="true"]', { hasText: '# lunch' }).waitFor();
    for (const who of ['bob', 'cat']) {
      await ann.click('#room-invite');
      await ann.fill('#room-invite-name', who);
      await ann.click('#room-invite-form button[type=submit]');
    }
    await roomButton(bob, '# lunch').click();
    await roomButton(cat, '# lunch').click();
    await bob.locator('#text').pressSequentially('I know a pl');
    await cat.locator('#typing', { hasText: 'bob is typing…' }).waitFor();
    await ann.locator('#typing', { hasText: 'bob is typing…' }).waitFor();
    // Bob's own page never lists him; the lobby's line is not lunch's.
    assert.equal(await bob.locator('#typing').textContent(), '');
    await roomButton(cat, '# lobby').click();
    assert.equal(await cat.locator('#typing').textContent(), '');
    await roomButton(cat, '# lunch').click();
    // Bob clears his text: he stopped typing.
    await bob.fill('#text', '');
    await cat.locator('#typing').filter({ hasText: /^$/ }).waitFor();

    // In the room, Ann's message is "Seen by 2 of 2" once both show it.
    await say(ann, 'the usual place');
    await ownState(ann, 'the usual place').filter({ hasText: 'Seen by everyone' }).waitFor();
    const seenBy = await ownState(ann, 'the usual place').getAttribute('title');
    assert.match(seenBy, /bob/);
    assert.match(seenBy, /cat/);

    // Cat turns read receipts off: Ann's next message stops at Delivered
    // for her ("Seen by 1 of 2": Bob's still counts).
    await cat.click('#account');
    await cat.locator('#read-receipts').uncheck();
    await cat.keyboard.press('Escape');
    await say(ann, 'noon sharp');
    await cat.locator('#log .msg', { hasText: 'noon sharp' }).waitFor();
    await ownState(ann, 'noon sharp').filter({ hasText: 'Seen by 1 of 2' }).waitFor();
    assert.doesNotMatch((await ownState(ann, 'noon sharp').getAttribute('title')) || '', /cat/);

    // Cat asks for desktop notifications (127.0.0.1 is a secure context):
    // the browser's permission granted, the page's button says so. A spy
    // over the real Notification counts what the page raises.
    await cat.ctx.grantPermissions(['notifications'], { origin: new URL(srv.url).origin });
    await cat.evaluate(() => {
      window.notes = [];
      const Real = window.Notification;
      window.Notification = class extends Real {
        constructor(title, opts) { super(title, opts); window.notes.push(title); }
      };
    });
    await cat.locator('#notify').click();
    await cat.locator('#notify', { hasText: 'Notifications on' }).waitFor();

    // A mention of Cat while her tab is hidden: the title badge, one
    // notification, and the mention is marked in her page; a plain message
    // does neither.
    await setHidden(cat, true);
    await say(ann, 'nothing for anyone');
    await cat.locator('#log .msg', { hasText: 'nothing for anyone' }).waitFor({ state: 'attached' });
    assert.equal(await cat.title(), '(1) palaver');
    assert.deepEqual(await cat.evaluate(() => window.notes), []);
    await say(bob, 'see you there @cat');
    await cat.waitForFunction(() => document.title.startsWith('(1) @ '));
    assert.deepEqual(await cat.evaluate(() => window.notes), ['bob (# lunch)']);
    await cat.locator('#log li.mentions-me .mention', { hasText: '@cat' }).waitFor({ state: 'attached' });
    await setHidden(cat, false);
    assert.equal(await cat.title(), 'palaver');
    for (const p of [ann, bob, cat]) assert.deepEqual(p.errors, []);
  } finally {
    await browser.close();
    assert.equal(await stopPalaverd(srv), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});
