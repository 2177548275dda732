// Registration, from an invite link /register#<code> (docs/accounts.md):
// the code is in the fragment, which no request, Referer or log carries;
// it goes to the server once, in the body of the POST. Without a code the
// server decides (registration = open lets anyone in).
const $ = (id) => document.getElementById(id);
const invite = decodeURIComponent(location.hash.slice(1));
history.replaceState(null, '', location.pathname); // out of the address bar and history
const error = $('register-error');

$('register-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const password = $('register-password');
  const body = { name: $('register-name').value.trim(), password: password.value };
  if (invite) body.invite = invite;
  const r = await fetch('/api/register', {
    method: 'POST', credentials: 'same-origin', cache: 'no-store',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  let data = {};
  try { data = await r.json(); } catch { /* no body */ }
  if (!r.ok) {
    password.value = '';
    error.textContent = data.message || `Registration failed (HTTP ${r.status}).`;
    error.hidden = false;
    return;
  }
  location.assign('/');
});
