// Turns one bench session's results.jsonl into summary.md (tables, the
// palaver/reference ratios measured in that same session, the targets)
// and gnuplot scripts for the SVG plots.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const [resultsFile, outDir] = process.argv.slice(2);
const rows = fs.readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
for (const r of rows) {
  [r.scenario, r.run, r.target, r.rep] = r.label.split('/');
  r.rep = Number(r.rep || 1);
}

// The tables and ratios below take the first round of a repeated scenario;
// repeated scenarios also get their own min/median/max section.
const byKey = new Map(rows.filter((r) => r.rep === 1).map((r) => [`${r.scenario}/${r.run}/${r.target}`, r]));
const get = (scenario, run, target) => byKey.get(`${scenario}/${run}/${target}`);
const ms = (us) => (us / 1000).toFixed(us < 10000 ? 2 : 1);
const num = (n) => Math.round(n).toLocaleString('en-US');
const ratio = (a, b) => (b ? a / b : NaN);

const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] || '?';
let md = `# palaver bench, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n`;
md += `Machine: ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, `;
md += `Linux ${os.release()}. palaverd (Release), uWebSockets (\`uws\`) and the Node.js \`ws\` reference ran `;
md += 'interleaved in this one session, on loopback, sharing the cores with the load generator. ';
md += 'Ratios are palaver / uws and palaver / reference from this session only.\n\n';

const scenarios = [...new Set(rows.map((r) => r.scenario))];
for (const sc of scenarios) {
  md += `## ${sc}\n\n`;
  md += '| run | server | connected | delivered / expected | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | echo/gap/dup | server CPU s | server RSS MB | RSS/conn kB | bench CPU s |\n';
  md += '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n';
  const runs = [...new Set(rows.filter((r) => r.scenario === sc).map((r) => r.run))];
  for (const run of runs) {
    for (const r of rows.filter((x) => x.scenario === sc && x.run === run)) {
      md += `| ${run} | ${r.target} | ${r.connected}${r.stalled ? ` (+${r.stalled} stalled)` : ''} | `;
      md += `${num(r.delivered)} / ${num(r.expected)} (${r.ratio.toFixed(4)}) | ${num(r.deliveries_per_s)} | `;
      md += `${ms(r.p50_us)} | ${ms(r.p90_us)} | ${ms(r.p99_us)} | ${ms(r.p999_us)} | ${ms(r.max_us)} | `;
      md += `${r.echoes}/${r.gaps}/${r.dups} | ${r.broker_cpu_s.toFixed(2)} | ${(r.broker_rss_kb / 1024).toFixed(1)} | `;
      md += `${r.rss_per_conn_kb.toFixed(1)} | ${r.bench_cpu_s.toFixed(2)} |\n`;
    }
    const p = get(sc, run, 'palaver');
    const ref = get(sc, run, 'reference');
    const before = get(sc, run, 'before');
    if (p && before) {
      md += `| ${run} | **palaver / before** | | | **${ratio(p.deliveries_per_s, before.deliveries_per_s).toFixed(2)}x** | `;
      md += `${ratio(p.p50_us, before.p50_us).toFixed(2)}x | ${ratio(p.p90_us, before.p90_us).toFixed(2)}x | `;
      md += `**${ratio(p.p99_us, before.p99_us).toFixed(2)}x** | ${ratio(p.p999_us, before.p999_us).toFixed(2)}x | | | `;
      md += `${ratio(p.broker_cpu_s, before.broker_cpu_s).toFixed(2)}x | ${ratio(p.broker_rss_kb, before.broker_rss_kb).toFixed(2)}x | | |\n`;
    }
    const members = get(sc, run, 'members');
    if (p && members) {
      md += `| ${run} | **members / palaver** | | | **${ratio(members.deliveries_per_s, p.deliveries_per_s).toFixed(2)}x** | `;
      md += `${ratio(members.p50_us, p.p50_us).toFixed(2)}x | ${ratio(members.p90_us, p.p90_us).toFixed(2)}x | `;
      md += `**${ratio(members.p99_us, p.p99_us).toFixed(2)}x** | ${ratio(members.p999_us, p.p999_us).toFixed(2)}x | | | `;
      md += `${ratio(members.broker_cpu_s, p.broker_cpu_s).toFixed(2)}x | ${ratio(members.broker_rss_kb, p.broker_rss_kb).toFixed(2)}x | | |\n`;
    }
    const tls = get(sc, run, 'tls');
    if (p && tls) { // behind HAProxy with TLS vs direct; HAProxy's own CPU beside palaverd's
      md += `| ${run} | **tls / palaver** | | | **${ratio(tls.deliveries_per_s, p.deliveries_per_s).toFixed(2)}x** | `;
      md += `${ratio(tls.p50_us, p.p50_us).toFixed(2)}x | ${ratio(tls.p90_us, p.p90_us).toFixed(2)}x | `;
      md += `**${ratio(tls.p99_us, p.p99_us).toFixed(2)}x** | ${ratio(tls.p999_us, p.p999_us).toFixed(2)}x | | | `;
      md += `${ratio(tls.broker_cpu_s, p.broker_cpu_s).toFixed(2)}x (+ HAProxy ${(tls.proxy_cpu_s || 0).toFixed(2)} s) | | | |\n`;
    }
    for (const [name, q] of [['uws', get(sc, run, 'uws')], ['reference', ref]]) {
      if (!p || !q) continue;
      md += `| ${run} | **palaver / ${name}** | | | **${ratio(p.deliveries_per_s, q.deliveries_per_s).toFixed(2)}x** | `;
      md += `${ratio(p.p50_us, q.p50_us).toFixed(2)}x | ${ratio(p.p90_us, q.p90_us).toFixed(2)}x | `;
      md += `**${ratio(p.p99_us, q.p99_us).toFixed(2)}x** | ${ratio(p.p999_us, q.p999_us).toFixed(2)}x | | | `;
      md += `${ratio(p.broker_cpu_s, q.broker_cpu_s).toFixed(2)}x | ${ratio(p.broker_rss_kb, q.broker_rss_kb).toFixed(2)}x | | |\n`;
    }
  }
  md += '\n';
  for (const r of rows.filter((x) => x.scenario === sc && x.page_status)) {
    md += `- ${r.run} ${r.target}: ${r.connected} connected in ${r.connect_s.toFixed(2)} s `;
    md += `(${num(r.connected / r.connect_s)}/s), ${r.threads_idle} threads, `;
    md += `${r.rss_per_conn_kb.toFixed(1)} kB RSS per idle connection, GET / -> HTTP ${r.page_status} in ${r.page_ms.toFixed(1)} ms\n`;
  }
  for (const r of rows.filter((x) => x.scenario === sc && x.churn_cycles)) {
    md += `- ${r.run} ${r.target}: ${num(r.churn_cycles)} connect/leave cycles during the run\n`;
  }
  md += '\n';
}

// Repeated scenarios (REPEATS in the .conf): every shape ran several
// times, interleaved across the servers. Per shape and server: min, median
// and max deliveries/s, the worst p99, server CPU seconds per million
// deliveries and RSS per connected client (medians), and every run below
// half its shape's median flagged: a collapse is a result, not noise.
const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? (v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : NaN;
};
const repeated = [...new Set(rows.filter((r) => r.rep > 1).map((r) => r.scenario))];
const sweep = new Map(); // scenario/run/target -> {median, min, ...}
for (const sc of repeated) {
  md += `## ${sc}: ${Math.max(...rows.filter((r) => r.scenario === sc).map((r) => r.rep))} interleaved rounds\n\n`;
  md += '| shape | server | runs | deliveries/s min | median | max | worst p99 ms | CPU s per M deliveries | RSS per client kB | ratio 1.0, no echo/gap/dup | collapses (< median / 2) |\n';
  md += '|---|---|---|---|---|---|---|---|---|---|---|\n';
  const runs = [...new Set(rows.filter((r) => r.scenario === sc).map((r) => r.run))];
  const flagged = [];
  const notes = []; // HAProxy's CPU in the "tls" rows
  for (const run of runs) {
    const servers = [...new Set(rows.filter((r) => r.scenario === sc && r.run === run).map((r) => r.target))];
    for (const tg of servers) {
      const rs = rows.filter((r) => r.scenario === sc && r.run === run && r.target === tg);
      const d = rs.map((r) => r.deliveries_per_s);
      const med = median(d);
      const low = rs.filter((r) => r.deliveries_per_s < med / 2);
      for (const r of low) flagged.push(`${run} ${tg} round ${r.rep}: ${num(r.deliveries_per_s)}/s (median ${num(med)}), p99 ${ms(r.p99_us)} ms, server CPU ${r.broker_cpu_s.toFixed(2)} s`);
      const cpuPerM = median(rs.map((r) => (r.delivered ? (r.broker_cpu_s / r.delivered) * 1e6 : NaN)));
      if (rs.some((r) => r.proxy_cpu_s)) {
        const proxyPerM = median(rs.map((r) => (r.delivered ? (r.proxy_cpu_s / r.delivered) * 1e6 : NaN)));
        notes.push(`${run} ${tg}: HAProxy CPU ${proxyPerM.toFixed(2)} s per M deliveries beside palaverd's ${cpuPerM.toFixed(2)}`);
      }
      const rssPer = median(rs.map((r) => (r.connected ? r.broker_rss_kb / r.connected : NaN)));
      const clean = rs.every((r) => r.ratio === 1 && !r.echoes && !r.gaps && !r.dups);
      sweep.set(`${sc}/${run}/${tg}`, { med, min: Math.min(...d), max: Math.max(...d), cpuPerM, rssPer });
      md += `| ${run} | ${tg} | ${rs.length} | ${num(Math.min(...d))} | **${num(med)}** | ${num(Math.max(...d))} | `;
      md += `${ms(Math.max(...rs.map((r) => r.p99_us)))} | ${cpuPerM.toFixed(2)} | ${rssPer.toFixed(1)} | ${clean ? 'yes' : '**no**'} | ${low.length ? `**${low.length}**` : 0} |\n`;
    }
    const p = sweep.get(`${sc}/${run}/palaver`);
    for (const ref of ['uws', 'reference']) {
      const q = sweep.get(`${sc}/${run}/${ref}`);
      if (p && q) {
        md += `| ${run} | **palaver / ${ref}** | | ${ratio(p.min, q.min).toFixed(2)}x | **${ratio(p.med, q.med).toFixed(2)}x** | `;
        md += `${ratio(p.max, q.max).toFixed(2)}x | | ${ratio(p.cpuPerM, q.cpuPerM).toFixed(2)}x | ${ratio(p.rssPer, q.rssPer).toFixed(2)}x | | |\n`;
      }
    }
  }
  md += '\n';
  if (notes.length) md += `${notes.map((n) => `- ${n}`).join('\n')}\n\n`;
  md += flagged.length ? `Runs below half their shape's median:\n\n${flagged.map((f) => `- ${f}`).join('\n')}\n\n`
    : 'No run fell below half its shape\'s median.\n\n';
}

// Paired shapes: each "X-<suffix>" run beside its "X-plain" of the same
// round and server, as ratios measured in this session -- what read
// markers cost the chat (issue 18), what uploads cost it (issue 19), what
// the seeds' dialects cost (issue 20).
function pairSection(suffix, title, what, extra) {
  const runs = rows.filter((r) => r.run.endsWith(`-${suffix}`));
  if (!runs.length) return;
  md += `## ${title}\n\n`;
  md += `| shape | server | round | deliveries/s plain | ${what} | ratio | p99 ms plain | ${what} | ratio | max ms ${what} |${extra ? extra.head : ''}\n`;
  md += `|---|---|---|---|---|---|---|---|---|---|${extra ? extra.head.replace(/[^|]+\|/g, '---|') : ''}\n`;
  const med = new Map();
  for (const m of runs) {
    const shape = m.run.replace(new RegExp(`-${suffix}$`), '');
    const p = rows.find((r) => r.scenario === m.scenario && r.run === `${shape}-plain` && r.target === m.target && r.rep === m.rep);
    if (!p) continue;
    const dr = ratio(m.deliveries_per_s, p.deliveries_per_s), pr = ratio(m.p99_us, p.p99_us);
    md += `| ${shape} | ${m.target} | ${m.rep} | ${num(p.deliveries_per_s)} | ${num(m.deliveries_per_s)} | **${dr.toFixed(2)}x** | `;
    md += `${ms(p.p99_us)} | ${ms(m.p99_us)} | **${pr.toFixed(2)}x** | ${ms(m.max_us)} |${extra ? extra.row(m, p) : ''}\n`;
    const k = `${shape}/${m.target}`;
    if (!med.has(k)) med.set(k, { d: [], p: [] });
    med.get(k).d.push(dr);
    med.get(k).p.push(pr);
  }
  md += '\n';
  for (const [k, v] of med) {
    md += `- ${k}: ratio ${what} / plain: deliveries/s median **${median(v.d).toFixed(2)}x** (worst ${Math.min(...v.d).toFixed(2)}x), p99 median **${median(v.p).toFixed(2)}x** (worst ${Math.max(...v.p).toFixed(2)}x) (${v.d.length} rounds)\n`;
  }
  md += '\n';
}
pairSection('markers', 'Read markers vs none, same round', 'with markers', {
  head: ' server CPU s ratio | markers per chat message | receipt frames per chat message |',
  row: (m, p) => ` ${ratio(m.broker_cpu_s, p.broker_cpu_s).toFixed(2)}x | ${ratio(m.markers || 0, m.acked).toFixed(2)} | ${ratio(m.receipt_frames || 0, m.acked).toFixed(3)} |`,
});
pairSection('uploads', 'Uploads vs none, same round', 'with uploads',
  { head: ' uploads | MB/s | refused |', row: (m) => ` ${m.uploads || 0} | ${(m.upload_mb_s || 0).toFixed(1)} | ${m.upload_errors || 0} |` });
pairSection('mixed', 'Readers in the seeds\' dialects vs all on palaver\'s protocol, same round', 'mixed dialects');

// Durability: acks wait for the commit, so acked messages/s is the rate at
// which messages become durable; run.sh records palaverd's commit counters.
const storeFile = path.join(outDir, 'store.jsonl');
const store = new Map((fs.existsSync(storeFile) ? fs.readFileSync(storeFile, 'utf8').split('\n').filter(Boolean) : [])
  .map((l) => JSON.parse(l)).map((x) => [x.label, x]));
const durable = rows.filter((r) => r.scenario === 'durable');
if (durable.length) {
  md += '## durable: acknowledged (committed) messages/s\n\n';
  md += '| run | server | acked messages/s | deliveries/s | transactions | messages per transaction | p99 ms |\n';
  md += '|---|---|---|---|---|---|---|\n';
  for (const r of durable) {
    const st = store.get(r.label);
    md += `| ${r.run} | ${r.target} | ${num(r.acked / r.seconds)} | ${num(r.deliveries_per_s)} | `;
    md += `${st ? num(st.transactions) : '-'} | ${st && st.transactions ? (st.messages / st.transactions).toFixed(1) : '-'} | ${ms(r.p99_us)} |\n`;
  }
  md += '\n';
}

// Targets from issue 3.
const t = [];
const check = (name, ok, detail) => t.push(`| ${name} | ${ok === null ? 'not run' : ok ? 'met' : '**missed**'} | ${detail} |`);
{
  const p = get('fanout', 'clients-1000', 'palaver');
  const r = get('fanout', 'clients-1000', 'reference');
  const x = p && r ? ratio(p.deliveries_per_s, r.deliveries_per_s) : null;
  check('fanout deliveries/s at 1000 clients >= 5x reference', x === null ? null : x >= 5,
    x === null ? '' : `${num(p.deliveries_per_s)} vs ${num(r.deliveries_per_s)}: ${x.toFixed(2)}x`);
}
{
  const p = get('latency', 'rate-100', 'palaver');
  const r = get('latency', 'rate-100', 'reference');
  const x = p && r ? ratio(p.p99_us, r.p99_us) : null;
  const clean = p && p.ratio === 1 && !p.echoes && !p.gaps && !p.dups;
  check('latency p99 <= 1/3 of reference, ratio 1.0, no echo/gap/dup', x === null ? null : x <= 1 / 3 && clean,
    x === null ? '' : `${ms(p.p99_us)} ms vs ${ms(r.p99_us)} ms: ${x.toFixed(3)}x; palaver ratio ${p.ratio.toFixed(4)}, ${p.echoes}/${p.gaps}/${p.dups}`);
}
{
  const p = get('capacity', 'idle-10000', 'palaver');
  check('10,000 clients held, page still loading', p ? p.connected >= 10000 && p.page_status === 200 : null,
    p ? `${p.connected} connected, GET / HTTP ${p.page_status}, ${p.rss_per_conn_kb.toFixed(1)} kB RSS per idle connection, ${p.threads_idle} threads` : '');
}
{
  const a = get('slow', 'no-stall', 'palaver');
  const b = get('slow', 'stall-1', 'palaver');
  const x = a && b ? ratio(b.p99_us, a.p99_us) : null;
  check("slow consumer: others' p99 within 2x of the no-stall run", x === null ? null : x <= 2 && b.ratio === 1,
    x === null ? '' : `${ms(b.p99_us)} ms vs ${ms(a.p99_us)} ms: ${x.toFixed(2)}x, delivery ratio ${b.ratio.toFixed(4)}`);
}
md += '## Targets\n\n| target | result | measured |\n|---|---|---|\n' + t.join('\n') + '\n';

// Plots: data files and gnuplot scripts (run.sh runs gnuplot).
const targets = [...new Set(rows.map((r) => r.target))];
function plot(name, title, xlabel, ylabel, series, logy) {
  let gp = `set terminal svg size 720,420 dynamic font "sans,11"\nset output "${name}.svg"\n`;
  gp += `set title "${title}"\nset xlabel "${xlabel}"\nset ylabel "${ylabel}"\nset grid\nset key top left\n`;
  if (logy) gp += 'set logscale y\n';
  const plots = [];
  for (const s of series) {
    if (!s.points.length) continue;
    const dat = `${name}-${s.name.replace(/\W+/g, '_')}.dat`;
    fs.writeFileSync(path.join(outDir, dat), s.points.map((p) => p.join(' ')).join('\n') + '\n');
    plots.push(`"${dat}" using 1:2 with linespoints title "${s.name}"`);
  }
  if (!plots.length) return;
  gp += 'plot ' + plots.join(', \\\n     ') + '\n';
  fs.writeFileSync(path.join(outDir, `${name}.gp`), gp);
}
const sortX = (pts) => pts.sort((a, b) => a[0] - b[0]);
plot('latency-vs-load', 'Latency against offered load (100 clients, 10 senders)', 'messages/s offered', 'latency (ms)',
  targets.flatMap((tg) => ['p50', 'p99'].map((q) => ({
    name: `${tg} ${q}`,
    points: sortX(rows.filter((r) => r.scenario === 'latency' && r.target === tg)
      .map((r) => [r.senders * r.rate, r[`${q}_us`] / 1000])),
  }))), true);
plot('deliveries-vs-clients', 'Fanout: deliveries/s against clients (1 sender, full speed)', 'clients', 'deliveries/s',
  targets.map((tg) => ({
    name: tg,
    points: sortX(rows.filter((r) => r.scenario === 'fanout' && r.target === tg).map((r) => [r.connected, r.deliveries_per_s])),
  })), false);
plot('rss-vs-connections', 'Server RSS against open connections (idle)', 'connections', 'RSS (MB)',
  targets.map((tg) => ({
    name: tg,
    points: sortX(rows.filter((r) => r.target === tg && (r.scenario === 'capacity' || r.scenario === 'fanout'))
      .map((r) => [r.connected, r.rss_idle_kb / 1024])),
  })), false);

for (const sc of repeated) {
  const kOf = (run) => Number((run.match(/(\d+)$/) || [])[1]);
  plot(`${sc}-deliveries-vs-window`, `${sc}: deliveries/s against the window K (median of the rounds)`,
    'K (messages in flight per sender)', 'deliveries/s',
    targets.map((tg) => ({
      name: tg,
      points: sortX([...sweep.entries()].filter(([k]) => k.startsWith(`${sc}/`) && k.endsWith(`/${tg}`))
        .map(([k, v]) => [kOf(k.split('/')[1]), v.med])),
    })), true);
}

fs.writeFileSync(path.join(outDir, 'summary.md'), md);
process.stdout.write(md);
