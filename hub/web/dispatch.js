// @ts-check
// The operator's side of dispatch (issue 18): on each alarm card (screens/alarms.js calls decorate()), the
// responders on duty for its grid nearest first (distance from their last fix, and its age), offer the task
// to one, several or a team, and each step of every dispatch as it happens (offered, accepted, declined with
// its reason, expired and re-offered, on scene with the distance to the pole, resolved, photos); and under
// the Reports screen's report, per team and per responder (screens/reports.js calls responders()).
// console.js adds STRINGS and calls init(app); the live stream's 'dispatch' messages come through app.on('live').

export const STRINGS = {
  zh: {
    dp_open: '派人处置', dp_close: '收起', dp_none: '该网格当前无人值班', dp_nearest: '派最近一位', dp_chosen: '派给所选',
    dp_team: '派整队', dp_far: '米', dp_fix: '定位', dp_ago: '前', dp_no_fix: '无定位', dp_busy: '正在处置其他任务',
    dp_asked: '已派', dp_d_offered: '待接受', dp_d_accepted: '已接受', dp_d_declined: '已拒绝', dp_d_expired: '超时未接受',
    dp_d_on_scene: '已到场', dp_d_resolved: '已完成', dp_d_withdrawn: '已撤回', dp_reason: '原因', dp_photos: '张照片', dp_from_pole: '距报警柱',
    dp_f_reoffered: '未被接受，已转派下一位最近的人员', dp_f_nobody: '无人接受，请另行安排', dp_failed: '操作失败',
    dp_pick: '请先选择人员', dp_by_auto: '自动', dp_rep: '处置人员', dp_rep_team: '队伍', dp_rep_who: '人员', dp_offers: '派单',
    dp_accepted: '接受', dp_declines: '拒绝', dp_expired: '超时', dp_nobody: '无人接受', dp_t_accept: '接受用时',
    dp_t_scene: '到场用时', dp_t_resolve: '处置用时', dp_p50: '中位数', dp_p90: '90% 分位',
  },
  en: {
    dp_open: 'Dispatch responders', dp_close: 'Close', dp_none: 'Nobody on duty for this grid', dp_nearest: 'Send the nearest',
    dp_chosen: 'Send selected', dp_team: 'Send team', dp_far: 'm', dp_fix: 'fix', dp_ago: 'ago', dp_no_fix: 'no fix',
    dp_busy: 'busy with another task', dp_asked: 'asked', dp_d_offered: 'offered', dp_d_accepted: 'accepted',
    dp_d_declined: 'declined', dp_d_expired: 'not accepted in time', dp_d_on_scene: 'on scene', dp_d_resolved: 'resolved', dp_d_withdrawn: 'withdrawn',
    dp_reason: 'reason', dp_photos: 'photos', dp_from_pole: 'from the pole',
    dp_f_reoffered: 'Not accepted: offered to the next nearest', dp_f_nobody: 'Nobody accepted: arrange someone else',
    dp_failed: 'Failed', dp_pick: 'Pick someone first', dp_by_auto: 'auto', dp_rep: 'Responders', dp_rep_team: 'Team',
    dp_rep_who: 'Responder', dp_offers: 'Offers', dp_accepted: 'Accepted', dp_declines: 'Declines', dp_expired: 'Not accepted in time',
    dp_nobody: 'Nobody accepted', dp_t_accept: 'To accept', dp_t_scene: 'To on scene', dp_t_resolve: 'To resolve', dp_p50: 'p50',
    dp_p90: 'p90',
  },
};

/** @type {any} */
let app = null;
const t = (/** @type {string} */ k) => (app ? app.t(k) : k);
const esc = (/** @type {any} */ s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;',
  '"': '&quot;', "'": '&#39;'}[c] || c));
/** per alarm id: its dispatches, its flag (re-offered, nobody), whether its picker is open */
const D = {rows: /** @type {Map<string, any[]>} */ (new Map()), flags: /** @type {Map<string, string>} */ (new Map()),
  open: /** @type {Set<string>} */ (new Set())};

const age = (/** @type {number|null} */ s) => (s == null ? '' : s < 90 ? `${s}s` : s < 5400 ? `${Math.round(s / 60)}min`
  : `${Math.round(s / 3600)}h`);
const hhmm = (/** @type {string} */ iso) => (iso ? new Date(iso).toLocaleTimeString(app?.S.lang === 'en' ? 'en-GB' : 'zh-CN',
  {hour12: false, timeZone: app?.S.tz}) : '');
const cardOf = (/** @type {string} */ id) => /** @type {HTMLElement|null} */ (
  document.querySelector(`article.alarm[data-id="${CSS.escape(id)}"]`));
/** @param {string} path @param {any} [body] */
async function call(path, body) {
  const r = await app.api(path, body ? {method: 'POST', body} : {});
  if (!r.ok) { const j = await r.json().catch(() => ({})); throw new Error(app.say(j.detail || String(r.status))); }
  return r.json();
}

function statusHtml(/** @type {string} */ id) {
  const rows = D.rows.get(id) || [];
  const flag = D.flags.get(id);
  let h = flag ? `<p class="d-flag">${esc(t(flag.startsWith('nobody') ? 'dp_f_nobody' : 'dp_f_reoffered'))}</p>` : '';
  h += rows.map((d) => {
    const when = d[`${d.state}_at`] || d.expired_at || d.declined_at || d.offered_at;
    let extra = d.state === 'declined' && d.reason ? ` · ${t('dp_reason')}: ${esc(d.reason)}` : '';
    if (d.scene_distance_m != null) extra += ` · ${t('dp_from_pole')} ${esc(d.scene_distance_m)} ${t('dp_far')}`;
    return `<li data-responder="${esc(d.responder)}" data-dstate="${esc(d.state)}"><b>${esc(d.name || d.responder)}</b>
      <span class="d-st d-${esc(d.state)}">${esc(t('dp_d_' + d.state))}</span> ${esc(hhmm(when))}${
      d.by === 'auto' ? ` (${t('dp_by_auto')})` : ''}${extra}</li>`;
  }).join('');
  return `<ul class="d-status">${h}</ul>`;
}
function pickerHtml(/** @type {any[]} */ people) {
  if (!people.length) return `<p class="d-none">${t('dp_none')}</p>`;
  const teams = [...new Set(people.map((p) => p.team))];
  return `<ul class="d-people">${people.map((p) => `<li><label><input type="checkbox" value="${esc(p.username)}"${
    p.busy || p.asked ? ' disabled' : ''}> <b>${esc(p.name)}</b> · ${p.distance_m != null
    ? `${esc(p.distance_m)} ${t('dp_far')}` : t('dp_no_fix')}${p.fix_age_s != null
    ? ` · ${t('dp_fix')} ${age(p.fix_age_s)} ${t('dp_ago')}` : ''}${p.busy ? ` · ${t('dp_busy')}` : ''}${
    p.asked ? ` · ${t('dp_asked')}` : ''}</label></li>`).join('')}</ul>
    <div class="d-acts"><button data-d="nearest">${t('dp_nearest')}</button><button data-d="chosen">${t('dp_chosen')}</button>${
    teams.map((team) => `<button data-d="team" data-team="${esc(team)}">${t('dp_team')} ${esc(team)}</button>`).join('')}</div>`;
}

function render(/** @type {HTMLElement} */ card) {
  const id = card.dataset.id || '';
  let panel = /** @type {HTMLElement|null} */ (card.querySelector('.d-panel'));
  if (!panel) {
    panel = document.createElement('div');
    panel.className = 'd-panel';
    panel.innerHTML = `<button class="d-open" data-d="toggle"></button><div class="d-pick"></div><div class="d-rows"></div>
      <p class="d-error error"></p>`;
    panel.addEventListener('click', (e) => {
      const b = /** @type {HTMLElement} */ (e.target).closest('[data-d]');
      if (b instanceof HTMLElement) act(card, b);
    });
    card.appendChild(panel);
  }
  /** @type {HTMLElement} */ (panel.querySelector('.d-open')).textContent = t(D.open.has(id) ? 'dp_close' : 'dp_open');
  /** @type {HTMLElement} */ (panel.querySelector('.d-rows')).innerHTML = statusHtml(id);
}
async function loadPicker(/** @type {HTMLElement} */ card) {
  const id = card.dataset.id || '';
  const pick = /** @type {HTMLElement|null} */ (card.querySelector('.d-pick'));
  if (!pick) return;
  if (!D.open.has(id)) { pick.innerHTML = ''; return; }
  try { pick.innerHTML = pickerHtml(await call(`/api/alarms/${encodeURIComponent(id)}/responders`)); } catch (e) {
    /** @type {HTMLElement} */ (card.querySelector('.d-error')).textContent = `${t('dp_failed')}: ${/** @type {Error} */ (e).message}`;
  }
}
async function act(/** @type {HTMLElement} */ card, /** @type {HTMLElement} */ b) {
  const id = card.dataset.id || '';
  const err = /** @type {HTMLElement} */ (card.querySelector('.d-error')); err.textContent = '';
  if (b.dataset.d === 'toggle') {
    if (D.open.has(id)) D.open.delete(id); else D.open.add(id);
    render(card); loadPicker(card); return;
  }
  /** @type {any} */
  let body;
  if (b.dataset.d === 'nearest') body = {nearest: 1};
  if (b.dataset.d === 'team') body = {team: b.dataset.team};
  if (b.dataset.d === 'chosen') {
    const to = [...card.querySelectorAll('.d-people input:checked')].map((i) => /** @type {HTMLInputElement} */ (i).value);
    if (!to.length) { err.textContent = t('dp_pick'); return; }
    body = {to};
  }
  try { await call(`/api/alarms/${encodeURIComponent(id)}/dispatches`, body); } catch (e) {
    err.textContent = `${t('dp_failed')}: ${/** @type {Error} */ (e).message}`; return;
  }
  D.open.delete(id);
  const c = cardOf(id);
  if (c) { render(c); loadPicker(c); }
}

/** The dispatch panel on an alarm card (drawn again each time the card is: its state is kept here). */
export async function decorate(/** @type {HTMLElement} */ card) {
  const id = card.dataset.id || '';
  if (!app || card.dataset.kind === 'nodes.offline') return;
  render(card);
  if (D.open.has(id)) loadPicker(card);
  if (!D.rows.has(id)) {
    try { D.rows.set(id, await call(`/api/alarms/${encodeURIComponent(id)}/dispatches`)); } catch { return; }
    const c = cardOf(id);
    if (c) render(c);
  }
}
function onLive(/** @type {any} */ msg) {
  if (!msg || msg.type !== 'dispatch') return;
  D.rows.set(msg.alarm_id, msg.dispatches || []);
  if (msg.flag) D.flags.set(msg.alarm_id, msg.flag);
  else if ((msg.dispatches || []).some((/** @type {any} */ d) => ['accepted', 'on_scene', 'resolved'].includes(d.state))) {
    D.flags.delete(msg.alarm_id);
  }
  const card = cardOf(msg.alarm_id);
  if (card) { render(card); if (D.open.has(msg.alarm_id)) loadPicker(card); }
}

// --- the Reports screen: per team and per responder, under its own report (same period) ------------------
const dur = (/** @type {number|null} */ s) => (s == null ? '–' : s < 90 ? `${Math.round(s)}s` : `${(s / 60).toFixed(1)}min`);
function repTable(/** @type {string} */ first, /** @type {any[]} */ rows, /** @type {(r: any) => string} */ key) {
  const head = [first, t('dp_offers'), t('dp_accepted'), t('dp_declines'), t('dp_expired'), t('dp_nobody'),
    `${t('dp_t_accept')} ${t('dp_p50')}/${t('dp_p90')}`, `${t('dp_t_scene')} ${t('dp_p50')}/${t('dp_p90')}`,
    `${t('dp_t_resolve')} ${t('dp_p50')}/${t('dp_p90')}`];
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${[
    key(r), r.offers, r.accepted, r.declines, r.expired, r.nobody_accepted,
    `${dur(r.accept_p50_s)} / ${dur(r.accept_p90_s)}`, `${dur(r.on_scene_p50_s)} / ${dur(r.on_scene_p90_s)}`,
    `${dur(r.resolve_p50_s)} / ${dur(r.resolve_p90_s)}`].map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
}
/** Appends the responders' section to the report just drawn into `report`, for the query `q` (its period). */
export async function responders(/** @type {HTMLElement} */ report, /** @type {string} */ q) {
  if (!app) return;
  try {
    const R = await call('/api/reports/responders?' + q);
    report.querySelector('#report-responders')?.remove();
    const sec = document.createElement('section');
    sec.id = 'report-responders';
    sec.innerHTML = `<h2>${t('dp_rep')}</h2>${repTable(t('dp_rep_team'), R.teams, (r) => r.team)}
      ${repTable(t('dp_rep_who'), R.responders, (r) => `${r.name} (${r.responder})`)}`;
    report.appendChild(sec);
  } catch { /* the console's own report stands; this part is extra */ }
}

/** Called once by console.js: the stylesheet and the live stream. */
export function init(/** @type {any} */ core) {
  app = core;
  const css = document.createElement('link');
  css.rel = 'stylesheet'; css.href = '/static/dispatch.css'; document.head.appendChild(css);
  app.on('live', onLive);
}
