/**
 * A self-contained page that renders /openapi.json (no CDN: nothing outside is reachable).
 * Lists every operation with its parameters, request schema and responses; schemas are expandable.
 */
export const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>VantageEdge control plane API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:1.5rem;color:#1b1f24}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.op{border:1px solid #d8dee4;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}
.m{display:inline-block;min-width:4.5rem;font-weight:700;font-family:monospace}
.get{color:#0969da}.post{color:#1a7f37}.patch{color:#9a6700}.delete{color:#cf222e}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f6f8fa;padding:.6rem;overflow:auto;border-radius:4px}
summary{cursor:pointer}small{color:#57606a}
</style></head><body>
<h1>VantageEdge control plane API</h1><p id="desc"></p>
<p><small>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1)</small></p>
<div id="ops">Loading…</div>
<script>
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const resolve = (doc, s) => s && s.$ref ? doc.components.schemas[s.$ref.split('/').pop()] : s;
fetch('/openapi.json').then((r) => r.json()).then((doc) => {
  document.getElementById('desc').textContent = doc.info.description;
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(item)) {
    const tag = (op.tags || ['Other'])[0]; (byTag[tag] = byTag[tag] || []).push({ path, method, op });
  }
  let html = '';
  for (const [tag, ops] of Object.entries(byTag)) {
    html += '<h2>' + esc(tag) + '</h2>';
    for (const { path, method, op } of ops) {
      html += '<div class="op"><span class="m ' + method + '">' + method.toUpperCase() + '</span><code>' + esc(path) + '</code> — ' + esc(op.summary || '');
      if (op.parameters && op.parameters.length) html += '<br><small>parameters: ' + op.parameters.map((p) => esc(p.name) + ' (' + p.in + ')').join(', ') + '</small>';
      const body = op.requestBody && op.requestBody.content['application/json'].schema;
      if (body) html += '<details><summary>request body ' + esc(body.$ref ? body.$ref.split('/').pop() : '') + '</summary><pre>' + esc(JSON.stringify(resolve(doc, body), null, 2)) + '</pre></details>';
      html += '<details><summary>responses: ' + Object.keys(op.responses).join(', ') + '</summary>';
      for (const [code, res] of Object.entries(op.responses)) {
        const s = res.content && res.content['application/json'].schema;
        html += '<div><b>' + code + '</b> ' + esc(res.description || '') + (s ? '<pre>' + esc(JSON.stringify(resolve(doc, s), null, 2)) + '</pre>' : '') + '</div>';
      }
      html += '</details></div>';
    }
  }
  document.getElementById('ops').innerHTML = html;
}).catch((e) => { document.getElementById('ops').textContent = 'Could not load /openapi.json: ' + e; });
</script></body></html>`;
