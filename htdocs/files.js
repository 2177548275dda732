// Shared files in the page (docs/files.md): uploads with progress and
// cancel, the previews this page draws itself, what a message's files
// look like in the list, and the lightbox.
//
// Previews: palaverd decodes no image. The browser does, in its sandbox:
// the picture is drawn on a canvas at PREVIEW_SIZES and encoded again
// as a JPEG, which also leaves every metadata block behind --
// EXIF, and in it a phone photo's GPS position. A JPEG whose EXIF holds a
// position is, unless the person unticks "Remove location", sent as a
// full-size copy drawn the same way instead of the original bytes.
//
// Safety: names, types and sizes come from the network and are only ever
// set as text or attributes, never as HTML; files are only ever loaded
// from this origin's /files/ (the server's ids), never from a URL a
// message carries.

export const PREVIEW_SIZES = [320, 1280];
const INLINE_IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

// ---- EXIF ------------------------------------------------------------------

// Whether the JPEG in `buf` (an ArrayBuffer) carries an EXIF GPS block
// with at least one entry. Reads only what it needs; anything malformed
// is "no".
export function jpegHasGps(buf) {
  const b = new DataView(buf);
  if (b.byteLength < 4 || b.getUint16(0) !== 0xffd8) return false;
  let off = 2;
  while (off + 4 <= b.byteLength) {
    const marker = b.getUint16(off);
    if ((marker & 0xff00) !== 0xff00 || marker === 0xffda) return false; // image data: no more headers
    const len = b.getUint16(off + 2);
    if (len < 2) return false;
    if (marker === 0xffe1 && off + 10 <= b.byteLength && b.getUint32(off + 4) === 0x45786966) { // "Exif"
      try {
        return exifHasGps(new DataView(buf, off + 10, Math.min(len - 8, b.byteLength - off - 10)));
      } catch {
        return false;
      }
    }
    off += 2 + len;
  }
  return false;
}

function exifHasGps(t) {
  const little = t.getUint16(0) === 0x4949; // "II"
  const u16 = (o) => t.getUint16(o, little);
  const u32 = (o) => t.getUint32(o, little);
  if (u16(2) !== 42) return false;
  const ifd0 = u32(4);
  const n = u16(ifd0);
  for (let i = 0; i < n; i++) {
    const e = ifd0 + 2 + i * 12;
    if (u16(e) === 0x8825) { // GPSInfo: the offset of the GPS IFD
      const gps = u32(e + 8);
      return gps + 2 <= t.byteLength && u16(gps) > 0;
    }
  }
  return false;
}

// ---- drawing ---------------------------------------------------------------

// The image in `file` decoded by the browser, or null if it is not one
// the browser can decode.
export async function decode(file) {
  if (!INLINE_IMAGES.has(file.type) && !/\.(png|jpe?g|gif|webp)$/i.test(file.name)) return null;
  try {
    return await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    return null;
  }
}

// `bitmap` drawn at most `max` px a side, encoded as a JPEG (quality
// 0.85; 0.92 for a full-size copy). Not WebP: Chromium writes its WebP
// in the extended (VP8X) form, whose size libmagic does not read, and
// the server checks every preview's size. Resolves to a Blob.
export function draw(bitmap, max, type) {
  const scale = Math.min(1, max / Math.max(bitmap.width, bitmap.height));
  const c = document.createElement('canvas');
  c.width = Math.max(1, Math.round(bitmap.width * scale));
  c.height = Math.max(1, Math.round(bitmap.height * scale));
  // Opaque (JPEG has no alpha): transparent pixels become white.
  const g = c.getContext('2d', { alpha: false });
  g.fillStyle = '#fff';
  g.fillRect(0, 0, c.width, c.height);
  g.imageSmoothingQuality = 'high';
  g.drawImage(bitmap, 0, 0, c.width, c.height);
  const encode = (t, q) => new Promise((ok) => c.toBlob(ok, t, q));
  return encode(type || 'image/jpeg', type ? 0.92 : 0.85);
}

// ---- uploading -------------------------------------------------------------

export class UploadError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

// POST /api/files: resolves to the file's description, rejects with an
// UploadError (the server's message) or an AbortError. `progress(sent,
// total)`; `signal` cancels.
export function upload(blob, { room, name, preview, progress, signal }) {
  return new Promise((resolve, reject) => {
    const q = new URLSearchParams({ room, name });
    if (preview) q.set('preview', preview);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/files?${q}`);
    xhr.responseType = 'json';
    xhr.upload.onprogress = (ev) => progress && progress(ev.loaded, ev.total);
    xhr.onload = () => {
      const body = xhr.response || {};
      if (xhr.status === 201) resolve(body);
      else reject(new UploadError(body.message || `upload failed (HTTP ${xhr.status})`, body.error));
    };
    xhr.onerror = () => reject(new UploadError('the upload was cut off: check the connection', 'network'));
    xhr.onabort = () => reject(new DOMException('cancelled', 'AbortError'));
    if (signal) signal.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(blob);
  });
}

// One file of the composer's tray, uploaded with its previews. `onchange`
// is called whenever its state or progress moves. state: 'uploading',
// 'ready' (desc is the description a message carries), 'failed' (error),
// 'cancelled'.
export class Attachment {
  constructor(file, room, { stripLocation = true, onchange } = {}) {
    this.file = file;
    this.name = file.name || 'pasted image';
    this.room = room;
    this.onchange = onchange || (() => {});
    this.state = 'uploading';
    this.sent = 0;
    this.total = file.size;
    this.error = '';
    this.desc = null;
    this.hasGps = false;
    this.stripLocation = stripLocation;
    this.controller = new AbortController();
    this.done = this.run();
  }

  cancel() {
    this.controller.abort();
  }

  async run() {
    try {
      const bitmap = await decode(this.file);
      let original = this.file;
      if (bitmap && this.file.type === 'image/jpeg') {
        this.hasGps = jpegHasGps(await this.file.arrayBuffer());
        if (this.hasGps && this.stripLocation) {
          original = await draw(bitmap, Math.max(bitmap.width, bitmap.height), 'image/jpeg');
          this.stripped = true;
        }
      }
      const previews = [];
      if (bitmap && this.file.type !== 'image/gif') { // an animation keeps moving as itself
        for (const size of PREVIEW_SIZES) {
          if (size !== PREVIEW_SIZES[0] && Math.max(bitmap.width, bitmap.height) <= PREVIEW_SIZES[0]) break;
          previews.push(await draw(bitmap, size));
        }
      }
      if (bitmap) bitmap.close();
      this.total = original.size + previews.reduce((n, b) => n + b.size, 0);
      this.onchange(this);
      let base = 0;
      const step = (blob, preview, name) => upload(blob, {
        room: this.room,
        name,
        preview,
        signal: this.controller.signal,
        progress: (n) => { this.sent = base + n; this.onchange(this); },
      }).then((d) => { base += blob.size; return d; });
      const desc = await step(original, null, this.name);
      desc.previews = [];
      for (const b of previews) {
        const p = await step(b, desc.id, `preview-${this.name}`);
        desc.previews.push({ id: p.id, type: p.type, width: p.width, height: p.height });
      }
      if (!desc.previews.length) delete desc.previews;
      this.desc = desc;
      this.state = 'ready';
    } catch (e) {
      this.state = e && e.name === 'AbortError' ? 'cancelled' : 'failed';
      this.error = e && e.message ? e.message : String(e);
    }
    this.onchange(this);
  }
}

// ---- showing ---------------------------------------------------------------

export function humanSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(1)} GB`;
}

const idOk = (id) => typeof id === 'string' && /^[A-Za-z0-9_-]{22}$/.test(id);
const fileUrl = (id) => `/files/${id}`;

// The preview of `f` nearest to `want` px wide (or the original when it
// is a small inline image without previews).
function previewOf(f, want) {
  const list = (Array.isArray(f.previews) ? f.previews : []).filter((p) => idOk(p.id));
  if (!list.length) return f.inline && INLINE_IMAGES.has(f.type) ? f : null;
  return list.find((p) => p.width >= want) || list[list.length - 1];
}

// The element showing a message's files: images as previews in a box of
// their own proportions (so the list does not jump as they load), audio
// and video as players, anything else as a card to download.
export function renderFiles(files, openLightbox) {
  const box = document.createElement('div');
  box.className = 'files';
  for (const f of Array.isArray(files) ? files : []) {
    if (!f || !idOk(f.id)) continue;
    const name = typeof f.name === 'string' ? f.name : 'file';
    const type = typeof f.type === 'string' ? f.type : 'application/octet-stream';
    const size = Number.isFinite(f.size) ? f.size : 0;
    const shown = f.inline && INLINE_IMAGES.has(type) ? previewOf(f, 320) : null;
    if (shown) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'thumb';
      b.title = `${name} (${humanSize(size)}): open`;
      const img = document.createElement('img');
      img.loading = 'lazy';
      img.decoding = 'async';
      img.alt = name;
      const w = Number(shown.width || f.width) || 320;
      const h = Number(shown.height || f.height) || 240;
      img.width = w;
      img.height = h;
      img.src = fileUrl(shown.id);
      b.append(img);
      b.addEventListener('click', () => openLightbox(f));
      box.append(b);
    } else if (f.inline && /^(video|audio)\//.test(type)) {
      const m = document.createElement(type.startsWith('video/') ? 'video' : 'audio');
      m.controls = true;
      m.preload = 'metadata';
      m.src = fileUrl(f.id);
      m.title = name;
      box.append(m);
    } else {
      box.append(fileCard(f.id, name, size, type));
    }
  }
  return box;
}

function fileCard(id, name, size, type) {
  const a = document.createElement('a');
  a.className = 'file-card';
  a.href = fileUrl(id);
  a.download = name;
  a.rel = 'noopener';
  const n = document.createElement('span');
  n.className = 'file-name';
  n.dir = 'auto';
  n.textContent = name;
  const meta = document.createElement('span');
  meta.className = 'file-meta';
  meta.textContent = `${humanSize(size)} · ${type === 'application/octet-stream' ? 'file' : type}`;
  a.append(n, meta);
  return a;
}

// The lightbox: the largest preview, the name, and the original to
// download. `dialog` is the page's <dialog id="lightbox">.
export function lightbox(dialog) {
  const img = dialog.querySelector('img');
  const caption = dialog.querySelector('.caption');
  const link = dialog.querySelector('a.original');
  dialog.querySelector('.close').addEventListener('click', () => dialog.close());
  dialog.addEventListener('click', (ev) => { if (ev.target === dialog) dialog.close(); });
  dialog.addEventListener('close', () => img.removeAttribute('src'));
  return (f) => {
    const big = previewOf(f, 1280) || f;
    img.alt = f.name;
    img.width = Number(big.width || f.width) || 1280;
    img.height = Number(big.height || f.height) || 960;
    img.src = fileUrl(big.id);
    caption.textContent = `${f.name} · ${humanSize(f.size || 0)}${f.width ? ` · ${f.width}×${f.height}` : ''}`;
    link.href = fileUrl(f.id);
    link.download = f.name;
    dialog.showModal();
    dialog.querySelector('.close').focus();
  };
}
