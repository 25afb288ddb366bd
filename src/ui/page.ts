/**
 * The status page: one HTML document with its script, no framework, nothing
 * fetched from elsewhere. Every name and error text from the database is put
 * in the page as text (textContent), never as HTML: a listener may be called
 * anything. The token (per server start) goes with every request that changes
 * something, which another site's page cannot read or send.
 */
export function statusPage(token: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>superduper status</title>
<meta name="superduper-token" content="${token}">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid #e3e6ec; vertical-align: top; }
  th { font-weight: 600; background: #f5f6f9; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
  .state { padding: 0 .4rem; border-radius: .3rem; background: #e7f4ea; } .state.building, .state.reconnecting { background: #fff3d6; }
  .state.frozen, .state.stopped, .state.failed, .state.not { background: #fde2e1; }
  .failed { color: #b42318; font-weight: 600; } .muted { color: #6b7280; } .error { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 12px; }
  ul.lineage { list-style: none; padding-left: 0; } ul.lineage li { margin: .15rem 0; font-family: ui-monospace, monospace; font-size: 13px; }
  form { display: flex; gap: .5rem; align-items: center; } input[type=text] { flex: 1; padding: .3rem; } button { padding: .25rem .7rem; }
  pre.row { margin: 0; white-space: pre-wrap; font-size: 12px; }
</style>
</head>
<body>
<h1>superduper</h1>
<div class="muted" id="updated">reading the database...</div>

<h2>Sidecars</h2>
<table id="workers"><thead><tr><th>sidecar</th><th>host</th><th>state</th><th>since</th><th class="n">outages</th></tr></thead><tbody></tbody></table>

<h2>Listeners</h2>
<table id="listeners"><thead><tr><th>listener</th><th>version</th><th>state</th><th>model</th><th>source</th>
<th class="n">pending</th><th class="n">in flight</th><th class="n">failed</th><th class="n">done</th><th class="n">lag (s)</th><th class="n">rows/s</th></tr></thead><tbody></tbody></table>

<h2>Lineage</h2>
<ul class="lineage" id="lineage"></ul>

<h2>Failures</h2>
<div id="failures-note" class="muted"></div>
<table id="failures"><thead><tr><th>listener</th><th>row</th><th class="n">attempts</th><th>failed at</th><th>error</th><th></th></tr></thead><tbody></tbody></table>

<h2>Search</h2>
<form id="search">
  <select id="index" aria-label="vector index"></select>
  <input type="text" id="query" placeholder="what to look for" aria-label="query">
  <input type="number" id="k" value="5" min="1" max="100" aria-label="k" style="width:4rem">
  <button type="submit">Search</button>
</form>
<div id="search-note" class="muted"></div>
<table id="hits"><thead><tr><th class="n">score</th><th>key</th><th>row</th></tr></thead><tbody></tbody></table>

<script>
const token = document.querySelector('meta[name=superduper-token]').content;
const previous = new Map();
let mayRetry = false;

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '' : String(text);
  if (className) td.className = className;
  return td;
}
function fill(tbody, rows, render) {
  tbody.replaceChildren(...rows.map((row) => { const tr = document.createElement('tr'); render(row, tr); return tr; }));
}
function stateCell(state) {
  const td = document.createElement('td');
  const span = document.createElement('span');
  span.className = 'state ' + String(state).split(' ')[0];
  span.textContent = state;
  td.append(span);
  return td;
}
async function api(path, init) {
  const response = await fetch(path, init);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function refresh() {
  try {
    const o = await api('/api/overview');
    mayRetry = o.mayRetry;
    const now = Date.now();
    fill(document.querySelector('#workers tbody'), o.workers, (w, tr) => tr.append(cell(w.id), cell(w.hostname), stateCell(w.state), cell(new Date(w.state_since).toLocaleTimeString()), cell(w.outages, 'n')));
    fill(document.querySelector('#listeners tbody'), o.listeners, (l, tr) => {
      const key = l.listener + ' v' + l.version;
      const before = previous.get(key);
      const rate = before && now > before.at ? Math.max(0, (l.done - before.done) / ((now - before.at) / 1000)) : null;
      previous.set(key, { done: l.done, at: now });
      tr.dataset.listener = l.listener;
      tr.append(cell(l.listener), cell(l.version, 'n'), stateCell(l.state), cell(l.model), cell(l.source), cell(l.pending, 'n'), cell(l.in_flight, 'n'),
        cell(l.failed, l.failed > 0 ? 'n failed' : 'n'), cell(l.done, 'n'), cell(Number(l.lag_seconds).toFixed(1), 'n'), cell(rate === null ? '' : Math.round(rate), 'n'));
    });
    const appsOf = new Map();
    for (const a of o.applications) for (const c of a.components) appsOf.set(c.type + ' ' + c.name, [...(appsOf.get(c.type + ' ' + c.name) || []), a.name]);
    const lineage = document.getElementById('lineage');
    lineage.replaceChildren(...o.lineage.map((edge) => {
      const li = document.createElement('li');
      const kind = edge.kind === 'table' ? 'table ' + edge.from + ' → listener ' + edge.to
        : edge.kind === 'listener' ? 'listener ' + edge.from + ' → listener ' + edge.to + ' (chained)'
        : 'listener ' + edge.from + ' → vector index ' + edge.to;
      const type = edge.kind === 'vector_index' ? 'vector_index' : 'listener';
      const apps = appsOf.get(type + ' ' + edge.to);
      li.textContent = kind + (apps ? '   [application ' + apps.join(', ') + ']' : '');
      return li;
    }));
    const select = document.getElementById('index');
    const names = o.vectorIndexes.filter((v) => v.state === 'current').map((v) => v.name);
    if (select.options.length !== names.length || names.some((n, i) => select.options[i].value !== n)) {
      select.replaceChildren(...names.map((n) => { const option = document.createElement('option'); option.value = n; option.textContent = n; return option; }));
    }
    const failures = await api('/api/failures');
    document.getElementById('failures-note').textContent = failures.length === 0 ? 'no failures' : mayRetry ? '' : 'this role may not retry failed rows';
    fill(document.querySelector('#failures tbody'), failures, (f, tr) => {
      tr.append(cell(f.listener), cell(JSON.stringify(f.primary_key)), cell(f.attempts, 'n'), cell(new Date(f.failed_at).toLocaleTimeString()), cell(f.error, 'error'));
      const td = document.createElement('td');
      if (mayRetry) {
        const button = document.createElement('button');
        button.textContent = 'retry ' + f.listener;
        button.onclick = async () => {
          button.disabled = true;
          try {
            const done = await api('/api/retry', { method: 'POST', headers: { 'content-type': 'application/json', 'x-superduper-token': token }, body: JSON.stringify({ listener: f.listener }) });
            document.getElementById('failures-note').textContent = 'queued ' + done.queued + ' row(s) of ' + f.listener + ' again';
          } catch (error) {
            document.getElementById('failures-note').textContent = 'could not retry: ' + error.message;
          }
          refresh();
        };
        td.append(button);
      }
      tr.append(td);
    });
    document.getElementById('updated').textContent = 'updated ' + new Date(o.at).toLocaleTimeString() + ' (every 2 s)';
  } catch (error) {
    document.getElementById('updated').textContent = 'cannot read the database: ' + error.message;
  }
}

document.getElementById('search').onsubmit = async (event) => {
  event.preventDefault();
  const params = new URLSearchParams({ index: document.getElementById('index').value, q: document.getElementById('query').value, k: document.getElementById('k').value });
  const note = document.getElementById('search-note');
  note.textContent = 'searching...';
  try {
    const hits = await api('/api/search?' + params);
    note.textContent = hits.length + ' row(s)';
    fill(document.querySelector('#hits tbody'), hits, (h, tr) => {
      const td = document.createElement('td');
      const pre = document.createElement('pre');
      pre.className = 'row';
      pre.textContent = JSON.stringify(h.row, null, 1);
      td.append(pre);
      tr.append(cell(Number(h.score).toFixed(4), 'n'), cell(h.key.join(', ')), td);
    });
  } catch (error) {
    note.textContent = 'search failed: ' + error.message;
  }
};

refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
}
