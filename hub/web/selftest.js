// Self-test tab (issue 20, docs/selftest.md): poles passing per grid, poles not tested in 3 days, a node's
// history and "test now". A plain script beside console.js: it uses console.js's globals S (language), api().
(function () {
  'use strict';
  const TXT = {
    zh: {tab: '自检', grid: '网格', poles: '立柱', passing: '通过', failing: '未通过', untested: '3 天内未自检',
      node: '节点', history: '历史', run: '立即自检', sent: '已发送自检命令', when: '时间', result: '结果',
      check: '项目', status: '状态', value: '测得', limit: '限值', detail: '说明', ok: '通过', fail: '未通过',
      pass: '通过', skipped: '跳过', none: '暂无自检记录', error: '出错：', trigger: '触发'},
    en: {tab: 'Self-test', grid: 'Grid', poles: 'Poles', passing: 'Passing', failing: 'Failing',
      untested: 'Not tested in 3 days', node: 'Node', history: 'History', run: 'Test now',
      sent: 'Self-test command sent', when: 'When', result: 'Result', check: 'Check', status: 'Status',
      value: 'Measured', limit: 'Limit', detail: 'Detail', ok: 'passed', fail: 'failed', pass: 'pass',
      skipped: 'skipped', none: 'No self-test results yet', error: 'Error: ', trigger: 'Trigger'},
  };
  const tx = (k) => (TXT[S.lang] || TXT.zh)[k] ?? k;
  const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  const nav = document.querySelector('header nav');
  const tab = document.createElement('button');
  tab.className = 'tab'; tab.id = 'tab-btn-selftest';
  nav.appendChild(tab);
  const body = document.createElement('main');
  body.id = 'tab-selftest'; body.className = 'tab-body'; body.hidden = true;
  body.innerHTML = `<table id="st-fleet" class="st"></table>
    <form id="st-form"><label><span id="st-node-l"></span> <input id="st-node" size="16" required></label>
    <button type="submit" id="st-history"></button> <button type="button" id="st-run"></button>
    <span id="st-msg" role="status"></span></form><div id="st-hist"></div>`;
  document.getElementById('tab-reports').after(body);

  let fleet = null; let hist = null;
  function render() {
    tab.textContent = tx('tab');
    document.getElementById('st-node-l').textContent = tx('node');
    document.getElementById('st-history').textContent = tx('history');
    document.getElementById('st-run').textContent = tx('run');
    if (fleet) {
      document.getElementById('st-fleet').innerHTML = `<tr><th>${tx('grid')}</th><th>${tx('poles')}</th>
        <th>${tx('passing')}</th><th>${tx('failing')}</th><th>${tx('untested')}</th></tr>` +
        fleet.grids.map((g) => `<tr><td>${esc(g.grid || '—')}</td><td>${g.poles}</td><td>${g.passing}</td>
          <td>${g.failing}</td><td class="st-untested">${esc(g.untested.join(', '))}</td></tr>`).join('');
    }
    const h = document.getElementById('st-hist');
    if (hist === null) { h.innerHTML = ''; return; }
    if (!hist.length) { h.textContent = tx('none'); return; }
    h.innerHTML = hist.map((r) => `<h4>${esc(new Date(r.ts).toLocaleString(S.lang === 'zh' ? 'zh-CN' : 'en-GB'))}
      · ${tx(r.ok ? 'ok' : 'fail')} · ${tx('trigger')}: ${esc(r.trigger)}</h4>
      <table class="st"><tr><th>${tx('check')}</th><th>${tx('status')}</th><th>${tx('value')}</th>
      <th>${tx('limit')}</th><th>${tx('detail')}</th></tr>${r.checks.map((c) => `<tr class="st-${esc(c.status)}">
      <td>${esc(c.name)}</td><td>${tx(c.status)}</td><td>${esc(c.value)} ${esc(c.unit || '')}</td>
      <td>${esc(c.limit)}</td><td>${esc(c.detail)}</td></tr>`).join('')}</table>`).join('');
  }
  async function loadFleet() {
    const r = await api('/api/selftest/fleet');
    if (r.ok) { fleet = await r.json(); render(); }
  }
  async function loadHistory(node) {
    const r = await api(`/api/nodes/${encodeURIComponent(node)}/selftests`);
    hist = r.ok ? await r.json() : []; render();
  }
  function show() {
    document.querySelectorAll('.tab-body').forEach((m) => { m.hidden = m !== body; });
    document.querySelectorAll('header .tab').forEach((b) => b.classList.toggle('active', b === tab));
    loadFleet();
  }
  tab.addEventListener('click', show);
  nav.querySelectorAll('.tab').forEach((b) => { if (b !== tab) b.addEventListener('click', () => { body.hidden = true; tab.classList.remove('active'); }); });
  document.querySelectorAll('.lang').forEach((b) => b.addEventListener('click', () => setTimeout(render)));
  document.getElementById('st-form').addEventListener('submit', (e) => {
    e.preventDefault(); loadHistory(document.getElementById('st-node').value.trim());
  });
  document.getElementById('st-run').addEventListener('click', async () => {
    const node = document.getElementById('st-node').value.trim();
    const msg = document.getElementById('st-msg');
    if (!node) return;
    const r = await api(`/api/nodes/${encodeURIComponent(node)}/selftest`, {method: 'POST', body: {}});
    const j = await r.json().catch(() => ({}));
    msg.textContent = r.ok ? tx('sent') : tx('error') + (typeof j.detail === 'string' ? j.detail : r.status);
  });
  render();
})();
