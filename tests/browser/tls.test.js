// palaver over https:// and wss:// in real Chromium, through the real
// terminator: Debian's HAProxy with the tree's shipped configuration
// (cmake/tls/haproxy.cfg) and a CA and certificate made by the tree's
// cmake/tls/palaver-cert. Chromium trusts that CA the way a desktop does
// (its NSS database under $HOME), not by ignoring certificate errors.
// Two pages chat with names and acks, then palaverd restarts behind the
// proxy and both resume with nothing lost and nothing twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPalaverd, stopPalaverd, launch, messageTexts } from './helpers.js';

const TREE = new URL('../..', import.meta.url).pathname;

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// HAProxy in front of backendPort; resolves once it answers over TLS.
async function startHaproxy(dir, backendPort) {
  const [https, http] = [await freePort(), await freePort()];
  const proc = spawn('haproxy', ['-db', '-f', join(TREE, 'cmake/tls/haproxy.cfg')], {
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin`, PALAVER_TLS_TEST: '1',
      PALAVER_CERT: join(dir, 'palaver.pem'), PALAVER_HTTPS_BIND: `127.0.0.1:${https}`,
      PALAVER_HTTP_BIND: `127.0.0.1:${http}`, PALAVER_BACKEND: `127.0.0.1:${backendPort}`,
      PALAVER_MAXCONN: '1000' },
    stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  proc.log = () => log;
  proc.port = https;
  // Ready when it accepts: connect attempts, bounded.
  const { connect } = await import('node:net');
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const c = connect(https, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return proc;
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  proc.kill('SIGKILL');
  throw new Error(`haproxy did not start:\n${log}`);
}

test('https and wss through HAProxy: two pages chat, names, acks, resume after palaverd restarts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palaver-tls-browser-'));
  const home = join(dir, 'home');
  const data = join(dir, 'data');
  mkdirSync(join(home, '.pki', 'nssdb'), { recursive: true });
  mkdirSync(data);
  execFileSync(join(TREE, 'cmake/tls/palaver-cert'), ['--dir', dir, 'localhost', '127.0.0.1']);
  // The CA into the NSS database Chromium reads on Linux (~/.pki/nssdb).
  const db = `sql:${join(home, '.pki', 'nssdb')}`;
  execFileSync('certutil', ['-d', db, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', db, '-A', '-t', 'C,,', '-n', 'palaver test CA', '-i', join(dir, 'ca.pem')]);

  const port = await freePort();
  const args = ['--trusted-proxies', '127.0.0.1', '--data-dir', data];
  let srv = await startPalaverd({ port, args });
  const proxy = await startHaproxy(dir, port);
  const browser = await launch({ env: { HOME: home } });
  const url = `https://localhost:${proxy.port}/`;
  try {
    const ann = await browser.visitor({ name: 'Ann' });
    const bob = await browser.visitor({ name: 'Bob' });
    for (const p of [ann, bob]) {
      const resp = await p.goto(url);
      assert.equal(resp.status(), 200);
      const sec = await resp.securityDetails();
      assert.ok(sec && /^TLS 1\.[23]$/.test(sec.protocol), `TLS: ${sec && sec.protocol}`);
      assert.equal(sec.issuer.startsWith('palaver local CA'), true, `issuer: ${sec.issuer}`);
      await p.locator('#status', { hasText: /^Connected$/ }).waitFor();
      assert.equal(await p.evaluate(() => window.isSecureContext), true);
    }
    for (const p of [ann, bob]) await p.locator('#count', { hasText: /^2$/ }).waitFor();
    await ann.locator('#users li', { hasText: 'Bob' }).waitFor();

    await ann.fill('#text', 'over wss');
    await ann.press('#text', 'Enter');
    await bob.locator('#log .msg', { hasText: 'over wss' }).waitFor();
    await ann.locator('#log .msg.mine', { hasText: 'over wss' }).locator('.state[data-state="sent"]').waitFor();
    // The page was served over https, so its WebSocket is wss:// (Chromium
    // blocks ws:// from an https page) and its origin https://localhost:N,
    // which palaverd accepted only because the trusted proxy said https.
    assert.doesNotMatch(srv.log(), /refused/);

    for (const p of [ann, bob]) assert.deepEqual(p.errors, []);

    // palaverd restarts behind the proxy; the pages come back by themselves.
    // (While it is away HAProxy answers their retries 502/503, which
    // Chromium itself reports on the console: those lines only.)
    assert.equal(await stopPalaverd(srv), 0);
    for (const p of [ann, bob]) await p.locator('#status', { hasText: /^Reconnecting in \d+ s$/ }).waitFor();
    srv = await startPalaverd({ port, args });
    for (const p of [ann, bob]) await p.locator('#status', { hasText: /^Connected$/ }).waitFor({ timeout: 20000 });
    await bob.fill('#text', 'after the restart');
    await bob.press('#text', 'Enter');
    await ann.locator('#log .msg', { hasText: 'after the restart' }).waitFor();
    await bob.locator('#log .msg.mine', { hasText: 'after the restart' }).locator('.state[data-state="sent"]').waitFor();
    for (const p of [ann, bob]) assert.deepEqual(await messageTexts(p), ['over wss', 'after the restart']);
    // A fresh page after the restart gets the history from disk, over wss.
    const cat = await browser.visitor({ name: 'Cat' });
    await cat.goto(url);
    await cat.locator('#status', { hasText: /^Connected$/ }).waitFor();
    await cat.locator('#log .msg', { hasText: 'after the restart' }).waitFor();
    assert.deepEqual(await messageTexts(cat), ['over wss', 'after the restart']);
    const ours = (p) => p.errors.filter((e) => !/^WebSocket connection to 'wss:.*Unexpected response code: 50[23]$/.test(e));
    for (const p of [ann, bob, cat]) assert.deepEqual(ours(p), []);
  } finally {
    await browser.close();
    proxy.kill('SIGUSR1');
    await stopPalaverd(srv);
    rmSync(dir, { recursive: true, force: true });
  }
});
