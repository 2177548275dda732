// Shared by the browser tests: start the real palaverd, launch Debian's
// chromium through playwright-core (never a downloaded browser).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const PALAVERD = process.env.PALAVERD || new URL('../../build/palaverd', import.meta.url).pathname;
export const HTDOCS = process.env.PALAVER_HTDOCS || new URL('../../htdocs', import.meta.url).pathname;
export const ARTIFACTS = process.env.PALAVER_ARTIFACTS || new URL('../../build/browser-artifacts', import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Starts palaverd and resolves once it logs that it listens (the line it
// writes right before READY=1). `port` 0 picks a free one.
export function startPalaverd({ port = 0, args = [], htdocs = HTDOCS } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(PALAVERD, ['--port', String(port), '--listen', '127.0.0.1',
      '--htdocs', htdocs, '--http-workers', '8', '--config', '/dev/null', '--data-dir', '', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const timer = setTimeout(() => reject(new Error(`palaverd did not start:\n${log}`)), 15000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on [\d.]+:(\d+)/);
      if (m && !proc.port) {
        clearTimeout(timer);
        proc.port = Number(m[1]);
        proc.url = `http://127.0.0.1:${proc.port}/`;
        resolve(proc);
      }
    });
    proc.log = () => log;
    proc.on('exit', (code) => {
      proc.exitCode = code;
      if (!proc.port) {
        clearTimeout(timer);
        reject(new Error(`palaverd exited with ${code}:\n${log}`));
      }
    });
  });
}

// SIGTERM and wait; resolves with the exit code.
export function stopPalaverd(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== undefined && proc.exitCode !== null) return resolve(proc.exitCode);
    proc.once('exit', (code) => resolve(code));
    proc.kill('SIGTERM');
  });
}

// `env`: Chromium's environment (the TLS test gives it a HOME whose NSS
// database trusts the test's CA); `args`: more command-line switches.
export async function launch({ env, args = [] } = {}) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'palaver-chromium-'));
  const context0 = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    ...(env ? { env: { ...process.env, ...env } } : {}),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', ...args],
  });
  const browser = context0.browser() || context0;
  return {
    // A fresh, isolated visitor: its own storage; console errors and page
    // errors are collected for the test to assert on.
    async visitor({ name, width = 1280, height = 800 } = {}) {
      const ctx = await (browser.newContext ? browser.newContext({ viewport: { width, height } })
        : context0);
      if (name) await ctx.addInitScript((n) => localStorage.setItem('palaver-name', n), name);
      const page = await ctx.newPage();
      page.errors = [];
      page.on('console', (msg) => { if (msg.type() === 'error') page.errors.push(msg.text()); });
      page.on('pageerror', (err) => page.errors.push(String(err)));
      page.dialogs = [];
      page.on('dialog', (d) => { page.dialogs.push(d.message()); d.dismiss(); });
      page.ctx = ctx;
      return page;
    },
    async close() {
      await context0.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

// Texts of the chat messages a page shows, in order.
export async function messageTexts(page) {
  return page.locator('#log .msg .text').allTextContents();
}

// Sends n chat messages "<prefix> <i>" from a second WebSocket opened in
// the page (a real browser client), and resolves when all are acknowledged.
export async function blast(page, n, prefix) {
  return page.evaluate(async ([count, pre]) => {
    const url = new URL('/ws', location.href);
    url.protocol = 'ws:';
    const ws = new WebSocket(url, 'palaver');
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
    let acks = 0;
    const done = new Promise((resolve) => {
      ws.onmessage = (ev) => {
        const m = JSON.parse(ev.data);
        if (m.type === 'ack' && ++acks === count) resolve();
      };
    });
    for (let i = 0; i < count; i++) {
      ws.send(JSON.stringify({ type: 'message', msgId: i, text: `${pre} ${i}`, clientKey: '', date: Date.now() }));
    }
    await done;
    ws.close();
    return acks;
  }, [n, prefix]);
}

export const PASSWORD = 'correct horse battery';
export const connected = (page) => page.locator('#status').filter({ hasText: /^Connected$/ }).waitFor({ timeout: 20000 });
export const roomButton = (page, label) => page.locator('#room-list button', { hasText: label });

// Registers (unless it is the admin) and signs in from the page itself,
// then reloads: the page connects as the account.
export async function signIn(page, url, name, register) {
  await page.goto(url);
  await connected(page);
  const status = await page.evaluate(async ([n, pw, reg]) => {
    const post = (path) => fetch(path, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: n, password: pw }),
    });
    if (reg) await post('/api/register');
    return (await post('/api/login')).status;
  }, [name, PASSWORD, register]);
  if (status !== 200) throw new Error(`sign-in of ${name}: HTTP ${status}`);
  await page.reload();
  await connected(page);
  await page.locator('#account', { hasText: `Signed in as ${name}` }).waitFor();
}

// Types text into the composer and sends it with Enter.
export async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

// The tutorials in ../shared/seeds/ (PALAVER_SEEDS), read at test time,
// never copied into this tree.
export const SEEDS = process.env.PALAVER_SEEDS || new URL('../../../shared/seeds', import.meta.url).pathname;

// A tutorial's fenced code blocks: { lang, body } (the info string's first
// word is the language: "js { linenos=table }" is "js").
export function fencedBlocks(text) {
  const out = [];
  for (const m of text.matchAll(/^```\s*(\w*)[^\n]*\n([\s\S]*?)^```/gm)) out.push({ lang: m[1], body: m[2] });
  return out;
}

// The text of the seed whose file name starts with prefix ("000_"), or null.
export function seedText(prefix) {
  if (!existsSync(SEEDS)) return null;
  const file = readdirSync(SEEDS).find((f) => f.startsWith(prefix));
  return file ? readFileSync(join(SEEDS, file), 'utf8') : null;
}

// Seed 000's final browser client: its page, its style and the last
// JavaScript block that opens a WebSocket; null without the seed.
export function seed000() {
  const text = seedText('000_');
  if (!text) return null;
  const blocks = fencedBlocks(text);
  const html = blocks.find((b) => b.lang === 'html' && /<!DOCTYPE html>/i.test(b.body));
  const css = blocks.find((b) => b.lang === 'css');
  const js = blocks.filter((b) => b.lang === 'javascript' && b.body.includes('new WebSocket(')).pop();
  return html && css && js ? { html: html.body, css: css.body, js: js.body } : null;
}
