// Browser tests of palaver's chat page: real headless Chromium (Debian's
// /usr/bin/chromium through playwright-core) against a real palaverd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startPalaverd, stopPalaverd, launch, messageTexts, blast, ARTIFACTS } from './helpers.js';

let browser;
before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launch();
});
after(async () => {
  await browser.close();
});

const connected = (page) => page.locator('#status').filter({ hasText: /^Connected$/ }).waitFor();

async function open(srv, opts) {
  const page = await browser.visitor(opts);
  const resp = await page.goto(srv.url);
  page.resp = resp;
  await connected(page);
  return page;
}

async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

// The last own message reached the "Sent" state (the server's ack).
async function sent(page, text) {
  await page.locator('#log .msg.mine', { hasText: text }).locator('.state[data-state="sent"]').waitFor();
}

test('three people chat: names, presence, notices, own vs other, acks, Enter vs Shift+Enter, history', async () => {
  const srv = await startPalaverd();
  try {
    const ann = await open(srv, { name: 'Ann Lee' });
    const bob = await open(srv, { name: 'Bob' });

    // Cat has no name yet: the page asks on the first visit.
    const cat = await browser.visitor({ width: 360, height: 740 });
    await cat.goto(srv.url);
    await cat.locator('#name-dialog[open]').waitFor();
    await cat.fill('#name', 'Cat');
    await cat.press('#name', 'Enter');
    await connected(cat);
    await cat.locator('#me .me-name', { hasText: 'Cat' }).waitFor();
    assert.equal(await cat.evaluate(() => localStorage.getItem('palaver-name')), 'Cat');

    // Presence: the list and the count, everywhere.
    for (const p of [ann, bob, cat]) {
      await p.locator('#count', { hasText: /^3$/ }).waitFor();
      await p.locator('#users li', { hasText: 'Cat' }).waitFor();
    }
    assert.deepEqual((await ann.locator('#users li .name').allTextContents()).sort(),
      ['Ann Lee (you)', 'Bob', 'Cat']);
    await ann.locator('#log .notice', { hasText: 'Bob joined' }).waitFor();
    await ann.locator('#log .notice', { hasText: /is now Cat/ }).waitFor();
    // Avatars: initials and a colour that depends on the name only.
    assert.equal(await bob.locator('#users li', { hasText: 'Ann Lee' }).locator('.avatar').textContent(), 'AL');

    // Ann writes; Shift+Enter makes a new line, Enter sends.
    await ann.fill('#text', 'first line');
    await ann.press('#text', 'Shift+Enter');
    await ann.locator('#text').pressSequentially('second line');
    assert.equal(await ann.inputValue('#text'), 'first line\nsecond line');
    await ann.press('#text', 'Enter');
    await sent(ann, 'second line');
    assert.equal(await ann.inputValue('#text'), '');
    for (const p of [bob, cat]) {
      const msg = p.locator('#log .msg', { hasText: 'second line' });
      await msg.waitFor();
      assert.equal(await msg.locator('.text').textContent(), 'first line\nsecond line');
      assert.equal(await msg.locator('.who').textContent(), 'Ann Lee');
      assert.equal(await msg.evaluate((el) => el.classList.contains('mine')), false);
    }
    // Own messages look different: class, label, and a state.
    const mine = ann.locator('#log .msg.mine', { hasText: 'second line' });
    assert.equal(await mine.locator('.who').textContent(), 'Ann Lee (you)');
    const [mineBg, otherBg] = [await mine.locator('.bubble').evaluate((e) => getComputedStyle(e).backgroundColor),
      await bob.locator('#log .msg .bubble').first().evaluate((e) => getComputedStyle(e).backgroundColor)];
    assert.notEqual(mineBg, otherBg);
    // A local time is shown.
    assert.match(await mine.locator('time').textContent(), /\d{1,2}:\d{2}/);

    // Empty messages are not sent.
    await say(ann, '   ');
    await say(bob, 'bob here');
    await ann.locator('#log .msg', { hasText: 'bob here' }).waitFor();
    assert.equal((await ann.locator('#log .msg.mine').count()), 1);

    // Cat leaves: a notice and the count drop.
    await cat.ctx.close();
    await ann.locator('#log .notice', { hasText: 'Cat left' }).waitFor();
    await ann.locator('#count', { hasText: /^2$/ }).waitFor();

    // Bob reloads: history on join, each message once.
    await bob.reload();
    await connected(bob);
    await bob.locator('#log .msg.history', { hasText: 'bob here' }).waitFor();
    assert.deepEqual(await messageTexts(bob), ['first line\nsecond line', 'bob here']);

    // Missed while disconnected: comes back with the history, nothing twice.
    await bob.click('#disconnect');
    await bob.locator('#status', { hasText: 'Disconnected' }).waitFor();
    assert.equal(await bob.locator('#connect').isEnabled(), true);
    await say(ann, 'while you were away');
    await sent(ann, 'while you were away');
    await bob.click('#connect');
    await connected(bob);
    await bob.locator('#log .msg', { hasText: 'while you were away' }).waitFor();
    assert.deepEqual(await messageTexts(bob), ['first line\nsecond line', 'bob here', 'while you were away']);

    await ann.screenshot({ path: join(ARTIFACTS, 'palaver-1280.png') });
    assert.deepEqual(ann.errors, []);
    assert.deepEqual(bob.errors, []);
    await ann.ctx.close();
    await bob.ctx.close();
  } finally {
    assert.equal(await stopPalaverd(srv), 0);
  }
});

test('message text is text: no HTML, no script, links are safe', async () => {
  const srv = await startPalaverd();
  try {
    const eve = await open(srv, { name: 'Eve' });
    const bob = await open(srv, { name: 'Bob' });
    const attacks = ['<img src=x onerror=alert(1)>', '<script>alert(2)</script>',
      '"><svg onload=alert(3)>', 'javascript:alert(4) and http://example.org/a?b=<i>c</i>'];
    for (const a of attacks) {
      await say(eve, a);
      await sent(eve, a.slice(0, 12));
    }
    await bob.locator('#log .msg').nth(attacks.length - 1).waitFor();
    assert.deepEqual(await messageTexts(bob), attacks);
    for (const p of [eve, bob]) {
      assert.equal(await p.locator('#log img, #log script, #log svg, #log i').count(), 0);
      assert.deepEqual(p.dialogs, []);
      // The one real link: http(s) only, opened without opener or referrer.
      const links = p.locator('#log a');
      assert.equal(await links.count(), 1);
      assert.equal(await links.getAttribute('href'), 'http://example.org/a?b=');
      assert.equal(await links.getAttribute('rel'), 'noopener noreferrer');
      assert.equal(await links.getAttribute('target'), '_blank');
    }
    // Headers: a CSP without inline script or style, and friends.
    const h = eve.resp.headers();
    assert.match(h['content-security-policy'], /script-src 'self'/);
    assert.doesNotMatch(h['content-security-policy'], /unsafe-inline/);
    assert.equal(h['x-content-type-options'], 'nosniff');
    assert.equal(h['referrer-policy'], 'no-referrer');
    assert.deepEqual(eve.errors, []);
    assert.deepEqual(bob.errors, []);
    await eve.ctx.close();
    await bob.ctx.close();
  } finally {
    assert.equal(await stopPalaverd(srv), 0);
  }
});

test('limits and errors are shown where they belong', async () => {
  const srv = await startPalaverd({ args: ['--max-text', '40', '--rate-limit', '1', '--rate-burst', '2'] });
  try {
    const ann = await open(srv, { name: 'Ann' });
    // The length limit is known before sending (from the server's id message).
    await ann.locator('#counter', { hasText: '0 / 40' }).waitFor();
    await ann.fill('#text', 'é'.repeat(21)); // 42 bytes of UTF-8
    await ann.locator('#counter.over', { hasText: '42 / 40' }).waitFor();
    assert.equal(await ann.locator('#send').isDisabled(), true);
    assert.equal(await ann.getAttribute('#text', 'aria-invalid'), 'true');
    await ann.press('#text', 'Enter');
    assert.equal(await ann.locator('#log .msg').count(), 0);
    // A server refusal (over the rate) appears next to its message, with Retry.
    for (const t of ['one', 'two', 'three']) await say(ann, t);
    const refused = ann.locator('#log .msg.mine', { hasText: 'three' });
    await refused.locator('.state[data-state="failed"]').waitFor();
    assert.match(await refused.locator('.error').textContent(), /too many messages/);
    await ann.waitForTimeout(1100); // one token back at 1/s
    await refused.locator('.retry').click();
    await refused.locator('.state[data-state="sent"]').waitFor();
    assert.equal(await refused.locator('.error').count(), 0);
    assert.deepEqual(ann.errors, []);
    await ann.ctx.close();
  } finally {
    assert.equal(await stopPalaverd(srv), 0);
  }
});

test('reading: auto-scroll, new-messages marker, unread count in the title', async () => {
  const srv = await startPalaverd({ args: ['--rate-limit', '0', '--byte-rate', '0'] });
  try {
    const ann = await open(srv, { name: 'Ann' });
    const bob = await open(srv, { name: 'Bob', width: 1280, height: 500 });
    for (let i = 0; i < 40; i++) await say(ann, `message ${i} ${'word '.repeat(8)}`);
    await bob.locator('#log .msg', { hasText: 'message 39' }).waitFor();
    // At the bottom: the view followed.
    assert.equal(await bob.evaluate(() => {
      const s = document.getElementById('scroller');
      return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
    }), true);
    // Scrolled up: the view stays, a marker counts what came below.
    await bob.evaluate(() => { document.getElementById('scroller').scrollTop = 0; });
    await say(ann, 'below the fold');
    await bob.locator('#newer', { hasText: '1 new message' }).waitFor();
    assert.equal(await bob.evaluate(() => document.getElementById('scroller').scrollTop), 0);
    await bob.click('#newer');
    await bob.locator('#newer').waitFor({ state: 'hidden' });
    // Hidden tab: unread count in the title until it is visible again.
    await bob.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    });
    await say(ann, 'while hidden 1');
    await say(ann, 'while hidden 2');
    await bob.waitForFunction(() => document.title === '(2) palaver');
    await bob.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    assert.equal(await bob.title(), 'palaver');
    // Long words wrap inside the bubble at phone width.
    const phone = await open(srv, { name: 'Pia', width: 360, height: 740 });
    await say(ann, 'x'.repeat(300));
    const bubble = phone.locator('#log .msg', { hasText: 'xxxx' }).locator('.bubble');
    await bubble.waitFor();
    const box = await bubble.boundingBox();
    assert.ok(box.x + box.width <= 360, `bubble ends at ${box.x + box.width}`);
    assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth <= 360), true);
    await phone.screenshot({ path: join(ARTIFACTS, 'palaver-360.png') });
    // The aria-live region announced the last message.
    assert.match(await phone.locator('#live').textContent(), /Ann: x+/);
    for (const p of [ann, bob, phone]) assert.deepEqual(p.errors, []);
    await ann.ctx.close();
    await bob.ctx.close();
    await phone.ctx.close();
  } finally {
    assert.equal(await stopPalaverd(srv), 0);
  }
});

test('a flood keeps the page bounded; scrolling up brings the dropped messages back', async () => {
  // Memory-only here: a ring of 2000 holds the whole flood for paging back.
  const srv = await startPalaverd({ args: ['--rate-limit', '0', '--byte-rate', '0', '--history', '2000'] });
  try {
    const ann = await open(srv, { name: 'Ann' });
    assert.equal(await blast(ann, 1500, 'flood'), 1500);
    await ann.locator('#log .msg', { hasText: 'flood 1499' }).waitFor();
    const rows = await ann.evaluate(() => document.getElementById('log').childElementCount);
    assert.ok(rows <= 600, `${rows} rows in the log after 1500 messages`);
    assert.equal(await ann.locator('#log .msg', { hasText: /^flood 10$/ }).count(), 0);
    // Scrolled back to the top, the older pages come in again.
    const want = ann.locator('#log .msg .text', { hasText: /^flood 700$/ });
    for (let i = 0; i < 60 && (await want.count()) === 0; i++) {
      await ann.evaluate(() => { document.getElementById('scroller').scrollTop = 0; });
      await ann.waitForTimeout(100);
    }
    assert.equal(await want.count(), 1);
    assert.deepEqual(ann.errors, []);
    await ann.ctx.close();
  } finally {
    assert.equal(await stopPalaverd(srv), 0);
  }
});

test('a link cannot lie about its address: bidi controls end it, and it is isolated', async () => {
  const srv = await startPalaverd();
  try {
    const eve = await open(srv, { name: 'Eve' });
    const bob = await open(srv, { name: 'Bob' });
    const trick = 'update: http://x.example/\u202Efdp.exe and \u05e9\u05dc\u05d5\u05dd http://y.example/a';
    await say(eve, trick);
    const links = bob.locator('#log a');
    await links.nth(1).waitFor();
    assert.equal(await links.nth(0).getAttribute('href'), 'http://x.example/');
    for (let i = 0; i < 2; i++) {
      const l = links.nth(i);
      assert.equal(await l.textContent(), await l.getAttribute('href'));
      assert.equal(await l.getAttribute('dir'), 'ltr');
      assert.equal(await l.evaluate((a) => a.parentElement.tagName), 'BDI');
    }
    // The text around it is kept as sent: nothing is lost, only isolated.
    assert.deepEqual(await messageTexts(bob), [trick]);
    assert.equal(await bob.locator('#log .text').first().getAttribute('dir'), 'auto');
    await eve.ctx.close();
    await bob.ctx.close();
  } finally {
    assert.equal(await stopPalaverd(srv), 0);
  }
});

test('keyboard only: name, compose, send, connect controls are reachable and labelled', async () => {
  const srv = await startPalaverd();
  try {
    const page = await browser.visitor();
    await page.goto(srv.url);
    await page.locator('#name-dialog[open]').waitFor();
    await page.keyboard.type('Kim');
    await page.keyboard.press('Enter');
    await connected(page);
    // Focus lands in the composer; typing and Enter send.
    assert.equal(await page.evaluate(() => document.activeElement.id), 'text');
    await page.keyboard.type('typed only');
    await page.keyboard.press('Enter');
    await sent(page, 'typed only');
    // Every control has an accessible name.
    for (const sel of ['#text', '#send', '#connect', '#disconnect', '#me']) {
      const name = await page.locator(sel).evaluate((el) => el.labels?.[0]?.textContent
        || el.getAttribute('aria-label') || el.textContent);
      assert.ok(name && name.trim().length > 0, `${sel} has no name`);
    }
    assert.equal(await page.getByLabel('Message', { exact: true }).count(), 1);
    // Tab reaches the Disconnect button.
    let found = false;
    for (let i = 0; i < 12 && !found; i++) {
      await page.keyboard.press('Tab');
      found = await page.evaluate(() => document.activeElement.id === 'disconnect');
    }
    assert.ok(found);
    await page.keyboard.press('Enter');
    await page.locator('#status', { hasText: 'Disconnected' }).waitFor();
    assert.deepEqual(page.errors, []);
    await page.ctx.close();
  } finally {
    assert.equal(await stopPalaverd(srv), 0);
  }
});
