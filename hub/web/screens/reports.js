// @ts-check
// Reports: totals, alarms per hour / node / grid, response times, the grid scorecard, and node uptime
// summarised by grid (one row each, the grid's nodes behind a click: 120 rows made the page 5,600 px tall).

import {responders} from '../dispatch.js';

export const name = 'reports';
export const LANG = 'remount'; // drawn again in the other language (app.js)
export const STRINGS = {
  zh: {
    tab_reports: '报表', today: '今天', this_week: '本周', range: '自定义', show: '查看', csv: '导出 CSV',
    r_alarms: '报警数', r_tests: '测试', r_escalated: '升级', r_open: '未结案', r_per_hour: '各小时报警数',
    r_per_node: '各设备报警数', r_per_grid: '各网格报警数', r_response: '处置时间', r_median: '中位数',
    r_p90: '90% 分位', r_uptime: '设备在线率', r_doors: '门禁', r_scorecard: '网格考核',
    d_granted: '开门', d_denied: '拒绝', d_forced: '强行打开', d_held_open: '未关门', d_lockout: '锁定',
    s_acknowledge: '确认', s_dispatch: '派警', s_arrive: '到场', s_resolve: '结案', nodes: '设备',
    false_alarms: '误报', r_down: '离线时长', r_n: '次数', r_skipped: '跳过', date_hint: '年-月-日',
    r_worst: '最低在线率', r_uptime_hint: '点击网格查看其设备', period: '时段', date_from: '开始日期', date_to: '结束日期',
  },
  en: {
    tab_reports: 'Reports', today: 'Today', this_week: 'This week', range: 'Range', show: 'Show', csv: 'Export CSV',
    r_alarms: 'Alarms', r_tests: 'Tests', r_escalated: 'Escalated', r_open: 'Open', r_per_hour: 'Alarms per hour',
    r_per_node: 'Alarms per node', r_per_grid: 'Alarms per grid', r_response: 'Response times', r_median: 'median',
    r_p90: 'p90', r_uptime: 'Node uptime', r_doors: 'Doors', r_scorecard: 'Grid scorecard',
    d_granted: 'granted', d_denied: 'denied', d_forced: 'forced', d_held_open: 'held open', d_lockout: 'lockout',
    s_acknowledge: 'acknowledge', s_dispatch: 'dispatch', s_arrive: 'arrive', s_resolve: 'resolve', nodes: 'Nodes',
    false_alarms: 'False alarms', r_down: 'Downtime', r_n: 'n', r_skipped: 'Skipped', date_hint: 'YYYY-MM-DD',
    r_worst: 'Lowest uptime', r_uptime_hint: 'Click a grid for its nodes', period: 'Period', date_from: 'From',
    date_to: 'To',
  },
};

/** A bar chart; every bar's value above it, the tallest one's too (it was drawn above the chart's top). */
export function bars(/** @type {string[]} */ labels, /** @type {number[]} */ values, height = 160,
  /** @type {(s: any) => string} */ esc = String, title = '') {
  const max = Math.max(1, ...values); const bw = Math.min(80, 960 / Math.max(1, values.length));
  const top = 18; // room for the tallest bar's label
  let s = `<svg viewBox="0 0 1000 ${height + top + 30}" role="img" aria-label="${esc(title)}">`;
  values.forEach((v, i) => {
    const bh = v / max * height; const x = 30 + i * bw;
    s += `<rect x="${x.toFixed(1)}" y="${(top + height - bh).toFixed(1)}" width="${(bw * 0.8).toFixed(1)}" height="${
      bh.toFixed(1)}"><title>${esc(labels[i])}: ${v}</title></rect>`;
    if (v) s += `<text class="value" x="${(x + bw * 0.4).toFixed(1)}" y="${(top + height - bh - 4).toFixed(1)}" text-anchor="middle">${v}</text>`;
    s += `<text x="${(x + bw * 0.4).toFixed(1)}" y="${top + height + 22}" text-anchor="middle">${esc(labels[i])}</text>`;
  });
  return s + '</svg>';
}

/** @param {HTMLElement} root @param {any} app */
export function mount(root, app) {
  const {t, esc, api, fmtTime, fmtDur, on} = app;
  root.innerHTML = `<form id="report-form" class="report-form">
      <select id="report-period" aria-label="${t('period')}" data-i18n-aria="period">
        <option value="today" data-i18n="today">${t('today')}</option>
        <option value="week" data-i18n="this_week">${t('this_week')}</option>
        <option value="range" data-i18n="range">${t('range')}</option>
      </select>
      <input id="report-from" class="date" inputmode="numeric" pattern="\\d{4}-\\d{2}-\\d{2}" size="10"
        data-i18n-ph="date_hint" placeholder="${t('date_hint')}" aria-label="${t('date_from')}"> –
      <input id="report-to" class="date" inputmode="numeric" pattern="\\d{4}-\\d{2}-\\d{2}" size="10"
        data-i18n-ph="date_hint" placeholder="${t('date_hint')}" aria-label="${t('date_to')}">
      <button type="submit" data-i18n="show">${t('show')}</button>
      <a id="report-csv" href="#" data-i18n="csv">${t('csv')}</a>
    </form>
    <div id="report"></div>`;
  const $ = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (root.querySelector('#' + id));
  function query() {
    const p = $('report-period').value;
    if (p === 'range' && $('report-from').value) {
      return `from=${$('report-from').value}&to=${$('report-to').value || $('report-from').value}`;
    }
    return `period=${p === 'range' ? 'today' : p}`;
  }
  $('report-form').addEventListener('submit', (e) => { e.preventDefault(); load(); });
  for (const id of ['report-from', 'report-to']) $(id).addEventListener('input', () => { $('report-period').value = 'range'; });
  function table(/** @type {string[]} */ head, /** @type {any[][]} */ rows, cls = '') {
    return `<table${cls ? ` class="${cls}"` : ''}><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr>${
      rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
  }
  /** Uptime summarised by grid: its nodes, mean and lowest uptime, downtime; each grid opens to its nodes. */
  function uptime(/** @type {any[]} */ rows) {
    /** @type {Map<string, any[]>} */
    const by = new Map();
    for (const u of rows) { const g = u.grid || '–'; if (!by.has(g)) by.set(g, []); by.get(g)?.push(u); }
    const grids = [...by.entries()].map(([g, us]) => ({g, us, mean: us.reduce((s, u) => s + u.uptime_pct, 0) / us.length,
      worst: Math.min(...us.map((u) => u.uptime_pct)), down: us.reduce((s, u) => s + u.downtime_s, 0)}))
      .sort((a, b) => a.worst - b.worst);
    return `<p class="hint">${t('r_uptime_hint')}</p><table id="uptime"><tr>${[t('grid'), t('nodes'), '%', t('r_worst'),
      t('r_down')].map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr>${grids.map((x) => `<tr data-grid="${esc(x.g)}">
      <td><button type="button" class="link" aria-expanded="false" data-drill="${esc(x.g)}">${esc(x.g)}</button></td>
      <td>${x.us.length}</td><td>${x.mean.toFixed(2)}</td><td>${x.worst.toFixed(2)}</td><td>${fmtDur(x.down)}</td></tr>
      <tr class="drill" data-grid-nodes="${esc(x.g)}" hidden><td colspan="5">${table([t('node'), '%', t('r_down')],
        x.us.sort((a, b) => a.uptime_pct - b.uptime_pct).map((u) => [u.node, u.uptime_pct.toFixed(2),
          fmtDur(u.downtime_s)]))}</td></tr>`).join('')}</table>`;
  }
  root.addEventListener('click', (e) => { // a grid's row opens to its nodes
    const b = /** @type {HTMLElement} */ (e.target).closest('[data-drill]');
    if (!(b instanceof HTMLElement)) return;
    const row = /** @type {HTMLElement} */ (root.querySelector(`[data-grid-nodes="${CSS.escape(b.dataset.drill || '')}"]`));
    row.hidden = !row.hidden; b.setAttribute('aria-expanded', String(!row.hidden));
  });
  async function load() {
    const q = query();
    /** @type {HTMLAnchorElement} */ (root.querySelector('#report-csv')).href = '/api/reports/alarms.csv?' + q;
    const r = await api('/api/reports/summary?' + q);
    const out = /** @type {HTMLElement} */ (root.querySelector('#report'));
    if (!r.ok) { out.textContent = await app.failure(r); return; }
    const R = await r.json();
    const tot = R.totals;
    const top = R.per_node.slice(0, 24);
    out.innerHTML = `<p>${fmtTime(R.from, true)} – ${fmtTime(R.to, true)} (${esc(R.timezone)})</p>
      <div class="cards" id="report-totals">
        <div class="card"><b>${tot.alarms}</b>${t('r_alarms')}</div><div class="card"><b>${tot.open}</b>${t('r_open')}</div>
        <div class="card"><b>${tot.escalated}</b>${t('r_escalated')}</div><div class="card"><b>${tot.tests}</b>${t('r_tests')}</div>
        ${Object.entries(R.doors).map(([k, v]) => `<div class="card"><b>${v}</b>${t('r_doors')}: ${t('d_' + k)}</div>`).join('')}
      </div>
      <h2>${t('r_per_hour')}</h2><div class="chart">${bars([...Array(24).keys()].map(String), R.per_hour, 160, esc, t('r_per_hour'))}</div>
      <h2>${t('r_per_node')}</h2><div class="chart">${bars(top.map((/** @type {any} */ n) => n.node),
        top.map((/** @type {any} */ n) => n.alarms), 160, esc, t('r_per_node'))}</div>
      <h2>${t('r_per_grid')}</h2><div class="chart">${bars(R.per_grid.map((/** @type {any} */ g) => g.grid || '–'),
        R.per_grid.map((/** @type {any} */ g) => g.alarms), 160, esc, t('r_per_grid'))}</div>
      <h2>${t('r_response')}</h2>${table(['', t('r_n'), t('r_median'), t('r_p90'), t('r_skipped')],
        Object.entries(R.response).map(([k, v]) => [t('s_' + k), v.n, fmtDur(v.median_s), fmtDur(v.p90_s), v.skipped ?? 0]))}
      <h2>${t('r_scorecard')}</h2>${table([t('grid'), t('nodes'), t('r_alarms'), t('false_alarms'), t('r_escalated'),
        t('s_acknowledge') + ' ' + t('r_median'), t('s_resolve') + ' ' + t('r_median'), t('r_uptime'),
        t('d_denied'), t('d_forced')], R.scorecard.map((/** @type {any} */ g) => [g.grid || '–', g.nodes, g.alarms,
        g.false_alarms, g.escalated, fmtDur(g.ack.median_s), fmtDur(g.resolve.median_s),
        g.uptime_pct == null ? '–' : g.uptime_pct.toFixed(2) + '%', g.doors.denied, g.doors.forced]))}
      <h2>${t('r_uptime')}</h2>${uptime(R.uptime)}`;
    responders(out, q); // per team and per responder (dispatch.js)
  }
  return {show: () => { load(); }};
}
