// The seeds' own clients against palaverd, unmodified (issue 20,
// docs/dialects.md), all four in one conversation with palaver's own page
// through one palaverd, each taken from ../shared/seeds/ at test time
// (never copied into this tree):
//  - seed 004's page (plain text) and seed 003's page (echo-protocol),
//    opened from disk as file:// (seed 004's tutorial does; seed 003's
//    served its page from Apache, another origin all the same -- and
//    palaverd's own CSP would not let that page run);
//  - seed 002's page (Socket.IO) at palaverd's origin, as its tutorial's
//    server served it: its io() loads /socket.io/socket.io.js from palaverd,
//    connects by long-polling and upgrades to a WebSocket, and survives a
//    palaverd restart by reconnecting itself. Its person signed in on
//    palaver first: the session cookie is how seed 002 knows its user;
//  - seed 000's page, served by palaverd from /seed/ on ws://localhost:3001
//    (what its client hard-codes), which the harness forwards to palaverd's
//    one port (a TCP forwarder: palaverd listens on one port, and seed
//    004's client hard-codes 8080).
// A palaver user's attempt at markup stays text on the seed 003 page.
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
//    their place, Bootstrap's files as empty ones;
//  - seed 002's view is a Handlebars template ("Hello {{username}}!"),
//    rendered with the signed-in name as its server would; its chat.js
//    uses a global `username` nobody declares (the view's server-side
//    name): defined before the page's scripts run, to the same name;
//  - seed 002's receiving handlers (socket.on(...)) are a fragment of
//    their own that uses the `socket` local to the sending fragment's
//    ready function: placed in that function, after `var socket = io();`;
//  - seed 002's 'chat message' handler passes the whole object to
//    addMessage(msg), which would print "[object Object]"; the tutorial's
//    text says the client "extracts the actual message body and the
//    sender's username from it": addMessage(msg.msg, msg.username);
//  - seed 002's page loads jQuery 1.11.1, Bootstrap and Font Awesome from
//    CDNs: jQuery 1.11.1 from npm (pinned, as jquery-1.11.1), the
//    stylesheets (and its design.css, not in the tutorial) empty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  startPalaverd, stopPalaverd, launch, signIn, HTDOCS, SEEDS, fencedBlocks, seedText, seed000,
} from './helpers.js';

const PORT = 8080; // seed 004's client hard-codes ws://localhost:8080
const require = createRequire(import.meta.url);
const JQUERY = require.resolve('jquery/dist/jquery.min.js');
const JQUERY_1_11 = require.resolve('jquery-1.11.1/dist/jquery.js');

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

// Seed 002: its view (index.hbs) and chat.js assembled from the
// tutorial's three fragments (sending, addMessage, receiving).
function seed002() {
  const text = seedText('002_');
  if (!text) return null;
  const blocks = fencedBlocks(text);
  const view = blocks.find((b) => b.lang === 'html' && b.body.includes('/socket.io/socket.io.js'));
  const send = blocks.find((b) => b.lang === 'js' && b.body.includes('var socket = io();'));
  const add = blocks.find((b) => b.lang === 'js' && b.body.includes('function addMessage'));
  const receive = blocks.find((b) => b.lang === 'js' && b.body.includes("socket.on('system'"));
  if (!view || !send || !add || !receive) return null;
  const handlers = receive.body.replace(/(socket\.on\('chat message', function\(msg\) \{\s*)addMessage\(msg\);/,
    '$1addMessage(msg.msg, msg.username);');
  return { view: view.body, js: `${send.body.replace('var socket = io();', `var socket = io();\n${handlers}`)}\n${add.body}` };
}

const s004 = seed004();
const s003 = seed003();
const s002 = seed002();
const s000 = seed000();

// Forwards TCP connections from `from` to `to` on loopback (seed 000's
// client hard-codes port 3001).
function forward(from, to) {
  return new Promise((resolve) => {
    const socks = new Set();
    const srv = createServer((a) => {
      const b = connect(to, '127.0.0.1');
      for (const s of [a, b]) { socks.add(s); s.on('error', () => {}); s.on('close', () => { socks.delete(s); a.destroy(); b.destroy(); }); }
      a.pipe(b);
      b.pipe(a);
    });
    srv.listen(from, '127.0.0.1', () => resolve({ close: () => { for (const s of socks) s.destroy(); srv.close(); } }));
  });
}

test('the four seeds\' pages chat with palaver\'s page through one palaverd', {
  skip: s004 && s003 && s002 && s000 ? false : `no seeds 000/002/003/004 in ${SEEDS}`,
}, async () => {
  assert.match(s004.js, /new WebSocket\('ws:\/\/localhost:8080'\)/);
  assert.match(s003.js, /new WebSocket\('ws:\/\/<server>:<port>', 'echo-protocol'\)/);
  assert.match(s000.js, /new WebSocket\('ws:\/\/localhost:3001', 'sample-protocol'\)/);
  assert.match(s002.js, /addMessage\(msg\.msg, msg\.username\)/);
  // Seeds 004 and 003 from disk, as file:// (their Origin is "null":
  // palaverd is told to allow it). Not from palaverd: its pages'
  // Content-Security-Policy (script-src 'self', no inline style) is
  // palaver's, and would block the seed 003 page's CDN scripts and inline
  // style.
  const disk = mkdtempSync(join(tmpdir(), 'palaver-seeds-'));
  mkdirSync(join(disk, '004'));
  writeFileSync(join(disk, '004', 'index.html'), s004.html);
  writeFileSync(join(disk, '004', 'main.js'), s004.js);
  mkdirSync(join(disk, '003'));
  writeFileSync(join(disk, '003', 'index.html'),
    s003.html.replace(/(<script src="[^"]*bootstrap\.min\.js")\s*\/>/, '$1></script>'));
  writeFileSync(join(disk, '003', 'script.js'), s003.js.replace('<server>:<port>', `localhost:${PORT}`));
  // Seed 000's page served by palaverd at /seed/ (as seed.test.js).
  const root = join(disk, 'htdocs');
  cpSync(HTDOCS, root, { recursive: true });
  mkdirSync(join(root, 'seed'));
  writeFileSync(join(root, 'seed', 'index.html'), s000.html);
  writeFileSync(join(root, 'seed', 'client.js'), s000.js);
  writeFileSync(join(root, 'seed', 'style.css'), s000.css);
  const data = join(disk, 'data');
  mkdirSync(data);

  // A page the harness fulfils has no address of its own, and Chromium's
  // Local Network Access checks then take it for a public site and block
  // its WebSocket to localhost; seed 002's tutorial served its page from
  // the chat server itself, so the check is off for this browser.
  const browser = await launch({ args: ['--disable-features=LocalNetworkAccessChecks'] });
  const args = ['--allowed-origins', 'null', '--data-dir', data, '--registration', 'open'];
  let srv = await startPalaverd({ port: PORT, htdocs: root, args });
  const fwd = await forward(3001, PORT);
  const seedPages = []; // for a failure's report: what the seeds' pages logged
  try {
    const ann = await browser.visitor({ name: 'Ann' });
    const plain = await browser.visitor();
    const stef = await browser.visitor();
    const paola = await browser.visitor();
    const old = await browser.visitor();
    seedPages.push(plain, stef, paola, old);
    await stef.route(/ajax\.googleapis\.com\/ajax\/libs\/jquery\/3\.2\.1\/jquery\.min\.js/,
      (r) => r.fulfill({ contentType: 'application/javascript', body: readFileSync(JQUERY) }));
    await stef.route(/maxcdn\.bootstrapcdn\.com|pi\.lan/, (r) => r.fulfill({ status: 200, body: '' }));
    const pwned = [];
    for (const p of [ann, plain, stef, paola, old]) p.on('dialog', (d) => { pwned.push(d.message()); d.dismiss(); });

    await ann.goto(`http://localhost:${PORT}/`);
    await ann.locator('#status', { hasText: /^Connected$/ }).waitFor();

    // Seed 002: Paola signs in on palaver's page (her session cookie is how
    // seed 002's server knows its user), then opens the seed's page at
    // palaverd's origin: the view and chat.js as its server served them,
    // the CDN files from npm; /socket.io/ is palaverd's own.
    await signIn(paola, `http://localhost:${PORT}/`, 'Paola', true);
    await paola.addInitScript(() => { window.username = 'Paola'; });
    await paola.route(`http://localhost:${PORT}/chat`, (r) => r.fulfill({
      contentType: 'text/html; charset=utf-8', body: s002.view.replace('{{username}}', 'Paola') }));
    await paola.route(`http://localhost:${PORT}/js/chat.js`,
      (r) => r.fulfill({ contentType: 'application/javascript', body: s002.js }));
    await paola.route(`http://localhost:${PORT}/css/design.css`, (r) => r.fulfill({ contentType: 'text/css', body: '' }));
    await paola.route('https://code.jquery.com/jquery-1.11.1.js',
      (r) => r.fulfill({ contentType: 'application/javascript', body: readFileSync(JQUERY_1_11) }));
    await paola.route(/maxcdn\.bootstrapcdn\.com|use\.fontawesome\.com/, (r) => r.fulfill({ contentType: 'text/css', body: '' }));
    const sioRequests = [];
    paola.on('request', (r) => { if (r.url().includes('/socket.io/')) sioRequests.push(r.url()); });
    const paolaWs = [];
    paola.on('websocket', (ws) => paolaWs.push(ws.url()));
    await paola.goto(`http://localhost:${PORT}/chat`);
    const hello = paola.locator('#messages li', { hasText: 'hello Paola' });
    await hello.waitFor();
    // Long-polling first (the library from palaverd, the handshake, its
    // namespace connect), then the WebSocket upgrade of that very session.
    assert.match(sioRequests[0], /\/socket\.io\/socket\.io\.js$/);
    assert.match(sioRequests[1], /\/socket\.io\/\?EIO=4&transport=polling&t=[^&]+$/);
    const sid = paolaWs.map((u) => u.match(/^ws:\/\/localhost:8080\/socket\.io\/\?EIO=4&transport=websocket&sid=([\w-]{20})$/)).find(Boolean);
    assert.ok(sid, `upgraded WebSocket of a polling session: ${paolaWs}`);
    assert.ok(sioRequests.some((u) => u.includes(`transport=polling`) && u.includes(`sid=${sid[1]}`)), 'polled with that sid');

    // Seed 000 through port 3001.
    const gotId = new Promise((resolve) => {
      old.on('websocket', (ws) => ws.on('framereceived', (f) => {
        if (String(f.payload).includes('"type":"id"')) resolve(ws.url());
      }));
    });
    await old.goto('http://localhost:3001/seed/index.html');
    assert.equal(await gotId, 'ws://localhost:3001/');

    const opened = new Promise((resolve) => plain.on('websocket', (ws) => resolve(ws.url())));
    await plain.goto(pathToFileURL(join(disk, '004', 'index.html')).href);
    assert.equal(await opened, `ws://localhost:${PORT}/`);
    // Seed 002 hears of newcomers (its "broadcast" notices).
    await paola.locator('#messages li', { hasText: /guest-[0-9a-f]{4} connected/ }).first().waitFor();
    await stef.goto(pathToFileURL(join(disk, '003', 'index.html')).href);
    await stef.fill('#name', 'Stefano');
    await stef.fill('#avatar', 'https://pi.lan/me.png');
    await stef.click('#join_button');
    // Its onopen says it joined: everyone sees that, Stefano too.
    await stef.locator('#chatlog li', { hasText: 'joined the chatroom.' }).waitFor();
    await ann.locator('#log .msg', { hasText: 'joined the chatroom.' }).locator('.who', { hasText: 'Stefano' }).waitFor();
    await plain.locator('#chat li', { hasText: 'Stefano: joined the chatroom.' }).waitFor();
    await paola.locator('#messages li', { hasText: 'joined the chatroom.' }).locator('.msg-user', { hasText: 'Stefano' }).waitFor();

    // Seed 004 speaks: its own line comes back; the others show it.
    await plain.fill('#message', 'hello from the plain page');
    await plain.click('button[type="submit"]');
    const line = plain.locator('#chat li', { hasText: ': hello from the plain page' });
    await line.waitFor();
    const guest = (await line.innerText()).split(':')[0];
    assert.match(guest, /^guest-[0-9a-f]{4}$/);
    await ann.locator('#log .msg', { hasText: 'hello from the plain page' }).locator('.who', { hasText: guest }).waitFor();
    await stef.locator('#chatlog li', { hasText: 'hello from the plain page' }).locator('h4', { hasText: guest }).waitFor();
    await paola.locator('#messages li', { hasText: 'hello from the plain page' }).locator('.msg-user', { hasText: guest }).waitFor();
    await old.locator('#message-log li.received', { hasText: 'hello from the plain page' }).waitFor();

    // Seed 003 speaks.
    await stef.fill('#message', 'greetings from the Pi');
    await stef.click('#send-button');
    await stef.locator('#chatlog li', { hasText: 'greetings from the Pi' }).waitFor();
    await ann.locator('#log .msg', { hasText: 'greetings from the Pi' }).waitFor();
    await plain.locator('#chat li', { hasText: 'Stefano: greetings from the Pi' }).waitFor();
    await paola.locator('#messages li', { hasText: 'greetings from the Pi' }).waitFor();

    // Seed 002 speaks: its page shows its own message at once (class
    // "own"), and nobody sends it back (socket.broadcast.emit).
    await paola.fill('#msg', 'ciao from socket.io');
    await paola.press('#msg', 'Enter');
    await paola.locator('#messages li.own', { hasText: 'ciao from socket.io' }).waitFor();
    await ann.locator('#log .msg', { hasText: 'ciao from socket.io' }).locator('.who', { hasText: 'Paola' }).waitFor();
    await plain.locator('#chat li', { hasText: 'Paola: ciao from socket.io' }).waitFor();
    await stef.locator('#chatlog li', { hasText: 'ciao from socket.io' }).locator('h4', { hasText: 'Paola' }).waitFor();
    await old.locator('#message-log li.received', { hasText: 'ciao from socket.io' }).waitFor();

    // Seed 000 speaks.
    await old.fill('#message-area', 'hello from the tutorial client');
    await old.press('#message-area', 'Enter');
    await old.locator('#message-log li.sent', { hasText: 'hello from the tutorial client' }).waitFor();
    await ann.locator('#log .msg .text', { hasText: 'hello from the tutorial client' }).waitFor();
    await plain.locator('#chat li', { hasText: ': hello from the tutorial client' }).waitFor();
    await stef.locator('#chatlog li', { hasText: 'hello from the tutorial client' }).waitFor();
    await paola.locator('#messages li', { hasText: 'hello from the tutorial client' }).waitFor();

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
    const onPaola = paola.locator('#messages li', { hasText: 'bold?' });
    await onPaola.waitFor();
    assert.equal(await onPaola.locator('.msg-text').innerText(), attack);
    assert.equal(await paola.locator('#messages img, #messages b').count(), 0);
    await old.locator('#message-log li.received', { hasText: 'bold?' }).waitFor();
    // Stefano's avatar (a safe URL) is on his own messages; Ann's is empty.
    assert.equal(await stef.locator('#chatlog li', { hasText: 'greetings from the Pi' }).locator('#avatar-pic').getAttribute('src'),
      '  https://pi.lan/me.png');

    // One order for everyone: the plain page's lines are the seq order,
    // and seed 002's page shows the others' messages in it too.
    const order = ['joined the chatroom.', 'hello from the plain page', 'greetings from the Pi', 'ciao from socket.io',
      'hello from the tutorial client', 'bold?'];
    const lines = await plain.locator('#chat li').allInnerTexts();
    const at = order.map((t) => lines.findIndex((l) => l.includes(t)));
    assert.ok(at.every((i) => i >= 0), `all on the plain page: ${lines}`);
    assert.deepEqual([...at].sort((a, b) => a - b), at);
    const sioLines = await paola.locator('#messages li').allInnerTexts();
    const at2 = order.map((t) => sioLines.findIndex((l) => l.includes(t)));
    assert.deepEqual([...at2].sort((a, b) => a - b), at2);
    assert.equal(sioLines.filter((l) => l.includes('ciao from socket.io')).length, 1, 'its own message once');

    assert.deepEqual(ann.errors, []);
    assert.deepEqual(paola.errors, []);

    // palaverd restarts: seed 002's io() reconnects by itself (polling,
    // then the upgrade again), is greeted again, and chats both ways.
    assert.equal(await stopPalaverd(srv), 0);
    srv = await startPalaverd({ port: PORT, htdocs: root, args });
    await paola.locator('#messages li', { hasText: 'hello Paola' }).nth(1).waitFor({ timeout: 30000 });
    assert.ok(paolaWs.length >= 2, 'a second WebSocket after the restart');
    await ann.locator('#status', { hasText: /^Connected$/ }).waitFor({ timeout: 20000 });
    await ann.fill('#text', 'after the restart');
    await ann.press('#text', 'Enter');
    await paola.locator('#messages li', { hasText: 'after the restart' }).locator('.msg-user', { hasText: 'Ann' }).waitFor();
    await paola.fill('#msg', 'still here');
    await paola.press('#msg', 'Enter');
    await ann.locator('#log .msg', { hasText: 'still here' }).locator('.who', { hasText: 'Paola' }).waitFor();

    // (While palaverd was down, the pages' attempts failed, as they must.)
    const down = /^WebSocket connection to '[^']*' failed|ERR_CONNECTION_(REFUSED|RESET)|Failed to load resource/;
    assert.deepEqual(pwned, []);
    assert.deepEqual(ann.errors.filter((e) => !down.test(e)), []);
    assert.deepEqual(paola.errors.filter((e) => !down.test(e)), []);
  } catch (err) {
    console.log(`palaverd log:\n${srv.log()}`);
    console.log('seed pages\' errors:', seedPages.map((p) => p.errors));
    throw err;
  } finally {
    fwd.close();
    await browser.close();
    await stopPalaverd(srv);
    rmSync(disk, { recursive: true, force: true });
  }
});
