// The seeds' own clients against palaverd, unmodified (issue 20,
// docs/dialects.md): seed 004's page (plain text) and seed 003's page
// (echo-protocol), both opened from disk as file:// (seed 004's tutorial
// does; seed 003's served its page from Apache, which is another origin
// all the same -- palaverd's own CSP would not let that page run), each
// taken from
// ../shared/seeds/ at test time (never copied into this tree), in one
// conversation with palaver's own page through one palaverd. A palaver
// user's attempt at markup stays text on the seed 003 page.
//
// What the harness supplies, without changing the seeds' logic (each in
// docs/dialects.md, "What the seeds' pages need"):
//  - seed 004's client connects to ws://localhost:8080: palaverd listens
//    there, with --allowed-origins null (a file:// page's Origin);
//  - seed 003's script is three fragments in the tutorial ("More code to
//    go here", "...Previous code"): assembled in the order the text says;
//    its URL placeholder ws://<server>:<port> becomes localhost:8080;
//  - seed 003's page closes the Bootstrap <script> tag with "/>", which
//    HTML ignores, so script.js would be read as that element's content
//    and never run: closed with </script>;
//  - seed 003's page loads jQuery 3.2.1 and Bootstrap from CDNs, which a
//    LAN test cannot reach: jQuery 3.2.1 from npm (pinned) is served in
//    their place, Bootstrap's files as empty ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startPalaverd, stopPalaverd, launch } from './helpers.js';

const SEEDS = process.env.PALAVER_SEEDS || new URL('../../../shared/seeds', import.meta.url).pathname;
const PORT = 8080; // seed 004's client hard-codes ws://localhost:8080
const require = createRequire(import.meta.url);
const JQUERY = require.resolve('jquery/dist/jquery.min.js');

function fencedBlocks(text) {
  const out = [];
  for (const m of text.matchAll(/^```\s*(\w*)[^\n]*\n([\s\S]*?)^```/gm)) out.push({ lang: m[1], body: m[2] });
  return out;
}

function seedText(prefix) {
  if (!existsSync(SEEDS)) return null;
  const file = readdirSync(SEEDS).find((f) => f.startsWith(prefix));
  return file ? readFileSync(join(SEEDS, file), 'utf8') : null;
}

// Seed 004: its index.html and main.js, as the tutorial gives them.
function seed004() {
  const text = seedText('004_');
  if (!text) return null;
  const blocks = fencedBlocks(text);
  const html = blocks.find((b) => b.lang === 'html' && /<!DOCTYPE html>/i.test(b.body));
  const js = blocks.find((b) => b.lang === 'js' && b.body.includes('new WebSocket('));
  return html && js ? { html: html.body, js: js.body } : null;
}

// Seed 003: the page (its markup block and its head block) and script.js
// assembled from the tutorial's three fragments.
function seed003() {
  const text = seedText('003_');
  if (!text) return null;
  const blocks = fencedBlocks(text);
  const markup = blocks.find((b) => b.lang === 'html' && b.body.includes('id="join"'));
  const head = blocks.find((b) => b.lang === 'html' && b.body.includes('script.js'));
  const first = blocks.find((b) => b.lang === 'js' && b.body.includes("'echo-protocol')"));
  const second = blocks.find((b) => b.lang === 'js' && b.body.includes('ws.onopen'));
  const third = blocks.find((b) => b.lang === 'js' && b.body.includes('function addMessage'));
  if (!markup || !head || !first || !second || !third) return null;
  // The second fragment's body goes where the first says "More code to go
  // here..": everything after its "// ...Previous code" line, less the
  // closing "});" of the handler it repeats.
  const inner = second.body.split('// ...Previous code')[1].replace(/\}\);\s*$/, '');
  const [send, add] = third.body.split('// Some markup for the messages');
  let js = first.body.replace('// More code to go here..', inner);
  // The send handler belongs in the ready function (it uses ws and name).
  js = js.replace(/\}\);\s*$/, `${send}\n});\n`);
  js += `\n${add}`;
  return {
    html: `<!DOCTYPE html><html><head><meta charset="utf-8"><title>seed 003</title></head><body>\n${markup.body}\n${head.body}\n</body></html>`,
    js,
  };
}

const s004 = seed004();
const s003 = seed003();

test('seed 004 and seed 003 pages chat with palaver\'s page through one palaverd', {
  skip: s004 && s003 ? false : `no seeds 003/004 in ${SEEDS}`,
}, async () => {
  assert.match(s004.js, /new WebSocket\('ws:\/\/localhost:8080'\)/);
  assert.match(s003.js, /new WebSocket\('ws:\/\/<server>:<port>', 'echo-protocol'\)/);
  // Both pages from disk, as file:// (their Origin is "null": palaverd is
  // told to allow it). Not from palaverd: its pages' Content-Security-Policy
  // (script-src 'self', no inline style) is palaver's, and would block the
  // seed 003 page's CDN scripts and inline style.
  const disk = mkdtempSync(join(tmpdir(), 'palaver-seeds-'));
  mkdirSync(join(disk, '004'));
  writeFileSync(join(disk, '004', 'index.html'), s004.html);
  writeFileSync(join(disk, '004', 'main.js'), s004.js);
  mkdirSync(join(disk, '003'));
  writeFileSync(join(disk, '003', 'index.html'),
    s003.html.replace(/(<script src="[^"]*bootstrap\.min\.js")\s*\/>/, '$1></script>'));
  writeFileSync(join(disk, '003', 'script.js'), s003.js.replace('<server>:<port>', `localhost:${PORT}`));

  const browser = await launch();
  const srv = await startPalaverd({ port: PORT, args: ['--allowed-origins', 'null'] });
  const seedPages = []; // for a failure's report: what the seeds' pages logged
  try {
    const ann = await browser.visitor({ name: 'Ann' });
    const plain = await browser.visitor();
    const stef = await browser.visitor();
    seedPages.push(plain, stef);
    await stef.route(/ajax\.googleapis\.com\/ajax\/libs\/jquery\/3\.2\.1\/jquery\.min\.js/,
      (r) => r.fulfill({ contentType: 'application/javascript', body: readFileSync(JQUERY) }));
    await stef.route(/maxcdn\.bootstrapcdn\.com|pi\.lan/, (r) => r.fulfill({ status: 200, body: '' }));
    const pwned = [];
    for (const p of [ann, plain, stef]) p.on('dialog', (d) => { pwned.push(d.message()); d.dismiss(); });

    await ann.goto(`http://localhost:${PORT}/`);
    await ann.locator('#status', { hasText: /^Connected$/ }).waitFor();
    const opened = new Promise((resolve) => plain.on('websocket', (ws) => resolve(ws.url())));
    await plain.goto(pathToFileURL(join(disk, '004', 'index.html')).href);
    assert.equal(await opened, `ws://localhost:${PORT}/`);
    await stef.goto(pathToFileURL(join(disk, '003', 'index.html')).href);
    await stef.fill('#name', 'Stefano');
    await stef.fill('#avatar', 'https://pi.lan/me.png');
    await stef.click('#join_button');
    // Its onopen says it joined: everyone sees that, Stefano too.
    await stef.locator('#chatlog li', { hasText: 'joined the chatroom.' }).waitFor();
    await ann.locator('#log .msg', { hasText: 'joined the chatroom.' }).locator('.who', { hasText: 'Stefano' }).waitFor();
    await plain.locator('#chat li', { hasText: 'Stefano: joined the chatroom.' }).waitFor();

    // Seed 004 speaks: its own line comes back; the others show it.
    await plain.fill('#message', 'hello from the plain page');
    await plain.click('button[type="submit"]');
    const line = plain.locator('#chat li', { hasText: ': hello from the plain page' });
    await line.waitFor();
    const guest = (await line.innerText()).split(':')[0];
    assert.match(guest, /^guest-[0-9a-f]{4}$/);
    await ann.locator('#log .msg', { hasText: 'hello from the plain page' }).locator('.who', { hasText: guest }).waitFor();
    await stef.locator('#chatlog li', { hasText: 'hello from the plain page' }).locator('h4', { hasText: guest }).waitFor();

    // Seed 003 speaks.
    await stef.fill('#message', 'greetings from the Pi');
    await stef.click('#send-button');
    await stef.locator('#chatlog li', { hasText: 'greetings from the Pi' }).waitFor();
    await ann.locator('#log .msg', { hasText: 'greetings from the Pi' }).waitFor();
    await plain.locator('#chat li', { hasText: 'Stefano: greetings from the Pi' }).waitFor();

    // palaver's page speaks, markup included: text everywhere.
    const attack = '<img src=x onerror="alert(document.domain)"> <b>bold?</b>';
    await ann.fill('#text', attack);
    await ann.press('#text', 'Enter');
    const shown = stef.locator('#chatlog li', { hasText: 'bold?' });
    await shown.waitFor();
    assert.ok((await shown.innerText()).includes('<img src=x onerror="alert(document.domain)">'));
    assert.equal(await stef.locator('#chatlog li img:not(#avatar-pic)').count(), 0);
    assert.equal(await stef.locator('#chatlog b').count(), 0);
    await plain.locator('#chat li', { hasText: `Ann: ${attack}` }).waitFor();
    // Stefano's avatar (a safe URL) is on his own messages; Ann's is empty.
    assert.equal(await stef.locator('#chatlog li', { hasText: 'greetings from the Pi' }).locator('#avatar-pic').getAttribute('src'),
      '  https://pi.lan/me.png');

    // One order for everyone: the plain page's lines are the seq order.
    const lines = await plain.locator('#chat li').allInnerTexts();
    const order = ['joined the chatroom.', 'hello from the plain page', 'greetings from the Pi', 'bold?'];
    const at = order.map((t) => lines.findIndex((l) => l.includes(t)));
    assert.deepEqual([...at].sort((a, b) => a - b), at);
    assert.deepEqual(pwned, []);
    assert.deepEqual(ann.errors, []);
  } catch (err) {
    console.log(`palaverd log:\n${srv.log()}`);
    console.log('seed pages\' errors:', seedPages.map((p) => p.errors));
    throw err;
  } finally {
    await browser.close();
    await stopPalaverd(srv);
    rmSync(disk, { recursive: true, force: true });
  }
});
