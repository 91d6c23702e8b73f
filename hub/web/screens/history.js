// @ts-check
// History: closed alarms and past events searched by node, kind, grid and time, a page at a time, with
// each one's snapshot and its pre-press burst (the frames play in place).

export const name = 'history';
export const LANG = 'remount'; // drawn again in the other language (app.js)
export const STRINGS = {
  zh: {
    tab_history: '历史', h_alarms: '已结案报警', h_events: '事件', h_node: '设备', h_kind: '类型', h_any: '全部',
    h_from: '开始日期', h_to: '结束日期', h_search: '查询', h_outcome: '处置结果', h_raised: '报警时间',
    h_resolved: '结案时间', h_by: '结案人', h_picture: '图片', h_clip: '视频片段', h_frames: '帧', h_none: '没有符合条件的记录',
    h_prev: '上一页', h_next: '下一页', h_page: '共 {total} 条，第 {from}–{to} 条', h_bad_date: '日期格式应为 年-月-日',
    h_bad_range: '结束日期早于开始日期', h_time: '时间', h_play: '播放',
  },
  en: {
    tab_history: 'History', h_alarms: 'Closed alarms', h_events: 'Events', h_node: 'Node', h_kind: 'Kind', h_any: 'any',
    h_from: 'From', h_to: 'To', h_search: 'Search', h_outcome: 'Outcome', h_raised: 'Raised', h_resolved: 'Resolved',
    h_by: 'Resolved by', h_picture: 'Picture', h_clip: 'Burst', h_frames: 'frames', h_none: 'Nothing matches',
    h_prev: 'Previous', h_next: 'Next', h_page: '{from}–{to} of {total}', h_bad_date: 'Dates are YYYY-MM-DD',
    h_bad_range: 'The end date is before the start date', h_time: 'Time', h_play: 'Play',
  },
};
const KINDS = ['alarm.pressed', 'alarm.test', 'door.forced', 'door.held_open', 'door.lockout', 'door.fire_release',
  'tamper.opened', 'tamper.camera', 'detection.person', 'detection.vehicle', 'detection.loitering', 'node.offline',
  'nodes.offline', 'node.fault'];
const PAGE = 25;

/** @param {HTMLElement} root @param {any} app */
export function mount(root, app) {
  const {t, esc, api, fmtTime, kindLabel, on} = app;
  let offset = 0; let what = 'alarms';
  const input = (/** @type {string} */ id, /** @type {string} */ label, extra = '') =>
    `<input id="${id}" aria-label="${t(label)}" placeholder="${t(label)}" data-i18n-ph="${label}" ${extra}>`;
  root.innerHTML = `<form id="history-form" class="filters">
      <select id="history-what" aria-label="${t('tab_history')}"><option value="alarms">${t('h_alarms')}</option>
        <option value="events">${t('h_events')}</option></select>
      ${input('history-node', 'h_node', 'size="12"')}
      <select id="history-kind" aria-label="${t('h_kind')}"><option value="">${t('h_kind')}: ${t('h_any')}</option>${
        KINDS.map((k) => `<option value="${k}">${esc(kindLabel(k))}</option>`).join('')}</select>
      ${input('history-grid', 'grid', 'size="8"')}
      ${input('history-from', 'h_from', 'size="10" inputmode="numeric"')} –
      ${input('history-to', 'h_to', 'size="10" inputmode="numeric"')}
      <button type="submit" class="primary">${t('h_search')}</button>
    </form><p id="history-error" class="error" role="alert"></p><div id="history-results"></div>
    <div class="pager"><button id="history-prev">${t('h_prev')}</button><span id="history-page"></span>
      <button id="history-next">${t('h_next')}</button></div>`;
  const $ = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (root.querySelector('#' + id));
  function params() {
    const q = new URLSearchParams({limit: String(PAGE), offset: String(offset)});
    for (const [k, id] of [['node', 'history-node'], ['kind', 'history-kind'], ['grid', 'history-grid']]) {
      const v = $(id).value.trim(); if (v) q.set(k, v);
    }
    const from = $('history-from').value.trim(); const to = $('history-to').value.trim();
    if ((from && !app.isDay(from)) || (to && !app.isDay(to))) throw new Error(t('h_bad_date'));
    if (from && to && to < from) throw new Error(t('h_bad_range'));
    if (from) q.set('since', app.dayStart(from));
    if (to) q.set('until', app.dayStart(app.nextDay(to)));
    return q;
  }
  function media(/** @type {any} */ r) {
    const pic = r.snapshots ? `<img class="thumb" alt="${esc(r.node)} ${esc(kindLabel(r.kind))}" loading="lazy"
      src="/api/events/${encodeURIComponent(r.id)}/snapshot.jpg">` : '–';
    const clip = r.clip_frames ? `<button data-clip="${esc(r.id)}">${t('h_play')} (${r.clip_frames} ${t('h_frames')})</button>
      <span class="thumbs" data-frames="${esc(r.id)}"></span>` : '–';
    return `<td>${pic}</td><td>${clip}</td>`;
  }
  async function search() {
    const err = $('history-error'); err.textContent = '';
    let q;
    try { q = params(); } catch (e) { err.textContent = /** @type {Error} */ (e).message; return; }
    const r = await api(`/api/history/${what}?${q}`);
    if (!r.ok) { err.textContent = await app.failure(r); return; }
    const page = await r.json();
    const out = /** @type {HTMLElement} */ (root.querySelector('#history-results'));
    if (!page.items.length) { out.innerHTML = `<p class="empty">${t('h_none')}</p>`; }
    else if (what === 'alarms') {
      out.innerHTML = `<table id="history-table"><tr>${['h_raised', 'h_node', 'grid', 'h_kind', 'h_outcome', 'h_resolved',
        'h_by', 'h_picture', 'h_clip'].map((k) => `<th scope="col">${t(k)}</th>`).join('')}</tr>${page.items.map((/** @type {any} */ a) =>
        `<tr data-id="${esc(a.id)}"><td>${fmtTime(a.raised_at, true)}</td><td><a href="#/nodes/${encodeURIComponent(a.node)}">${
          esc(a.node)}</a></td><td>${esc(a.grid || '–')}</td><td>${esc(kindLabel(a.kind))}${a.count > 1 ? ` ×${a.count}` : ''}</td><td>${
          a.outcome ? t('o_' + a.outcome) : '–'}</td><td>${fmtTime(a.resolved_at, true)}</td><td>${esc(a.resolved_by || '')}</td>${
          media(a)}</tr>`).join('')}</table>`;
    } else {
      out.innerHTML = `<table id="history-table"><tr>${['h_time', 'h_node', 'grid', 'h_kind', 'h_picture', 'h_clip']
        .map((k) => `<th scope="col">${t(k)}</th>`).join('')}</tr>${page.items.map((/** @type {any} */ e) =>
        `<tr data-id="${esc(e.id)}"><td>${fmtTime(e.received_at, true)}</td><td><a href="#/nodes/${encodeURIComponent(e.node)}">${
          esc(e.node)}</a></td><td>${esc(e.grid || '–')}</td><td>${esc(kindLabel(e.kind))}</td>${media(e)}</tr>`).join('')}</table>`;
    }
    const to = Math.min(offset + PAGE, page.total);
    $('history-page').textContent = page.total ? t('h_page').replace('{from}', String(offset + 1))
      .replace('{to}', String(to)).replace('{total}', String(page.total)) : '';
    $('history-prev').disabled = offset === 0; $('history-next').disabled = to >= page.total;
  }
  root.addEventListener('click', async (e) => {
    const b = /** @type {HTMLElement} */ (e.target).closest('[data-clip]');
    if (!(b instanceof HTMLElement)) return;
    const id = b.dataset.clip || '';
    const r = await api(`/api/events/${encodeURIComponent(id)}/clips`);
    if (!r.ok) return;
    const clip = await r.json();
    const box = /** @type {HTMLElement} */ (root.querySelector(`[data-frames="${CSS.escape(id)}"]`));
    box.innerHTML = `<img alt="${esc(id)}" src="${esc(clip.urls[0] || '')}">`;
    const img = /** @type {HTMLImageElement} */ (box.querySelector('img'));
    let i = 0; // the burst plays once, a frame every 200 ms, and stays on its last frame
    const timer = setInterval(() => { if (++i >= clip.urls.length) clearInterval(timer); else img.src = clip.urls[i]; }, 200);
  });
  $('history-form').addEventListener('submit', (e) => { e.preventDefault(); offset = 0; what = $('history-what').value; search(); });
  $('history-prev').addEventListener('click', () => { offset = Math.max(0, offset - PAGE); search(); });
  $('history-next').addEventListener('click', () => { offset += PAGE; search(); });
  return {show: () => { search(); }};
}
