// The one-time setup link, /setup#<token> (docs/accounts.md): the token
// is in the fragment, which the browser never sends in a request, a
// Referer or a log. It goes to the server once, in the body of the POST.
const $ = (id) => document.getElementById(id);
const token = decodeURIComponent(location.hash.slice(1));
history.replaceState(null, '', location.pathname); // out of the address bar and history
const form = $('setup-form');
const error = $('setup-error');

function fail(text) {
  error.textContent = text;
  error.hidden = false;
}

if (!token) fail('This page needs the link from palaverd\u2019s log (it ends in #\u2026).');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const password = $('setup-password');
  const r = await fetch('/api/setup', {
    method: 'POST', credentials: 'same-origin', cache: 'no-store',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token, name: $('setup-name').value.trim(), password: password.value }),
  });
  let data = {};
  try { data = await r.json(); } catch { /* no body */ }
  if (!r.ok) {
    password.value = '';
    fail(data.message || `Setup failed (HTTP ${r.status}).`);
    return;
  }
  location.assign('/');
});
