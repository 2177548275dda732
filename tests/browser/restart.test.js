// palaverd restarts under an open page: the page says Reconnecting, comes
// back to Connected by itself, and shows nothing twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPalaverd, stopPalaverd, launch, messageTexts } from './helpers.js';

test('restart palaverd under open pages', async () => {
  const browser = await launch();
  let srv = await startPalaverd();
  const port = srv.port;
  try {
    const ann = await browser.visitor({ name: 'Ann' });
    const bob = await browser.visitor({ name: 'Bob' });
    for (const p of [ann, bob]) {
      await p.goto(srv.url);
      await p.locator('#status', { hasText: /^Connected$/ }).waitFor();
    }
    await ann.fill('#text', 'before the restart');
    await ann.press('#text', 'Enter');
    await bob.locator('#log .msg', { hasText: 'before the restart' }).waitFor();

    assert.equal(await stopPalaverd(srv), 0);
    // The server said goodbye (1001); the pages back off and say so.
    for (const p of [ann, bob]) await p.locator('#status', { hasText: /^Reconnecting in \d+ s$/ }).waitFor();

    srv = await startPalaverd({ port });
    for (const p of [ann, bob]) await p.locator('#status', { hasText: /^Connected$/ }).waitFor({ timeout: 20000 });

    // The new run starts its seq at 1 again: the page keys messages by
    // server run, so the new message is not mistaken for an old one.
    await ann.fill('#text', 'after the restart');
    await ann.press('#text', 'Enter');
    await bob.locator('#log .msg', { hasText: 'after the restart' }).waitFor();
    assert.deepEqual(await messageTexts(bob), ['before the restart', 'after the restart']);
    assert.deepEqual(await messageTexts(ann), ['before the restart', 'after the restart']);
    await ann.locator('#count', { hasText: /^2$/ }).waitFor();

    // A reconnect to the same run (network blip) replays history: still
    // nothing twice.
    await bob.click('#disconnect');
    await bob.locator('#status', { hasText: 'Disconnected' }).waitFor();
    await bob.click('#connect');
    await bob.locator('#status', { hasText: /^Connected$/ }).waitFor();
    await ann.fill('#text', 'third');
    await ann.press('#text', 'Enter');
    await bob.locator('#log .msg', { hasText: 'third' }).waitFor();
    assert.deepEqual(await messageTexts(bob), ['before the restart', 'after the restart', 'third']);
  } finally {
    await browser.close();
    assert.equal(await stopPalaverd(srv), 0);
  }
});
