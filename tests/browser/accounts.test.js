// Accounts in the page (docs/accounts.md): sign in from the page, chat
// under the account's name with its role shown, reload and restart still
// signed in (the cookie's session is in palaver.db), sign out, a wrong
// password's error, and guests marked as guests -- real Chromium against
// a real palaverd with its SQLite database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PALAVERD, startPalaverd, stopPalaverd, launch } from './helpers.js';

const connected = (page) => page.locator('#status').filter({ hasText: /^Connected$/ }).waitFor({ timeout: 20000 });

async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

test('sign in, chat as the account, reload and restart signed in, sign out', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palaver-accounts-'));
  const made = spawnSync(PALAVERD, ['--config', '/dev/null', '--data-dir', dir, '--create-admin', 'Alice'],
    { input: 'correct horse battery\n', encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const browser = await launch();
  let srv = await startPalaverd({ args: ['--data-dir', dir] });
  const port = srv.port;
  try {
    const guest = await browser.visitor({ name: 'Gus' });
    const alice = await browser.visitor({ name: 'temp' });
    for (const p of [guest, alice]) {
      await p.goto(srv.url);
      await connected(p);
    }
    await alice.locator('#signin').waitFor();
    assert.equal(await alice.locator('#signout').isHidden(), true);

    await alice.click('#signin');
    await alice.fill('#signin-name', 'alice');
    await alice.fill('#signin-password', 'correct horse battery');
    await alice.click('#signin-form button[type=submit]');
    await alice.locator('#account', { hasText: 'Signed in as Alice (admin)' }).waitFor();
    await connected(alice);
    await alice.locator('#me .me-name', { hasText: /^Alice$/ }).waitFor();
    assert.equal(await alice.locator('#me').isDisabled(), false); // renames the account

    await say(alice, 'hello from an account');
    const msg = guest.locator('#log .msg', { hasText: 'hello from an account' });
    await msg.waitFor();
    assert.equal(await msg.locator('.who').textContent(), 'Alice');
    assert.equal(await msg.locator('.role').textContent(), 'admin');
    await say(guest, 'hello from a guest');
    const back = alice.locator('#log .msg', { hasText: 'hello from a guest' });
    await back.waitFor();
    assert.equal(await back.locator('.role').textContent(), 'guest');

    // The cookie is HttpOnly: the page's script cannot read it.
    assert.equal(await alice.evaluate(() => document.cookie.includes('palaver_session')), false);

    // Reload: still signed in.
    await alice.reload();
    await connected(alice);
    await alice.locator('#account', { hasText: 'Signed in as Alice (admin)' }).waitFor();

    // Restart palaverd: the session is in palaver.db.
    assert.equal(await stopPalaverd(srv), 0);
    srv = await startPalaverd({ port, args: ['--data-dir', dir] });
    await alice.reload();
    await connected(alice);
    await alice.locator('#account', { hasText: 'Signed in as Alice (admin)' }).waitFor();
    await connected(guest);
    await say(alice, 'after the restart');
    const after = guest.locator('#log .msg', { hasText: 'after the restart' });
    await after.waitFor();
    assert.equal(await after.locator('.who').textContent(), 'Alice');

    // Sign out: a guest again, on a new connection.
    await alice.click('#signout');
    await alice.locator('#signin').waitFor();
    assert.equal(await alice.locator('#account').isHidden(), true);
    await connected(alice);
    await alice.locator('#me .me-name', { hasText: /^temp$/ }).waitFor();
    const me = await alice.evaluate(() => fetch('/api/me').then((r) => r.json()));
    assert.equal(me.user, null);
    assert.equal(me.auth, 'open');

    // A wrong password: the dialog says so, and nobody is signed in;
    // at once again: the server's delay, said in the dialog.
    await alice.click('#signin');
    await alice.fill('#signin-name', 'alice');
    await alice.fill('#signin-password', 'not the password');
    await alice.click('#signin-form button[type=submit]');
    await alice.locator('#signin-error', { hasText: /wrong name or password/ }).waitFor();
    await alice.fill('#signin-password', 'correct horse battery');
    await alice.click('#signin-form button[type=submit]');
    await alice.locator('#signin-error', { hasText: /Too many failed attempts: try again in \d+ s/ }).waitFor();
    assert.equal(await alice.locator('#account').isHidden(), true);
    assert.equal(await alice.locator('#signin-password').inputValue(), ''); // not kept in the form

    // Expected console lines: the sign-ins refused on purpose (401, 429), and the refused or reset
    // connections and requests while palaverd was restarting (network errors; a refused
    // handshake would read "Unexpected response code"). Nothing else.
    const unexpected = (p) => p.errors.filter((e) =>
      !/status of (401|429)|net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|SOCKET_NOT_CONNECTED)/.test(e));
    assert.deepEqual(unexpected(alice), []);
    assert.deepEqual(unexpected(guest), []);
  } finally {
    await browser.close();
    assert.equal(await stopPalaverd(srv), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the setup link from the log makes the first admin, once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palaver-setup-'));
  const browser = await launch();
  const srv = await startPalaverd({ args: ['--data-dir', dir] });
  try {
    const m = srv.log().match(/\/setup#([A-Za-z0-9_-]{43})/);
    assert.ok(m, 'the setup link is logged');
    const page = await browser.visitor();
    await page.goto(`${srv.url}setup#${m[1]}`);
    // The token left the address bar (and the history) at once.
    await page.waitForURL((u) => !u.hash);
    await page.fill('#setup-name', 'Root');
    await page.fill('#setup-password', 'correct horse battery');
    await page.click('#setup-form button[type=submit]');
    await page.locator('#account', { hasText: 'Signed in as Root (admin)' }).waitFor({ timeout: 20000 });
    await connected(page);
    // The same link again: refused, said on the page.
    const again = await browser.visitor();
    await again.goto(`${srv.url}setup#${m[1]}`);
    await again.fill('#setup-name', 'Other');
    await again.fill('#setup-password', 'correct horse battery');
    await again.click('#setup-form button[type=submit]');
    await again.locator('#setup-error', { hasText: /not valid/ }).waitFor();
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
    assert.equal(await stopPalaverd(srv), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an invite link: register, chat as the new member', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palaver-invite-'));
  const made = spawnSync(PALAVERD, ['--config', '/dev/null', '--data-dir', dir, '--create-admin', 'Alice'],
    { input: 'correct horse battery\n', encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const browser = await launch();
  const srv = await startPalaverd({ args: ['--data-dir', dir] });
  try {
    // The admin signs in and makes an invite (the panel is to come: the API).
    const admin = await browser.visitor({ name: 'x' });
    await admin.goto(srv.url);
    await connected(admin);
    await admin.click('#signin');
    await admin.fill('#signin-name', 'Alice');
    await admin.fill('#signin-password', 'correct horse battery');
    await admin.click('#signin-form button[type=submit]');
    await admin.locator('#account', { hasText: 'Signed in as Alice (admin)' }).waitFor();
    const inv = await admin.evaluate(() => fetch('/api/invites', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"uses":1}',
    }).then((r) => r.json()));
    assert.match(inv.link, /^\/register#[A-Za-z0-9_-]{43}$/);

    const carol = await browser.visitor();
    await carol.goto(new URL(inv.link, srv.url).href);
    await carol.waitForURL((u) => !u.hash); // the code left the address bar
    await carol.fill('#register-name', 'Carol');
    await carol.fill('#register-password', 'another long one');
    await carol.click('#register-form button[type=submit]');
    await carol.locator('#account', { hasText: 'Signed in as Carol (member)' }).waitFor({ timeout: 20000 });
    await connected(carol);
    await say(carol, 'hi, I am new here');
    const m = admin.locator('#log .msg', { hasText: 'hi, I am new here' });
    await m.waitFor();
    assert.equal(await m.locator('.who').textContent(), 'Carol');
    assert.equal(await m.locator('.role').count(), 0); // members carry no badge

    // Carol renames her account from the name button: everyone is told,
    // and "ALICE" is refused (taken, whatever the case).
    await carol.click('#me');
    await carol.fill('#name', 'ALICE');
    await carol.click('#name-form button[type=submit]');
    await carol.locator('#name-error', { hasText: /exists/ }).waitFor();
    await carol.fill('#name', 'Caroline');
    await carol.click('#name-form button[type=submit]');
    await carol.locator('#account', { hasText: 'Signed in as Caroline (member)' }).waitFor();
    await admin.locator('#log .notice', { hasText: 'Carol is now Caroline' }).waitFor();

    // The same link again: used up, and the page says so.
    const eve = await browser.visitor();
    await eve.goto(new URL(inv.link, srv.url).href);
    await eve.fill('#register-name', 'Eve');
    await eve.fill('#register-password', 'another long one');
    await eve.click('#register-form button[type=submit]');
    await eve.locator('#register-error', { hasText: /not valid/ }).waitFor();
    // The one console line expected: the refused rename (409).
    assert.deepEqual(carol.errors.filter((e) => !/status of 409/.test(e)), []);
  } finally {
    await browser.close();
    assert.equal(await stopPalaverd(srv), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('edit your own message; a moderator deletes, mutes and bans; each page shows it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palaver-moderation-'));
  const made = spawnSync(PALAVERD, ['--config', '/dev/null', '--data-dir', dir, '--create-admin', 'Alice'],
    { input: 'correct horse battery\n', encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const browser = await launch();
  const srv = await startPalaverd({ args: ['--data-dir', dir] });
  try {
    const admin = await browser.visitor({ name: 'x' });
    await admin.goto(srv.url);
    await connected(admin);
    await admin.click('#signin');
    await admin.fill('#signin-name', 'Alice');
    await admin.fill('#signin-password', 'correct horse battery');
    await admin.click('#signin-form button[type=submit]');
    await admin.locator('#account', { hasText: 'Signed in as Alice (admin)' }).waitFor();
    await admin.locator('#moderate').waitFor(); // the panel's button, for staff only
    // An invite from the panel.
    await admin.click('#moderate');
    await admin.click('#invite-form button[type=submit]');
    const link = await admin.locator('#invite-result code').textContent();
    assert.match(link, /\/register#[A-Za-z0-9_-]{43}$/);
    const inv = { code: link.slice(link.indexOf('#') + 1) };
    await admin.click('#mod-close');

    const carol = await browser.visitor({ name: 'y' });
    await carol.goto(srv.url);
    await connected(carol);
    assert.equal(await carol.locator('#moderate').isHidden(), true);
    const reg = await carol.evaluate((code) => fetch('/api/register', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ invite: code, name: 'Carol', password: 'another long one' }),
    }).then((r) => r.status), inv.code);
    assert.equal(reg, 200);
    await carol.reload();
    await carol.locator('#account', { hasText: 'Signed in as Carol (member)' }).waitFor();
    await connected(carol);
    assert.equal(await carol.locator('#moderate').isHidden(), true);

    // Carol fixes her typo; Alice's page shows the new text, marked.
    await say(carol, 'teh typo');
    const mine = carol.locator('#log .msg', { hasText: 'teh typo' });
    await mine.locator('.state', { hasText: 'Sent' }).waitFor();
    await mine.getByRole('button', { name: 'Edit' }).click();
    await carol.fill('.edit-box textarea', 'the typo, fixed');
    await carol.press('.edit-box textarea', 'Enter');
    const seen = admin.locator('#log .msg', { hasText: 'the typo, fixed' });
    await seen.locator('.edited').waitFor();
    assert.equal(await admin.locator('#log .msg', { hasText: 'teh typo' }).count(), 0);
    // Not hers to edit: Alice's messages show no Edit on Carol's page.
    await say(admin, 'welcome');
    const theirs = carol.locator('#log .msg', { hasText: 'welcome' });
    await theirs.waitFor();
    assert.equal(await theirs.getByRole('button', { name: 'Edit' }).count(), 0);
    assert.equal(await theirs.getByRole('button', { name: 'Delete' }).count(), 0);

    // A moderator deletes a message: gone on every page, a placeholder left.
    await say(carol, 'something rude');
    const rude = admin.locator('#log .msg', { hasText: 'something rude' });
    await rude.waitFor();
    await rude.getByRole('button', { name: 'Delete' }).click();
    await rude.getByRole('button', { name: 'Confirm delete for everyone' }).click();
    await carol.locator('#log .msg.deleted', { hasText: 'Message deleted' }).waitFor();
    assert.equal(await carol.locator('#log .msg', { hasText: 'something rude' }).count(), 0);

    // Mute from the panel: Carol is told, and what she sends is refused.
    await admin.click('#moderate');
    await admin.fill('#mod-user', 'carol');
    await admin.selectOption('#mod-action', 'mute');
    await admin.fill('#mod-minutes', '5');
    await admin.fill('#mod-reason', 'calm down');
    await admin.click('#mod-form button[type=submit]');
    await admin.locator('#mod-result', { hasText: 'Done: mute Carol' }).waitFor();
    await admin.locator('#mod-audit li', { hasText: 'Alice mute Carol' }).waitFor();
    await carol.locator('#log .error', { hasText: /muted you until .*calm down/ }).waitFor();
    await say(carol, 'let me talk');
    const refused = carol.locator('#log .msg', { hasText: 'let me talk' });
    await refused.locator('.state', { hasText: 'Not sent' }).waitFor();
    assert.match(await refused.locator('.error').textContent(), /muted/);

    // Ban: Carol's page says so, stops reconnecting, and she is signed out.
    await admin.selectOption('#mod-action', 'ban');
    await admin.click('#mod-form button[type=submit]');
    await admin.locator('#mod-result', { hasText: 'Done: ban Carol' }).waitFor();
    await carol.locator('#log .error', { hasText: 'You are banned' }).waitFor();
    await carol.locator('#status', { hasText: 'Banned' }).waitFor();
    await carol.locator('#signin').waitFor();
    assert.deepEqual(carol.errors, []);
    assert.deepEqual(admin.errors, []);
  } finally {
    await browser.close();
    assert.equal(await stopPalaverd(srv), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the account dialog: sessions, a bot token, a password change that signs the other tab out', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palaver-account-'));
  const made = spawnSync(PALAVERD, ['--config', '/dev/null', '--data-dir', dir, '--create-admin', 'Alice'],
    { input: 'correct horse battery\n', encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const browser = await launch();
  const srv = await startPalaverd({ args: ['--data-dir', dir] });
  try {
    // Two browsers (two sessions) of the same person.
    const signIn = async (page) => {
      await page.goto(srv.url);
      await connected(page);
      await page.click('#signin');
      await page.fill('#signin-name', 'alice');
      await page.fill('#signin-password', 'correct horse battery');
      await page.click('#signin-form button[type=submit]');
      await page.locator('#account', { hasText: 'Signed in as Alice (admin)' }).waitFor();
      await connected(page);
    };
    const home = await browser.visitor({ name: 'x' });
    const other = await browser.visitor({ name: 'y' });
    await signIn(home);
    await signIn(other);

    await home.click('#account');
    await home.locator('#sessions li', { hasText: '(this one)' }).waitFor();
    assert.equal(await home.locator('#sessions li').count(), 2);

    // A bot token: shown once, listed by its name only.
    await home.fill('#token-name', 'ci bot');
    await home.click('#token-form button[type=submit]');
    const token = await home.locator('#token-result code').textContent();
    assert.match(token, /^pvt_[A-Za-z0-9_-]{43}$/);
    await home.locator('#tokens li', { hasText: 'ci bot' }).waitFor();
    assert.equal((await home.locator('#tokens').textContent()).includes('pvt_'), false);
    // The bot posts; both pages show it as Alice's.
    const r = await fetch(new URL('/api/messages', srv.url), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ type: 'message', text: 'deploy finished' }),
    });
    assert.equal(r.status, 200);
    assert.equal(Number.isInteger((await r.json()).seq), true);
    await other.locator('#log .msg', { hasText: 'deploy finished' }).waitFor();

    // A wrong current password is refused; the right one signs the other
    // browser out (4002), and it says so.
    await home.fill('#password-current', 'not it at all');
    await home.fill('#password-new', 'a brand new password');
    await home.click('#password-form button[type=submit]');
    await home.locator('#password-result', { hasText: /wrong/ }).waitFor();
    await home.fill('#password-current', 'correct horse battery');
    await home.fill('#password-new', 'a brand new password');
    await home.click('#password-form button[type=submit]');
    await home.locator('#password-result', { hasText: 'Password changed' }).waitFor();
    await other.locator('#log .error', { hasText: 'Your session has ended' }).waitFor();
    await other.locator('#signin').waitFor();
    await home.locator('#sessions li', { hasText: '(this one)' }).waitFor();
    assert.equal(await home.locator('#sessions li').count(), 1);
    const unexpected = (p) => p.errors.filter((e) => !/status of (401|403)/.test(e));
    assert.deepEqual(unexpected(home), []);
    assert.deepEqual(unexpected(other), []);
  } finally {
    await browser.close();
    assert.equal(await stopPalaverd(srv), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a page on another origin cannot use the session: its WebSocket and POSTs are refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palaver-csrf-'));
  const made = spawnSync(PALAVERD, ['--config', '/dev/null', '--data-dir', dir, '--create-admin', 'Alice'],
    { input: 'correct horse battery\n', encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const browser = await launch();
  const srv = await startPalaverd({ args: ['--data-dir', dir] });
  // The hostile site: another origin on the same host (cookies do not
  // isolate ports, so this browser sends Alice's cookie along with it).
  const evil = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/html');
    res.end('<!doctype html><title>a page elsewhere</title>');
  });
  await new Promise((ok) => evil.listen(0, '127.0.0.1', ok));
  try {
    const alice = await browser.visitor({ name: 'x' });
    await alice.goto(srv.url);
    await connected(alice);
    await alice.click('#signin');
    await alice.fill('#signin-name', 'alice');
    await alice.fill('#signin-password', 'correct horse battery');
    await alice.click('#signin-form button[type=submit]');
    await alice.locator('#account', { hasText: 'Signed in as Alice (admin)' }).waitFor();

    await alice.goto(`http://127.0.0.1:${evil.address().port}/`);
    const got = await alice.evaluate(async (port) => {
      const ws = await new Promise((resolve) => {
        const s = new WebSocket(`ws://127.0.0.1:${port}/ws`);
        s.onopen = () => resolve('open');
        s.onerror = () => resolve('refused');
      });
      const post = async (type) => {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/api/logout`, {
            method: 'POST', credentials: 'include', headers: { 'Content-Type': type }, body: '{}',
          });
          return `answered ${r.status}`;
        } catch {
          return 'blocked';
        }
      };
      return { ws, plain: await post('text/plain'), json: await post('application/json') };
    }, srv.port);
    assert.equal(got.ws, 'refused');
    assert.equal(got.json, 'blocked'); // a JSON POST needs a preflight palaverd never grants
    assert.equal(got.plain, 'blocked'); // sent (a "simple" request), refused 415, unreadable
    assert.match(srv.log(), /Origin 'http:\/\/127\.0\.0\.1:\d+' is not allowed/);
    // Nothing changed: the sign-out the page tried did not happen.
    await alice.goto(srv.url);
    await alice.locator('#account', { hasText: 'Signed in as Alice (admin)' }).waitFor();
  } finally {
    evil.close();
    await browser.close();
    assert.equal(await stopPalaverd(srv), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('auth = members: the page asks to sign in and opens no connection until then', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palaver-members-'));
  const made = spawnSync(PALAVERD, ['--config', '/dev/null', '--data-dir', dir, '--create-admin', 'Mo'],
    { input: 'correct horse battery\n', encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const browser = await launch();
  const srv = await startPalaverd({ args: ['--data-dir', dir, '--auth', 'members', '--registration', 'open'] });
  try {
    const page = await browser.visitor();
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(srv.url);
    await page.locator('#signin-dialog[open]').waitFor();
    await page.locator('#status', { hasText: 'Sign in to chat' }).waitFor();
    await page.locator('#register-link a[href="/register"]').waitFor(); // registration is open
    assert.deepEqual(sockets, []);
    await page.fill('#signin-name', 'mo');
    await page.fill('#signin-password', 'correct horse battery');
    await page.click('#signin-form button[type=submit]');
    await page.locator('#account', { hasText: 'Signed in as Mo (admin)' }).waitFor();
    await connected(page);
    assert.equal(sockets.length, 1);
    await page.click('#signout');
    await page.locator('#status', { hasText: 'Sign in to chat' }).waitFor();
    await page.locator('#signin-dialog[open]').waitFor();
    assert.equal(sockets.length, 1); // no guest connection after signing out
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
    assert.equal(await stopPalaverd(srv), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});
