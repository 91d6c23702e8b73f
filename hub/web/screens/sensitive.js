// @ts-check
// Sensitive periods (敏感时期, issue 20; hub/sensitive): the admins' screen to raise the alert level for the
// district or some grids for a time window (and to cancel it, see each pole's profile push and each daily
// report's deliveries), and the banner every console shows while a period is in force. The banner is loaded
// from /api/sensitive-periods/active after login and follows the live stream's `sensitive` messages.

export const name = 'sensitive';
export const LANG = 'remount'; // a form and tables: drawn again in the other language (app.js)
export const STRINGS = {
  zh: {
    tab_sensitive: '敏感时期', sp_banner: '敏感时期：', sp_district: '全辖区', sp_grids: '网格', sp_until: '至',
    sp_escalate: '报警 {s} 秒未确认即升级', sp_new: '设置敏感时期', sp_grids_ph: '网格编号，逗号分隔；留空为全辖区',
    sp_start: '开始（留空为立即）', sp_end: '结束', sp_reason: '原因', sp_esc_s: '升级秒数', sp_loiter: '徘徊报警秒数',
    sp_night: '夜间时段（如 18:00-07:00）', sp_create: '设置', sp_cancel: '取消此时期', sp_confirm: '确定取消该敏感时期？',
    sp_list: '敏感时期列表', sp_scope: '范围', sp_window: '时段', sp_state: '状态', sp_by: '设置人', sp_details: '详情',
    sp_scheduled: '待开始', sp_active: '生效中', sp_ended: '已结束', sp_cancelled: '已取消', sp_pushes: '立柱配置推送',
    sp_node: '节点', sp_phase: '阶段', sp_apply: '下发', sp_revert: '恢复', sp_outcome: '立柱结果', sp_why: '说明',
    sp_reports: '每日报告', sp_day: '日期', sp_file: '文件', sp_webhook: '推送地址', sp_notified: '通知渠道',
    sp_none: '暂无', sp_created: '已设置', sp_error: '出错：',
  },
  en: {
    tab_sensitive: 'Sensitive periods', sp_banner: 'Sensitive period: ', sp_district: 'whole district',
    sp_grids: 'grids', sp_until: 'until', sp_escalate: 'alarms escalate after {s} s unacknowledged',
    sp_new: 'New sensitive period', sp_grids_ph: 'Grid codes, comma-separated; empty = the whole district',
    sp_start: 'Start (empty = now)', sp_end: 'End', sp_reason: 'Reason', sp_esc_s: 'Escalate after (s)',
    sp_loiter: 'Loitering after (s)', sp_night: 'Night windows (e.g. 18:00-07:00)', sp_create: 'Raise the level',
    sp_cancel: 'Cancel this period', sp_confirm: 'Cancel this sensitive period?', sp_list: 'Sensitive periods',
    sp_scope: 'Scope', sp_window: 'Window', sp_state: 'State', sp_by: 'By', sp_details: 'Details',
    sp_scheduled: 'scheduled', sp_active: 'active', sp_ended: 'ended', sp_cancelled: 'cancelled',
    sp_pushes: 'Profile pushes to the poles', sp_node: 'Node', sp_phase: 'Phase', sp_apply: 'apply',
    sp_revert: 'revert', sp_outcome: 'Pole says', sp_why: 'Why', sp_reports: 'Daily reports', sp_day: 'Day',
    sp_file: 'File', sp_webhook: 'Webhook', sp_notified: 'Channels', sp_none: 'none', sp_created: 'Raised',
    sp_error: 'Error: ',
  },
};

/** @typedef {{id: string, scope: string, grids: string[], starts_at: string, ends_at: string, reason: string,
 *   escalate_after_s: number, state: string, created_by: string, [k: string]: any}} Period */

/** The banner under the header: every staff role sees it while a period is in force. */
export function initBanner(/** @type {any} */ app) {
  const {t, esc, fmtTime} = app;
  const el = document.createElement('div');
  el.id = 'sensitive-banner'; el.className = 'sensitive-banner'; el.setAttribute('role', 'status'); el.hidden = true;
  app.$('screens').before(el);
  /** @type {Period[]} */ let active = [];
  let loadedAt = 0;
  function render() {
    el.hidden = !active.length;
    el.innerHTML = active.map((p) => `<div class="sp-item" data-period="${esc(p.id)}"><b>${t('sp_banner')}</b>
      ${esc(p.scope === 'district' ? t('sp_district') : `${t('sp_grids')} ${p.grids.join(', ')}`)}
      · ${esc(fmtTime(p.starts_at, true))} ${t('sp_until')} ${esc(fmtTime(p.ends_at, true))}
      · ${esc(t('sp_escalate').replace('{s}', String(p.escalate_after_s)))} · ${esc(p.reason)}</div>`).join('');
  }
  async function load() {
    loadedAt = Date.now();
    const r = await app.api('/api/sensitive-periods/active').catch(() => null);
    if (r && r.ok) { active = await r.json(); render(); }
  }
  app.on('route', () => { if (!loadedAt) load(); }); // after login: the first screen shown
  app.on('nodes', () => { if (Date.now() - loadedAt > 30000) load(); }); // a safety net, at most twice a minute
  app.on('live', (/** @type {any} */ msg) => { if (msg.type === 'sensitive') { active = msg.active; render(); } });
  app.on('lang', render);
}

/** @param {HTMLElement} root @param {any} app */
export function mount(root, app) {
  const {t, esc, api, fmtTime} = app;
  root.innerHTML = `<h2>${t('sp_new')}</h2>
    <form id="sp-form" class="filters">
      <input name="grids" size="30" aria-label="${t('sp_grids')}" placeholder="${t('sp_grids_ph')}">
      <label>${t('sp_start')} <input name="start" type="datetime-local"></label>
      <label>${t('sp_end')} <input name="end" type="datetime-local" required></label>
      <input name="reason" aria-label="${t('sp_reason')}" placeholder="${t('sp_reason')}" required maxlength="500">
      <label>${t('sp_esc_s')} <input name="escalate" type="number" min="5" max="600" value="30"></label>
      <label>${t('sp_loiter')} <input name="loiter" type="number" min="1" max="3600"></label>
      <input name="night" size="14" aria-label="${t('sp_night')}" placeholder="${t('sp_night')}">
      <button type="submit" class="primary">${t('sp_create')}</button></form>
    <p id="sp-msg" class="error" role="alert"></p>
    <h2>${t('sp_list')}</h2><table id="sp-list" class="st"></table><div id="sp-detail"></div>`;
  const $r = (/** @type {string} */ id) => /** @type {HTMLElement} */ (root.querySelector('#' + id));
  const form = /** @type {HTMLFormElement} */ ($r('sp-form'));
  async function say(/** @type {Response} */ r) {
    const j = await r.json().catch(() => ({}));
    $r('sp-msg').textContent = t('sp_error') + (typeof j.detail === 'string' ? j.detail : JSON.stringify(j.detail ?? r.status));
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const val = (/** @type {string} */ k) => String(f.get(k) || '').trim();
    /** @type {any} */
    const body = {end: val('end'), reason: val('reason'), escalate_after_s: Number(val('escalate') || 30), profile: {}};
    if (val('start')) body.start = val('start');
    if (val('grids')) body.grids = val('grids').split(/[,，\s]+/).filter(Boolean);
    if (val('loiter')) body.profile.loiter_s = Number(val('loiter'));
    if (val('night')) body.profile.night_schedule = val('night').split(/[,，\s]+/).filter(Boolean);
    const r = await api('/api/sensitive-periods', {method: 'POST', body});
    if (!r.ok) { await say(r); return; }
    $r('sp-msg').textContent = t('sp_created'); form.reset(); load();
  });
  /** @type {Period[]} */ let list = [];
  function render() {
    $r('sp-list').innerHTML = `<tr><th>${t('sp_scope')}</th><th>${t('sp_window')}</th><th>${t('sp_state')}</th>
      <th>${t('sp_reason')}</th><th>${t('sp_by')}</th><th></th></tr>` + list.map((p) => `<tr data-period="${esc(p.id)}">
      <td>${esc(p.scope === 'district' ? t('sp_district') : p.grids.join(', '))}</td>
      <td>${esc(fmtTime(p.starts_at, true))} – ${esc(fmtTime(p.ends_at, true))}</td>
      <td class="sp-state">${esc(t('sp_' + p.state))}</td><td>${esc(p.reason)}</td><td>${esc(p.created_by)}</td>
      <td><button type="button" data-detail="${esc(p.id)}">${t('sp_details')}</button>
      ${['scheduled', 'active'].includes(p.state) ? `<button type="button" data-cancel="${esc(p.id)}">${t('sp_cancel')}</button>` : ''}</td>
      </tr>`).join('');
  }
  $r('sp-list').addEventListener('click', async (e) => {
    const b = /** @type {HTMLElement} */ (e.target);
    if (b.dataset.cancel) {
      if (!confirm(t('sp_confirm'))) return;
      const r = await api(`/api/sensitive-periods/${encodeURIComponent(b.dataset.cancel)}/cancel`, {method: 'POST'});
      if (!r.ok) await say(r);
      load();
    } else if (b.dataset.detail) {
      detail(b.dataset.detail);
    }
  });
  async function detail(/** @type {string} */ id) {
    const r = await api(`/api/sensitive-periods/${encodeURIComponent(id)}`);
    if (!r.ok) { await say(r); return; }
    const d = await r.json();
    const none = `<p>${t('sp_none')}</p>`;
    $r('sp-detail').innerHTML = `<h3>${t('sp_pushes')}</h3>` + (d.pushes.length ? `<table class="st"><tr>
      <th>${t('sp_node')}</th><th>${t('sp_phase')}</th><th>${t('sp_state')}</th><th>${t('sp_outcome')}</th>
      <th>${t('sp_why')}</th></tr>${d.pushes.map((/** @type {any} */ p) => `<tr><td><a href="#/nodes/${esc(p.node)}">${
        esc(p.node)}</a></td><td>${t('sp_' + p.phase)}</td><td>${esc(p.state)}</td><td>${esc(p.outcome || '')}</td>
      <td>${esc(p.reason || '')}</td></tr>`).join('')}</table>` : none) +
      `<h3>${t('sp_reports')}</h3>` + (d.reports.length ? `<table class="st"><tr><th>${t('sp_day')}</th>
      <th>${t('sp_file')}</th><th>${t('sp_webhook')}</th><th>${t('sp_notified')}</th></tr>${d.reports.map(
        (/** @type {any} */ x) => `<tr><td>${esc(x.day)}</td><td>${esc(x.path)}</td><td>${esc(x.webhook_status ??
          x.webhook_error)}</td><td>${esc(JSON.stringify(x.notified))}</td></tr>`).join('')}</table>` : none);
  }
  async function load() {
    const r = await api('/api/sensitive-periods');
    if (r.ok) { list = await r.json(); render(); }
  }
  app.on('live', (/** @type {any} */ msg) => { if (msg.type === 'sensitive') load(); });
  return {show: () => { load(); }};
}
