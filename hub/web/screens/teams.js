// @ts-check
// Teams and shifts (issue 18): who goes to the scene. A team covers grids and has weekly shifts in the
// district's zone; a responder login belongs to one team and has a phone number (kept in the one phone book
// that SMS and the robots' @-mentions read). Everyone on the console reads it; admins change it (the API
// refuses the others too). On duty = inside a shift of the team and checked in from the phone.

export const name = 'teams';
export const LANG = 'remount'; // drawn again in the other language (app.js)
export const STRINGS = {
  zh: {
    tab_teams: '队伍', tm_teams: '处置队伍与班次', tm_id: '队伍编号', tm_name: '名称', tm_kind: '类型', tm_grids: '负责网格',
    tm_grids_hint: '网格编号，逗号分隔', tm_shifts: '班次', tm_members: '队员', tm_none: '暂无队伍', tm_save: '保存队伍',
    tm_edit: '编辑', tm_days: '星期', tm_start: '开始', tm_end: '结束', tm_add_shift: '添加班次', tm_remove: '删除',
    tm_overnight: '（跨夜）', tm_no_shift: '无班次（永不在岗）', tm_saved: '已保存', tm_pick_day: '请至少选择一天',
    tm_bad_time: '时间格式应为 HH:MM（00:00–23:59）', tm_same_time: '开始与结束不能相同', tm_bad_id: '队伍编号：1–32 位字母、数字、_ . -',
    tm_responders: '处置人员', tm_user: '账号', tm_phone: '手机号', tm_team: '所属队伍', tm_assign: '保存人员',
    tm_on_duty: '在岗', tm_off_duty: '不在岗', tm_in_shift: '班次内', tm_no_responder_logins: '没有未分配的处置人员账号：请先在“管理”中新增角色为“处置人员”的账号',
    tm_bad_phone: '手机号应为 11 位（1 开头）或留空', tm_read_only: '仅管理员可修改队伍与人员',
    kind_grid_staff: '网格员', kind_volunteer: '志愿者', kind_patrol: '巡逻队', kind_police_room: '警务室',
    wd_0: '周一', wd_1: '周二', wd_2: '周三', wd_3: '周四', wd_4: '周五', wd_5: '周六', wd_6: '周日',
  },
  en: {
    tab_teams: 'Teams', tm_teams: 'Response teams and shifts', tm_id: 'Team id', tm_name: 'Name', tm_kind: 'Kind',
    tm_grids: 'Grids covered', tm_grids_hint: 'grid codes, comma separated', tm_shifts: 'Shifts', tm_members: 'Members',
    tm_none: 'No teams yet', tm_save: 'Save team', tm_edit: 'Edit', tm_days: 'Days', tm_start: 'Start', tm_end: 'End',
    tm_add_shift: 'Add shift', tm_remove: 'Remove', tm_overnight: ' (overnight)', tm_no_shift: 'No shifts (never on duty)',
    tm_saved: 'Saved', tm_pick_day: 'Pick at least one day', tm_bad_time: 'Times are HH:MM (00:00–23:59)',
    tm_same_time: 'Start and end cannot be the same', tm_bad_id: 'Team id: 1–32 letters, digits, _ . -',
    tm_responders: 'Responders', tm_user: 'Login', tm_phone: 'Mobile', tm_team: 'Team', tm_assign: 'Save responder',
    tm_on_duty: 'on duty', tm_off_duty: 'off duty', tm_in_shift: 'in shift',
    tm_no_responder_logins: 'No unassigned responder logins: add one with the role "responder" under Admin first',
    tm_bad_phone: 'A mobile number is 11 digits starting with 1, or empty', tm_read_only: 'Only admins change teams and responders',
    kind_grid_staff: 'grid staff', kind_volunteer: 'volunteers', kind_patrol: 'patrol', kind_police_room: 'police room',
    wd_0: 'Mon', wd_1: 'Tue', wd_2: 'Wed', wd_3: 'Thu', wd_4: 'Fri', wd_5: 'Sat', wd_6: 'Sun',
  },
};
const KINDS = ['grid_staff', 'volunteer', 'patrol', 'police_room'];
const DAYS = [0, 1, 2, 3, 4, 5, 6];
const HHMM = /^([01]?\d|2[0-3]):[0-5]\d$/;
const END = /^(([01]?\d|2[0-3]):[0-5]\d|24:00)$/; // 24:00: the end of the day

/** @typedef {{weekday: number, start: string, end: string}} Shift */

/** @param {HTMLElement} root @param {any} app */
export function mount(root, app) {
  const {t, esc, api, S} = app;
  const admin = S.me?.role === 'admin';
  /** @type {Shift[]} the shifts of the team being edited */
  let draft = [];
  /** @type {any[]} */ let teams = [];
  const kindSelect = (/** @type {string} */ attrs, /** @type {string} */ value) => `<select ${attrs}>${
    KINDS.map((k) => `<option value="${k}"${k === value ? ' selected' : ''}>${t('kind_' + k)}</option>`).join('')}</select>`;
  const shiftText = (/** @type {Shift} */ s) => `${t('wd_' + s.weekday)} ${s.start}–${s.end}${s.end < s.start ? t('tm_overnight') : ''}`;
  root.innerHTML = `<h2>${t('tm_teams')}</h2><div id="tm-teams"></div>
    ${admin ? `<form id="tm-form" class="filters" aria-label="${t('tm_save')}">
      <input id="tm-id" aria-label="${t('tm_id')}" placeholder="${t('tm_id')}" size="10" required>
      <input id="tm-name" aria-label="${t('tm_name')}" placeholder="${t('tm_name')}" size="14" required>
      ${kindSelect(`id="tm-kind" aria-label="${t('tm_kind')}"`, 'grid_staff')}
      <input id="tm-grids" aria-label="${t('tm_grids')}" placeholder="${t('tm_grids_hint')}" size="18">
      <fieldset class="tm-days"><legend>${t('tm_days')}</legend>${DAYS.map((d) =>
        `<label><input type="checkbox" data-day="${d}"> ${t('wd_' + d)}</label>`).join('')}</fieldset>
      <input id="tm-start" aria-label="${t('tm_start')}" placeholder="08:00" size="5" value="08:00">
      <input id="tm-end" aria-label="${t('tm_end')}" placeholder="20:00" size="5" value="20:00">
      <button type="button" id="tm-add-shift">${t('tm_add_shift')}</button>
      <ul id="tm-draft" aria-label="${t('tm_shifts')}"></ul>
      <button type="submit" class="primary" id="tm-save">${t('tm_save')}</button></form>` : `<p>${t('tm_read_only')}</p>`}
    <p id="tm-error" class="error" role="alert"></p>
    <h2>${t('tm_responders')}</h2><div id="tm-people"></div>
    ${admin ? `<form id="tm-assign" class="filters" aria-label="${t('tm_assign')}">
      <select id="tm-user" aria-label="${t('tm_user')}"></select>
      <input id="tm-person" aria-label="${t('tm_name')}" placeholder="${t('tm_name')}" size="12">
      <select id="tm-team" aria-label="${t('tm_team')}"></select>
      <input id="tm-phone" aria-label="${t('tm_phone')}" placeholder="${t('tm_phone')}" size="12" inputmode="tel">
      <button type="submit" class="primary">${t('tm_assign')}</button></form>` : ''}
    <p id="tm-people-error" class="error" role="alert"></p>`;
  const $ = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (root.querySelector('#' + id));

  function drawDraft() {
    if (!admin) return;
    $('tm-draft').innerHTML = draft.length ? draft.map((s, i) => `<li>${esc(shiftText(s))}
      <button type="button" data-remove="${i}" aria-label="${t('tm_remove')} ${esc(shiftText(s))}">${t('tm_remove')}</button></li>`).join('')
      : `<li>${t('tm_no_shift')}</li>`;
  }
  async function load() {
    const [rt, rp] = await Promise.all([api('/api/teams'), api('/api/responders')]);
    if (!rt.ok) { $('tm-error').textContent = await app.failure(rt); return; }
    if (!rp.ok) { $('tm-people-error').textContent = await app.failure(rp); return; }
    teams = await rt.json();
    const people = await rp.json();
    /** @type {Record<string, any[]>} */
    const members = {};
    for (const p of people) (members[p.team] = members[p.team] || []).push(p);
    root.querySelector('#tm-teams').innerHTML = teams.length ? `<table id="tm-table"><tr>${
      ['tm_id', 'tm_name', 'tm_kind', 'tm_grids', 'tm_shifts', 'tm_members', ''].map((k) => `<th scope="col">${k ? t(k) : ''}</th>`).join('')}</tr>${
      teams.map((tm) => `<tr data-team="${esc(tm.id)}"><td>${esc(tm.id)}</td><td>${esc(tm.name)}</td><td>${t('kind_' + tm.kind)}</td>
        <td>${esc((tm.grids || []).join(', '))}</td>
        <td>${(tm.shifts || []).length ? tm.shifts.map((/** @type {Shift} */ s) => esc(shiftText(s))).join('<br>') : t('tm_no_shift')}</td>
        <td>${(members[tm.id] || []).map((p) => esc(p.name)).join(', ')}</td>
        <td>${admin ? `<button data-edit="${esc(tm.id)}">${t('tm_edit')}</button>` : ''}</td></tr>`).join('')}</table>`
      : `<p>${t('tm_none')}</p>`;
    root.querySelector('#tm-people').innerHTML = people.length ? `<table id="tm-people-table"><tr>${
      ['tm_user', 'tm_name', 'tm_team', 'tm_phone', 'tm_on_duty'].map((k) => `<th scope="col">${t(k)}</th>`).join('')}</tr>${
      people.map((/** @type {any} */ p) => `<tr data-user="${esc(p.username)}"><td>${esc(p.username)}</td><td>${esc(p.name)}</td>
        <td>${esc(p.team_name)}</td><td>${esc(p.phone)}</td>
        <td>${p.on_duty ? t('tm_on_duty') : t('tm_off_duty')}${p.in_shift && !p.on_duty ? ` (${t('tm_in_shift')})` : ''}</td></tr>`).join('')}</table>` : '';
    if (admin) await fillAssign(people);
  }
  async function fillAssign(/** @type {any[]} */ people) {
    const r = await api('/api/users');
    const logins = r.ok ? (await r.json()).filter((/** @type {any} */ u) => u.role === 'responder' && !u.disabled) : [];
    $('tm-user').innerHTML = logins.map((/** @type {any} */ u) => `<option value="${esc(u.username)}">${esc(u.username)}${
      people.some((p) => p.username === u.username) ? '' : ' *'}</option>`).join('');
    $('tm-team').innerHTML = teams.map((tm) => `<option value="${esc(tm.id)}">${esc(tm.name)} (${esc(tm.id)})</option>`).join('');
    if (!logins.length) $('tm-people-error').textContent = t('tm_no_responder_logins');
    pickPerson(people);
    $('tm-user').onchange = () => pickPerson(people);
  }
  function pickPerson(/** @type {any[]} */ people) {
    const p = people.find((x) => x.username === $('tm-user').value);
    $('tm-person').value = p ? p.name : '';
    $('tm-phone').value = p ? p.phone : '';
    if (p) $('tm-team').value = p.team;
  }

  root.addEventListener('click', (e) => {
    const el = /** @type {HTMLElement} */ (e.target);
    const edit = el.closest('[data-edit]');
    if (edit instanceof HTMLElement) {
      const tm = teams.find((x) => x.id === edit.dataset.edit);
      if (!tm) return;
      $('tm-id').value = tm.id; $('tm-name').value = tm.name;
      /** @type {HTMLSelectElement} */ (/** @type {unknown} */ ($('tm-kind'))).value = tm.kind;
      $('tm-grids').value = (tm.grids || []).join(', ');
      draft = (tm.shifts || []).map((/** @type {Shift} */ s) => ({...s}));
      drawDraft(); $('tm-name').focus();
      return;
    }
    const rm = el.closest('[data-remove]');
    if (rm instanceof HTMLElement) { draft.splice(Number(rm.dataset.remove), 1); drawDraft(); }
  });
  if (admin) {
    $('tm-add-shift').addEventListener('click', () => {
      const err = $('tm-error'); err.textContent = '';
      const start = $('tm-start').value.trim(); const end = $('tm-end').value.trim();
      const days = [...root.querySelectorAll('.tm-days input:checked')].map((c) => Number(/** @type {HTMLElement} */ (c).dataset.day));
      if (!days.length) { err.textContent = t('tm_pick_day'); return; }
      if (!HHMM.test(start) || !END.test(end)) { err.textContent = t('tm_bad_time'); return; }
      if (start === end) { err.textContent = t('tm_same_time'); return; }
      const pad = (/** @type {string} */ x) => x.padStart(5, '0');
      for (const d of days) draft.push({weekday: d, start: pad(start), end: pad(end)});
      draft.sort((a, b) => a.weekday - b.weekday || a.start.localeCompare(b.start));
      root.querySelectorAll('.tm-days input:checked').forEach((c) => { /** @type {HTMLInputElement} */ (c).checked = false; });
      drawDraft();
    });
    $('tm-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const err = $('tm-error'); err.textContent = '';
      const id = $('tm-id').value.trim();
      if (!/^[A-Za-z0-9_.-]{1,32}$/.test(id)) { err.textContent = t('tm_bad_id'); return; }
      const grids = $('tm-grids').value.split(/[,，\s]+/).map((g) => g.trim()).filter(Boolean);
      const body = {name: $('tm-name').value.trim(), kind: $('tm-kind').value, grids, shifts: draft};
      const r = await api(`/api/teams/${encodeURIComponent(id)}`, {method: 'PUT', body});
      if (!r.ok) { err.textContent = await app.failure(r); return; }
      err.textContent = `${id}: ${t('tm_saved')}`;
      draft = []; drawDraft(); /** @type {HTMLFormElement} */ (/** @type {unknown} */ ($('tm-form'))).reset();
      load();
    });
    $('tm-assign').addEventListener('submit', async (e) => {
      e.preventDefault();
      const err = $('tm-people-error'); err.textContent = '';
      const phone = $('tm-phone').value.replace(/[\s-]/g, '');
      if (phone && !/^1\d{10}$/.test(phone)) { err.textContent = t('tm_bad_phone'); return; }
      const who = $('tm-user').value;
      const r = await api(`/api/responders/${encodeURIComponent(who)}`, {method: 'PUT',
        body: {name: $('tm-person').value.trim(), team: $('tm-team').value, phone}});
      if (!r.ok) { err.textContent = await app.failure(r); return; }
      err.textContent = `${who}: ${t('tm_saved')}`;
      load();
    });
  }
  drawDraft();
  return {show: () => { load(); }};
}
