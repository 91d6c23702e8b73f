// @ts-check
// Self-test (issue 20, docs/selftest.md): poles and doors passing per grid (apart: their checks differ),
// those not tested in 3 days, a node's history and "test now".

export const name = 'selftest';
export const STRINGS = {
  zh: {tab_selftest: '自检', stt_grid: '网格', stt_poles: '立柱', stt_passing: '通过', stt_failing: '未通过',
    stt_untested: '3 天内未自检', stt_node: '节点', stt_history: '历史', stt_run: '立即自检', stt_sent: '已发送自检命令',
    stt_check: '项目', stt_status: '状态', stt_value: '测得', stt_limit: '限值', stt_detail: '说明', stt_ok: '通过',
    stt_fail: '未通过', stt_pass: '通过', stt_skipped: '跳过', stt_none: '暂无自检记录', stt_error: '出错：',
    stt_trigger: '触发', stt_doors: '出租屋门', stt_d_passing: '门通过', stt_d_failing: '门未通过',
    stt_d_untested: '门 3 天内未自检'},
  en: {tab_selftest: 'Self-test', stt_grid: 'Grid', stt_poles: 'Poles', stt_passing: 'Passing', stt_failing: 'Failing',
    stt_untested: 'Not tested in 3 days', stt_node: 'Node', stt_history: 'History', stt_run: 'Test now',
    stt_sent: 'Self-test command sent', stt_check: 'Check', stt_status: 'Status', stt_value: 'Measured',
    stt_limit: 'Limit', stt_detail: 'Detail', stt_ok: 'passed', stt_fail: 'failed', stt_pass: 'pass',
    stt_skipped: 'skipped', stt_none: 'No self-test results yet', stt_error: 'Error: ', stt_trigger: 'Trigger',
    stt_doors: 'Doors', stt_d_passing: 'Doors passing', stt_d_failing: 'Doors failing',
    stt_d_untested: 'Doors not tested in 3 days'},
};

/** @param {HTMLElement} root @param {any} app */
export function mount(root, app) {
  const {t, esc, api} = app;
  root.innerHTML = `<table id="st-fleet" class="st"></table>
    <form id="st-form"><label><span data-i18n="stt_node">${t('stt_node')}</span> <input id="st-node" size="16" required></label>
    <button type="submit" id="st-history" data-i18n="stt_history">${t('stt_history')}</button>
    <button type="button" id="st-run" data-i18n="stt_run">${t('stt_run')}</button>
    <span id="st-msg" role="status"></span></form><div id="st-hist"></div>`;
  const $r = (/** @type {string} */ id) => /** @type {HTMLElement} */ (root.querySelector('#' + id));
  const input = /** @type {HTMLInputElement} */ ($r('st-node'));
  /** @type {any} */ let fleet = null;
  /** @type {any[]|null} */ let hist = null;
  function render() {
    if (fleet) {
      $r('st-fleet').innerHTML = `<tr><th>${t('stt_grid')}</th><th>${t('stt_poles')}</th>
        <th>${t('stt_passing')}</th><th>${t('stt_failing')}</th><th>${t('stt_untested')}</th>
        <th>${t('stt_doors')}</th><th>${t('stt_d_passing')}</th><th>${t('stt_d_failing')}</th>
        <th>${t('stt_d_untested')}</th></tr>` +
        fleet.grids.map((/** @type {any} */ g) => `<tr><td>${esc(g.grid || '—')}</td><td>${g.poles}</td>
          <td>${g.passing}</td><td>${g.failing}</td><td class="st-untested">${esc(g.untested.join(', '))}</td>
          <td>${g.doors}</td><td>${g.doors_passing}</td><td>${g.doors_failing}</td>
          <td class="st-untested">${esc(g.doors_untested.join(', '))}</td></tr>`).join('');
    }
    const h = $r('st-hist');
    if (hist === null) { h.innerHTML = ''; return; }
    if (!hist.length) { h.textContent = t('stt_none'); return; }
    h.innerHTML = hist.map((r) => `<h4>${esc(app.fmtTime(r.ts, true))}
      · ${t(r.ok ? 'stt_ok' : 'stt_fail')} · ${t('stt_trigger')}: ${esc(r.trigger)}</h4>
      <table class="st"><tr><th>${t('stt_check')}</th><th>${t('stt_status')}</th><th>${t('stt_value')}</th>
      <th>${t('stt_limit')}</th><th>${t('stt_detail')}</th></tr>${r.checks.map((/** @type {any} */ c) => `<tr class="st-${
        esc(c.status)}"><td>${esc(c.name)}</td><td>${esc(t('stt_' + c.status))}</td><td>${esc(c.value)} ${esc(c.unit || '')}</td>
      <td>${esc(c.limit)}</td><td>${esc(c.detail)}</td></tr>`).join('')}</table>`).join('');
  }
  async function loadFleet() {
    const r = await api('/api/selftest/fleet');
    if (r.ok) { fleet = await r.json(); render(); }
  }
  async function loadHistory(/** @type {string} */ node) {
    const r = await api(`/api/nodes/${encodeURIComponent(node)}/selftests`);
    hist = r.ok ? await r.json() : []; render();
  }
  $r('st-form').addEventListener('submit', (e) => { e.preventDefault(); loadHistory(input.value.trim()); });
  $r('st-run').addEventListener('click', async () => {
    const node = input.value.trim();
    if (!node) return;
    const r = await api(`/api/nodes/${encodeURIComponent(node)}/selftest`, {method: 'POST', body: {}});
    const j = await r.json().catch(() => ({}));
    $r('st-msg').textContent = r.ok ? t('stt_sent') : t('stt_error') + (typeof j.detail === 'string' ? app.say(j.detail) : r.status);
  });
  app.on('lang', render);
  return {show: () => { loadFleet(); }}; // each time the tab is chosen, again too: the fleet view reloads
}
