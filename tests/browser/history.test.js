// Durable history in the page: scroll-back through everything stored, and
// a reconnect that asks for exactly what it missed (?since=), served from
// SQLite beyond what palaverd keeps in memory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPalaverd, stopPalaverd, launch, messageTexts, blast } from './helpers.js';

let browser;
let dataDir;
before(async () => {
  browser = await launch();
  dataDir = mkdtempSync(join(tmpdir(), 'palaver-history-'));
});
after(async () => {
  await browser.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const ARGS = ['--history', '20', '--rate-limit', '0', '--byte-rate', '0', '--max-per-ip', '0'];
const connected = (page) => page.locator('#status').filter({ hasText: /^Connected$/ }).waitFor({ timeout: 20000 });
const range = (prefix, from, to) => Array.from({ length: to - from }, (_, i) => `${prefix} ${from + i}`);

async function open(srv, name) {
  const page = await browser.visitor({ name });
  page.sockets = [];
  page.on('websocket', (ws) => page.sockets.push(ws.url()));
  await page.goto(srv.url);
  await connected(page);
  return page;
}

test('scroll-back pages through the whole stored history, in order, once each', async () => {
  const srv = await startPalaverd({ args: ['--data-dir', join(dataDir, 'a'), ...ARGS] });
  try {
    const ann = await open(srv, 'Ann');
    assert.equal(await blast(ann, 130, 'old'), 130);
    const cat = await open(srv, 'Cat');
    // A newcomer gets the latest 20 from memory.
    await cat.locator('#log .msg', { hasText: 'old 129' }).waitFor();
    assert.deepEqual(await messageTexts(cat), range('old', 110, 130));
    assert.equal(await cat.locator('#older').isVisible(), true);
    // Scrolling to the top asks for older pages until the beginning.
    for (let i = 0; i < 10 && !(await cat.locator('#beginning').isVisible()); i++) {
      const before = (await messageTexts(cat)).length;
      await cat.locator('#scroller').evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); });
      await cat.waitForFunction((n) => document.querySelectorAll('#log .msg').length > n
        || !document.getElementById('beginning').hidden, before);
    }
    await cat.locator('#beginning').waitFor();
    const got = await messageTexts(cat);
    if (got.join() !== range('old', 0, 130).join()) console.log('GOT', got.map((t) => t.slice(4)).join(' '));
    assert.deepEqual(got, range('old', 0, 130));
    assert.equal(await cat.locator('#older').isVisible(), false);
    assert.deepEqual(cat.errors, []);
  } finally {
    assert.equal(await stopPalaverd(srv), 0);
  }
});

test('a reconnect gets exactly what it missed, also across a clean restart', async () => {
  let srv = await startPalaverd({ args: ['--data-dir', join(dataDir, 'b'), ...ARGS] });
  const port = srv.port;
  try {
    const ann = await open(srv, 'Ann');
    const bob = await open(srv, 'Bob');
    await blast(ann, 10, 'first');
    await bob.locator('#log .msg', { hasText: 'first 9' }).waitFor();

    // Bob is away while 60 messages go by: three times what memory holds.
    await bob.click('#disconnect');
    await bob.locator('#status', { hasText: 'Disconnected' }).waitFor();
    await blast(ann, 60, 'missed');
    await bob.click('#connect');
    await connected(bob);
    await bob.locator('#log .notice', { hasText: '60 messages arrived while you were away' }).waitFor();
    await bob.locator('#log .msg', { hasText: 'missed 59' }).waitFor();
    const url = new URL(bob.sockets.at(-1));
    assert.equal(url.searchParams.get('since'), '10');
    assert.ok(url.searchParams.get('server'));
    assert.deepEqual(await messageTexts(bob), [...range('first', 0, 10), ...range('missed', 0, 60)]);

    // palaverd restarts cleanly; messages sent while Bob's page reconnects
    // by itself arrive once, with no "reset" notice.
    assert.equal(await stopPalaverd(srv), 0);
    await bob.locator('#status', { hasText: /^Reconnecting in \d+ s$/ }).waitFor();
    srv = await startPalaverd({ port, args: ['--data-dir', join(dataDir, 'b'), ...ARGS] });
    await connected(ann);
    await blast(ann, 5, 'after');
    await connected(bob);
    await bob.locator('#log .msg', { hasText: 'after 4' }).waitFor();
    assert.deepEqual(await messageTexts(bob),
      [...range('first', 0, 10), ...range('missed', 0, 60), ...range('after', 0, 5)]);
    assert.equal(await bob.locator('#log .notice', { hasText: /showing the latest/ }).count(), 0);
    // Chromium logs the attempts made while palaverd was down; nothing else.
    assert.deepEqual(bob.errors.filter((e) => !/^WebSocket connection to .* failed/.test(e)), []);
  } finally {
    assert.equal(await stopPalaverd(srv), 0);
  }
});

test('an own message whose ack was lost with the connection is settled by the replay', async () => {
  const srv = await startPalaverd({ args: ['--data-dir', join(dataDir, 'c'), ...ARGS] });
  try {
    const ann = await open(srv, 'Ann');
    const bob = await open(srv, 'Bob');
    // palaverd freezes; Bob sends and gives up on the connection.
    srv.kill('SIGSTOP');
    await bob.fill('#text', 'did this arrive?');
    await bob.press('#text', 'Enter');
    await bob.click('#disconnect');
    srv.kill('SIGCONT');
    await bob.locator('#status', { hasText: 'Disconnected' }).waitFor();
    await ann.locator('#log .msg', { hasText: 'did this arrive?' }).waitFor();
    // Normally "Not sent" now (the close overtook the ack, which waits for
    // the commit); a late ack would have made it "Sent" already.
    assert.match(await bob.locator('#log .msg.mine .state').getAttribute('data-state'), /^(failed|sent)$/);
    // Back: the replay (or a late ack) says it was sent; never shown twice.
    await bob.click('#connect');
    await connected(bob);
    const mine = bob.locator('#log .msg.mine', { hasText: 'did this arrive?' });
    await mine.locator('.state[data-state="sent"]').waitFor();
    assert.equal(await bob.locator('#log .msg', { hasText: 'did this arrive?' }).count(), 1);
    assert.equal(await mine.locator('.retry').count(), 0);
    assert.deepEqual(bob.errors, []);
  } finally {
    assert.equal(await stopPalaverd(srv), 0);
  }
});
