// Fires N sign-ins at once (POST /api/login, the right password) and
// prints one JSON line: how many got 200, 503 (every hash slot busy) or
// anything else, and the latency percentiles of the 200s.
//   node bench/login-burst.js URL NAME PASSWORD N
const [url, name, password, nStr] = process.argv.slice(2);
const n = Number(nStr || 200);
const body = JSON.stringify({ name, password });
const one = async () => {
  const t0 = performance.now();
  try {
    const r = await fetch(new URL('/api/login', url), {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body,
      signal: AbortSignal.timeout(30000), // a request never answered is counted, not waited for
    });
    await r.arrayBuffer();
    return { status: r.status, ms: performance.now() - t0 };
  } catch (e) {
    return { status: 0, ms: performance.now() - t0, error: String(e) };
  }
};
const t0 = performance.now();
const all = await Promise.all(Array.from({ length: n }, one));
const wall = performance.now() - t0;
const ok = all.filter((r) => r.status === 200).map((r) => r.ms).sort((a, b) => a - b);
const pct = (p) => (ok.length ? ok[Math.min(ok.length - 1, Math.floor((p / 100) * ok.length))] : null);
const count = (s) => all.filter((r) => r.status === s).length;
console.log(JSON.stringify({
  logins: n, ok: ok.length, busy503: count(503), other: n - ok.length - count(503),
  p50_ms: pct(50), p90_ms: pct(90), p99_ms: pct(99), max_ms: ok.length ? ok[ok.length - 1] : null,
  wall_ms: wall, per_login_ms: ok.length ? wall / ok.length : null,
}));
