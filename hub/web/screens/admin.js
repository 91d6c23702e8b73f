// @ts-check
// Administration (admins only): staff accounts (add, role, disable/enable, new password) and the audit log,
// filtered by who, what, on what and when, a page at a time, exportable as CSV.

export const name = 'admin';
export const LANG = 'remount'; // drawn again in the other language (app.js)
export const STRINGS = {
  zh: {
    tab_admin: '管理', a_users: '工作人员账号', a_add: '新增账号', a_role: '角色', a_state: '状态', a_created: '创建时间',
    a_active: '启用', a_disabled: '已停用', a_disable: '停用', a_enable: '启用', a_reset: '重置密码',
    a_new_password: '新密码（至少 8 位）', a_save: '保存', a_saved: '已保存', r_operator: '值班员', r_installer: '安装维护',
    r_admin: '管理员', a_audit: '审计日志', a_actor: '操作人', a_action: '操作', a_target: '对象', a_detail: '详情',
    a_when: '时间', a_filter: '筛选', a_export: '导出 CSV', a_short: '密码至少 8 位', a_confirm_disable: '确定停用该账号？',
  },
  en: {
    tab_admin: 'Admin', a_users: 'Staff accounts', a_add: 'Add account', a_role: 'Role', a_state: 'State',
    a_created: 'Created', a_active: 'active', a_disabled: 'disabled', a_disable: 'Disable', a_enable: 'Enable',
    a_reset: 'Reset password', a_new_password: 'New password (8+ characters)', a_save: 'Save', a_saved: 'Saved',
    r_operator: 'operator', r_installer: 'installer', r_admin: 'admin', a_audit: 'Audit log', a_actor: 'Who',
    a_action: 'Action', a_target: 'On', a_detail: 'Detail', a_when: 'When', a_filter: 'Filter', a_export: 'Export CSV',
    a_short: 'A password needs at least 8 characters', a_confirm_disable: 'Disable this account?',
  },
};
const ROLES = ['operator', 'installer', 'admin'];
const PAGE = 50;

/** @param {HTMLElement} root @param {any} app */
export function mount(root, app) {
  const {t, esc, api, fmtTime, S} = app;
  let offset = 0;
  const roleSelect = (/** @type {string} */ id, /** @type {string} */ value) => `<select ${id} aria-label="${t('a_role')}">${
    ROLES.map((r) => `<option value="${r}"${r === value ? ' selected' : ''}>${t('r_' + r)}</option>`).join('')}</select>`;
  root.innerHTML = `<h2>${t('a_users')}</h2>
    <form id="user-add" class="filters">
      <input name="username" aria-label="${t('username')}" placeholder="${t('username')}" required pattern="[A-Za-z0-9_.@\\-]{1,64}">
      ${roleSelect('name="role"', 'operator')}
      <input name="password" type="password" autocomplete="new-password" aria-label="${t('password')}" placeholder="${t('password')}" required>
      <button type="submit" class="primary">${t('a_add')}</button></form>
    <p id="user-error" class="error" role="alert"></p><div id="users"></div>
    <h2>${t('a_audit')}</h2>
    <form id="audit-form" class="filters">
      <input id="audit-actor" aria-label="${t('a_actor')}" placeholder="${t('a_actor')}" size="10">
      <input id="audit-action" aria-label="${t('a_action')}" placeholder="${t('a_action')} (user. / command.)" size="18">
      <input id="audit-target" aria-label="${t('a_target')}" placeholder="${t('a_target')}" size="12">
      <input id="audit-from" aria-label="${t('h_from')}" placeholder="${t('date_hint')}" size="10">
      <input id="audit-to" aria-label="${t('h_to')}" placeholder="${t('date_hint')}" size="10">
      <button type="submit">${t('a_filter')}</button><a id="audit-csv" href="/api/audit.csv">${t('a_export')}</a></form>
    <p id="audit-error" class="error" role="alert"></p><div id="audit"></div>
    <div class="pager"><button id="audit-prev">${t('h_prev')}</button><span id="audit-page"></span>
      <button id="audit-next">${t('h_next')}</button></div>`;
  const $ = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (root.querySelector('#' + id));
  async function users() {
    const r = await api('/api/users');
    if (!r.ok) { $('user-error').textContent = await app.failure(r); return; }
    const list = await r.json();
    /** @type {HTMLElement} */ (root.querySelector('#users')).innerHTML = `<table id="users-table"><tr>${
      ['username', 'a_role', 'a_state', 'a_created', 'a_reset', ''].map((k) => `<th scope="col">${k ? t(k) : ''}</th>`).join('')}</tr>${
      list.map((/** @type {any} */ u) => `<tr data-user="${esc(u.username)}" data-disabled="${u.disabled}"><td>${esc(u.username)}</td>
        <td>${roleSelect('data-f="role"', u.role)}</td><td>${u.disabled ? t('a_disabled') : t('a_active')}</td>
        <td>${fmtTime(u.created, true)}</td>
        <td><input data-f="password" type="password" autocomplete="new-password" aria-label="${t('a_new_password')}"
          placeholder="${t('a_new_password')}" size="16"></td>
        <td><button data-act="save">${t('a_save')}</button>${u.username === S.me?.username ? '' :
          `<button data-act="${u.disabled ? 'enable' : 'disable'}">${u.disabled ? t('a_enable') : t('a_disable')}</button>`}</td></tr>`).join('')}</table>`;
  }
  root.addEventListener('click', async (e) => {
    const b = /** @type {HTMLElement} */ (e.target).closest('#users [data-act]');
    if (!(b instanceof HTMLElement)) return;
    const row = /** @type {HTMLElement} */ (b.closest('tr'));
    const who = row.dataset.user || '';
    const err = $('user-error'); err.textContent = '';
    /** @type {Record<string, any>} */
    const body = {};
    if (b.dataset.act === 'save') {
      const pw = /** @type {HTMLInputElement} */ (row.querySelector('[data-f="password"]')).value;
      if (pw && pw.length < 8) { err.textContent = t('a_short'); return; }
      if (pw) body.password = pw;
      body.role = /** @type {HTMLSelectElement} */ (row.querySelector('[data-f="role"]')).value;
    } else {
      if (b.dataset.act === 'disable' && !confirm(t('a_confirm_disable'))) return;
      body.disabled = b.dataset.act === 'disable';
    }
    const r = await api(`/api/users/${encodeURIComponent(who)}`, {method: 'POST', body});
    if (!r.ok) { err.textContent = await app.failure(r); return; }
    err.textContent = `${who}: ${t('a_saved')}`;
    users(); audit();
  });
  $('user-add').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = /** @type {HTMLFormElement} */ (e.target);
    const data = Object.fromEntries(new FormData(f));
    const err = $('user-error'); err.textContent = '';
    if (String(data.password).length < 8) { err.textContent = t('a_short'); return; }
    const r = await api('/api/users', {method: 'POST', body: data});
    if (!r.ok) { err.textContent = await app.failure(r); return; }
    f.reset(); err.textContent = `${data.username}: ${t('a_saved')}`;
    users(); audit();
  });
  function query() {
    const q = new URLSearchParams();
    for (const k of ['actor', 'action', 'target']) { const v = $('audit-' + k).value.trim(); if (v) q.set(k, v); }
    const from = $('audit-from').value.trim(); const to = $('audit-to').value.trim();
      if ((from && !app.isDay(from)) || (to && !app.isDay(to))) throw new Error(t('h_bad_date'));
    if (from && to && to < from) throw new Error(t('h_bad_range'));
    if (from) q.set('since', app.dayStart(from));
    if (to) q.set('until', app.dayStart(app.nextDay(to)));
    return q;
  }
  async function audit() {
    const err = $('audit-error'); err.textContent = '';
    let q;
    try { q = query(); } catch (e) { err.textContent = /** @type {Error} */ (e).message; return; }
    /** @type {HTMLAnchorElement} */ (/** @type {unknown} */ ($('audit-csv'))).href = '/api/audit.csv?' + q;
    q.set('limit', String(PAGE)); q.set('offset', String(offset));
    const r = await api('/api/audit?' + q);
    if (!r.ok) { err.textContent = await app.failure(r); return; }
    const page = await r.json();
    /** @type {HTMLElement} */ (root.querySelector('#audit')).innerHTML = `<table id="audit-table"><tr>${
      ['a_when', 'a_actor', 'a_action', 'a_target', 'a_detail'].map((k) => `<th scope="col">${t(k)}</th>`).join('')}</tr>${
      page.items.map((/** @type {any} */ a) => `<tr><td>${fmtTime(a.at, true)}</td><td>${esc(a.actor)}</td><td>${esc(a.action)}</td>
        <td>${esc(a.target)}</td><td><code>${esc(JSON.stringify(a.detail || {}))}</code></td></tr>`).join('')}</table>`;
    const to = Math.min(offset + PAGE, page.total);
    $('audit-page').textContent = page.total ? t('h_page').replace('{from}', String(offset + 1))
      .replace('{to}', String(to)).replace('{total}', String(page.total)) : '';
    $('audit-prev').disabled = offset === 0; $('audit-next').disabled = to >= page.total;
  }
  $('audit-form').addEventListener('submit', (e) => { e.preventDefault(); offset = 0; audit(); });
  $('audit-prev').addEventListener('click', () => { offset = Math.max(0, offset - PAGE); audit(); });
  $('audit-next').addEventListener('click', () => { offset += PAGE; audit(); });
  return {show: () => { users(); audit(); }};
}
