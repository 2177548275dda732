// Pure helpers for the page: nothing here touches the network, and what it
// builds from text is text nodes and plain <a> elements only.

const encoder = new TextEncoder();

// Bytes of UTF-8: the unit of palaverd's --max-text.
export function utf8Length(s) {
  return encoder.encode(s).length;
}

// Up to two letters: first letters of the first two words, else the first
// two characters (code points, so an emoji stays whole).
export function initials(name) {
  const words = (name || '?').trim().split(/\s+/u).filter(Boolean);
  const chars = words.length > 1 ? [[...words[0]][0], [...words[1]][0]] : [...(words[0] || '?')].slice(0, 2);
  return chars.join('').toUpperCase();
}

// A stable hue for a name (FNV-1a over its UTF-16 units).
export function avatarColor(name) {
  let h = 0x811c9dc5;
  for (let i = 0; i < (name || '').length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 360;
}

// A URL ends at white space, quotes and angle brackets, and at any
// invisible formatting character: bidi controls (U+202A-202E, U+2066-2069,
// U+200E/F, U+061C) and zero-width ones (U+200B-200D, U+2060, U+FEFF), so
// "http://x.example/\u202Efdp.exe" links http://x.example/ only and cannot
// display as a different address.
const URL_RE = /\bhttps?:\/\/[^\s<>"'`\u061C\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF]+/giu;
const TRAILING = /[.,;:!?)\]}]+$/u;

// Text nodes, with http(s) URLs as links that open in a new tab without
// giving it a handle on this page or the referrer. Each link is isolated
// (<bdi>, dir=ltr): right-to-left text around it cannot reorder what it
// shows, so a link's text is always its address, left to right.
export function linkify(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0];
    const trail = url.match(TRAILING);
    if (trail) url = url.slice(0, -trail[0].length);
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    const a = document.createElement('a');
    a.href = url;
    a.textContent = url;
    a.rel = 'noopener noreferrer';
    a.target = '_blank';
    a.dir = 'ltr';
    const iso = document.createElement('bdi');
    iso.append(a);
    out.push(iso);
    last = m.index + url.length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out.flatMap((n) => (n.nodeType === 3 ? mentionNodes(n.data) : [n]));
}

// @name: letters, digits and _ . - after an "@" that does not follow a
// word character (so mail@example.org is not a mention).
const MENTION_RE = /(?<![\p{L}\p{N}_@])@([\p{L}\p{N}_][\p{L}\p{N}_.-]{0,31})/gu;

// Text nodes with each @name in a <span class="mention"> (text only).
function mentionNodes(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(MENTION_RE)) {
    let tag = m[0].replace(/[.-]+$/u, '');
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    const span = document.createElement('span');
    span.className = 'mention';
    span.textContent = tag;
    out.push(span);
    last = m.index + tag.length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

// Whether text mentions `name` (@name, any case, not followed by more of
// a name). A name with spaces is matched whole ("@Ann Lee").
export function mentions(text, name) {
  if (!name || typeof text !== 'string') return false;
  const t = text.toLocaleLowerCase();
  const n = `@${name.toLocaleLowerCase()}`;
  for (let i = t.indexOf(n); i >= 0; i = t.indexOf(n, i + 1)) {
    const before = i === 0 ? '' : t[i - 1];
    const after = t.slice(i + n.length, i + n.length + 1);
    if (!/[\p{L}\p{N}_@]/u.test(before) && !/[\p{L}\p{N}_]/u.test(after)) return true;
  }
  return false;
}
