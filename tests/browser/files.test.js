// Shared files in the page (docs/files.md), in real Chromium against a
// real palaverd with libmagic: a pasted PNG reaches the other page as a
// preview the uploading page drew, opens in the lightbox, and the
// original downloads byte for byte; a hostile SVG arrives as a file card,
// and neither clicking it nor opening its URL runs its script or leaves
// the page; a phone photo's EXIF GPS position is in neither its preview
// nor the copy sent in its place, and the person is told.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PALAVERD, PASSWORD, startPalaverd, stopPalaverd, launch, signIn } from './helpers.js';
import { jpegHasGps } from '../../htdocs/files.js';

const sha = (b) => createHash('sha256').update(b).digest('hex');

// An image drawn in `page`, encoded as `type`: bytes (a Buffer).
async function drawn(page, width, height, type) {
  const bytes = await page.evaluate(async ([w, h, t]) => {
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    const g = c.getContext('2d');
    for (let i = 0; i < 8; i++) {
      g.fillStyle = `hsl(${i * 45} 70% 50%)`;
      g.fillRect((i * w) / 8, 0, w / 8, h);
    }
    const blob = await new Promise((ok) => c.toBlob(ok, t, 0.9));
    return [...new Uint8Array(await blob.arrayBuffer())];
  }, [width, height, type]);
  return Buffer.from(bytes);
}

// A TIFF (EXIF) block whose IFD0 points at a GPS IFD with a latitude, as
// a phone writes it, wrapped in a JPEG APP1 segment.
function exifGpsSegment() {
  const t = Buffer.alloc(68);
  t.write('MM', 0, 'latin1');
  t.writeUInt16BE(42, 2);
  t.writeUInt32BE(8, 4); // IFD0
  t.writeUInt16BE(1, 8); // one entry
  t.writeUInt16BE(0x8825, 10); // GPSInfo
  t.writeUInt16BE(4, 12); // LONG
  t.writeUInt32BE(1, 14);
  t.writeUInt32BE(26, 18); // the GPS IFD
  t.writeUInt32BE(0, 22); // no next IFD
  t.writeUInt16BE(1, 26); // GPS IFD: one entry
  t.writeUInt16BE(2, 28); // GPSLatitude
  t.writeUInt16BE(5, 30); // RATIONAL
  t.writeUInt32BE(3, 32);
  t.writeUInt32BE(44, 36);
  t.writeUInt32BE(0, 40);
  [48, 1, 51, 1, 30, 1].forEach((v, i) => t.writeUInt32BE(v, 44 + i * 4)); // 48°51'30"
  const head = Buffer.alloc(10);
  head.writeUInt16BE(0xffe1, 0);
  head.writeUInt16BE(2 + 6 + t.length, 2);
  head.write('Exif\0\0', 4, 'latin1');
  return Buffer.concat([head, t]);
}

// The bytes of a /files/ URL as `page` fetches them (its session).
async function fetched(page, path) {
  const bytes = await page.evaluate(async (p) => {
    const r = await fetch(p);
    return [r.status, [...new Uint8Array(await r.arrayBuffer())]];
  }, path);
  assert.equal(bytes[0], 200, `${path}: HTTP ${bytes[0]}`);
  return Buffer.from(bytes[1]);
}

test('paste, preview, lightbox, download; a hostile SVG stays inert; EXIF GPS is gone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palaver-files-'));
  const made = spawnSync(PALAVERD, ['--config', '/dev/null', '--data-dir', dir, '--create-admin', 'Ann'],
    { input: `${PASSWORD}\n`, encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const browser = await launch();
  const srv = await startPalaverd({ args: ['--data-dir', dir, '--registration', 'open'] });
  let ann;
  try {
    ann = await browser.visitor();
    const bob = await browser.visitor();
    await signIn(ann, srv.url, 'Ann', false);
    await signIn(bob, srv.url, 'bob', true);

    // 1. Ann pastes a screenshot and sends it with a line of text.
    const png = await drawn(ann, 800, 600, 'image/png');
    await ann.locator('#text').focus();
    await ann.evaluate((bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'screenshot.png', { type: 'image/png' }));
      document.querySelector('#text').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, [...png]);
    await ann.locator('#tray .tray-item.ready', { hasText: 'screenshot.png' }).waitFor();
    await ann.fill('#text', 'the layout now');
    await ann.press('#text', 'Enter');
    await ann.locator('#log li.mine', { hasText: 'the layout now' }).locator('.state', { hasText: /^(Sent|Delivered|Read)$/ }).waitFor();
    assert.equal(await ann.locator('#tray').isHidden(), true);

    // Bob's page: a preview (not the original) in a box of its size, loaded.
    const row = bob.locator('#log li.msg', { hasText: 'the layout now' });
    const thumb = row.locator('.thumb img');
    await thumb.waitFor();
    await bob.waitForFunction((img) => img.complete && img.naturalWidth > 0, await thumb.elementHandle());
    assert.equal(await thumb.getAttribute('width'), '320');
    assert.equal(await thumb.getAttribute('height'), '240');
    assert.equal(await thumb.getAttribute('loading'), 'lazy');
    const previewSrc = await thumb.getAttribute('src');
    const preview = await fetched(bob, previewSrc);
    assert.notEqual(sha(preview), sha(png), 'the list shows a preview, not the original');

    // The lightbox: the larger picture, keyboard-closable, and the original.
    await row.locator('.thumb').press('Enter');
    const box = bob.locator('#lightbox');
    await box.waitFor();
    await bob.waitForFunction(() => { const i = document.querySelector('#lightbox img'); return i.complete && i.naturalWidth === 800; });
    assert.match(await box.locator('.caption').textContent(), /screenshot\.png · .* · 800×600/);
    const [download] = await Promise.all([bob.waitForEvent('download'), box.locator('a.original').click()]);
    assert.equal(download.suggestedFilename(), 'screenshot.png');
    assert.equal(sha(readFileSync(await download.path())), sha(png), 'the original, byte for byte');
    await bob.keyboard.press('Escape');
    await box.waitFor({ state: 'hidden' });

    // 2. A hostile SVG: a file card; clicking it downloads, opening its
    // URL downloads; its script never runs, Bob's page never moves.
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2);location="http://evil.example/"</script></svg>';
    await ann.setInputFiles('#file-input', { name: 'cute-cat.svg', mimeType: 'image/svg+xml', buffer: Buffer.from(svg) });
    await ann.locator('#tray .tray-item.ready', { hasText: 'cute-cat.svg' }).waitFor();
    await ann.locator('#send').click();
    const card = bob.locator('#log li.msg .file-card', { hasText: 'cute-cat.svg' });
    await card.waitFor();
    assert.equal(await bob.locator('#log li.msg', { hasText: 'cute-cat.svg' }).locator('img.thumb, .thumb').count(), 0);
    assert.match(await card.locator('.file-meta').textContent(), /file$/);
    const [svgDownload] = await Promise.all([bob.waitForEvent('download'), card.click()]);
    assert.equal(sha(readFileSync(await svgDownload.path())), sha(Buffer.from(svg)));
    const href = await card.getAttribute('href');
    const tab = await bob.ctx.newPage();
    const dialogs = [];
    tab.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
    const opened = tab.waitForEvent('download');
    await tab.goto(new URL(href, srv.url).href).catch(() => {}); // a download, not a page
    await opened;
    assert.equal(new URL(bob.url()).origin, new URL(srv.url).origin);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(bob.dialogs, []);
    await tab.close();

    // 3. A phone photo with its GPS position in EXIF.
    const plain = await drawn(ann, 1600, 1200, 'image/jpeg');
    const photo = Buffer.concat([plain.subarray(0, 2), exifGpsSegment(), plain.subarray(2)]);
    assert.equal(jpegHasGps(photo.buffer.slice(photo.byteOffset, photo.byteOffset + photo.length)), true);
    await ann.setInputFiles('#file-input', { name: 'IMG_0042.jpg', mimeType: 'image/jpeg', buffer: photo });
    const item = ann.locator('#tray .tray-item', { hasText: 'IMG_0042.jpg' });
    await item.locator('.gps-note', { hasText: 'Location data removed' }).waitFor();
    await ann.locator('#tray .tray-item.ready', { hasText: 'IMG_0042.jpg' }).waitFor();
    await ann.fill('#text', 'from the trip');
    await ann.press('#text', 'Enter');
    const trip = bob.locator('#log li.msg', { hasText: 'from the trip' });
    await trip.locator('.thumb img').waitFor();
    const small = await fetched(bob, await trip.locator('.thumb img').getAttribute('src'));
    await trip.locator('.thumb').click();
    await bob.waitForFunction(() => { const i = document.querySelector('#lightbox img'); return i.complete && i.naturalWidth === 1280; });
    const large = await fetched(bob, await box.locator('img').getAttribute('src'));
    const original = await fetched(bob, await box.locator('a.original').getAttribute('href'));
    assert.match(await box.locator('.caption').textContent(), /1600×1200/);
    for (const [what, bytes] of [['320 px preview', small], ['1280 px preview', large], ['full-size copy', original]]) {
      const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
      assert.equal(jpegHasGps(ab), false, `${what}: no GPS`);
      assert.equal(bytes.includes(Buffer.from('Exif\0\0', 'latin1')), false, `${what}: no EXIF at all`);
    }
    assert.notEqual(sha(original), sha(photo), 'the photo with its position never left Ann\'s page');
    await bob.keyboard.press('Escape');

    for (const p of [ann, bob]) assert.deepEqual(p.errors, []);
    assert.deepEqual(ann.dialogs, []);
  } catch (e) {
    console.log('files test failed; the tray, page errors, palaverd log:', await ann.locator('#tray').innerText().catch(() => ''), ann.errors, srv.log().slice(-3000));
    throw e;
  } finally {
    await browser.close();
    await stopPalaverd(srv);
    rmSync(dir, { recursive: true, force: true });
  }
});
