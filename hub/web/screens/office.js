// @ts-check
// Community office / 社区登记 (issue 17, item 4): blocks, units and doors; real-name registration; enrolling a
// finger at a door with the reader's prompts live; revoke; leases ending and renewal; the registration
// office's sheet; the door log. A screen of the console (app.js): it reads the console's language and the
// district's zone (app.S) and hears its live stream (app.on('live')).
// Plain DOM and template strings like the rest of the console: one screen does not need a view library.

import {problemText, serverText} from '../server-errors.js';

export const name = 'office';
/** @type {Record<'zh'|'en', Record<string, string>>} */
export const I18N = {
  zh: {
    tab: '社区登记', tab_office: '社区登记', sec_register: '实名登记', sec_tenants: '租户', sec_leases: '租期到期', sec_import: '批量导入',
    sec_log: '门禁记录', sec_blocks: '楼栋与门', name: '姓名', id_number: '身份证号', phone: '手机',
    block: '楼栋', unit: '房号', lease_start: '租期开始', lease_end: '租期结束', register: '登记',
    registered: '已登记', state: '状态', enrolments: '指纹', actions: '操作', enrol: '录入指纹', revoke: '注销',
    renew: '续租', door: '门', log: '记录', none: '无', active: '在住', revoked: '已注销', pending: '等待中',
    enrolled: '已录入', o_failed: '失败', revoking: '注销中', revoke_failed: '注销失败', confirm_revoke: '确认注销该租户？所有门的指纹将被删除。',
    step_wait: '等待门禁响应…', step_place: '请将手指放在读头上（第 {n}/{scans} 次）', step_lift: '请抬起手指',
    step_done: '录入完成（槽位 {slot}）', step_error: '读头报错：{reason}', reply_failed: '录入失败：{detail}',
    r_timeout: '超时未放手指，请重试', r_poor_image: '指纹不清晰，请平放手指重试', r_mismatch: '两次不是同一手指，请重试',
    r_hardware: '读头故障', r_refused: '门禁拒绝', days7: '7 天内', days30: '30 天内', new_end: '新的到期日',
    no_leases: '没有即将到期的租约', file: '登记表（CSV 或 XLSX）', import: '导入', imported: '已导入 {n} 人',
    row: '行', field: '字段', problem: '问题', nothing_stored: '文件有错误，未保存任何记录', filter: '筛选',
    all: '全部', tenant: '租户', show: '查看', csv: '导出 CSV', at: '时间', kind: '事件', actor: '操作人',
    source: '来源', src_door: '门禁', src_staff: '工作人员', block_id: '楼栋编号', block_name: '名称',
    units: '房号（逗号分隔）', add_block: '添加楼栋', door_node: '门禁节点', f_node: '门禁节点', add_door: '添加门', doors: '门',
    o_date_hint: '年-月-日', saved: '已保存', error: '出错：{detail}', no_tenants: '还没有租户',
    ok_door_granted: '开门', ok_door_denied: '拒绝', ok_door_lockout: '锁定', ok_door_forced: '强行开门',
    ok_door_held_open: '门未关', ok_door_fire_release: '消防释放', ok_node_fault: '故障', ok_command_refused: '命令被拒',
    ok_tenant_add: '登记', ok_tenant_renew: '续租', ok_tenant_import: '导入', ok_access_enrol: '录入指纹',
    ok_access_revoke: '注销', ok_access_sync: '同步名单', ok_door_unlock: '远程开门', ok_door_add: '添加门',
    e_required: '必填', e_too_long: '太长', e_id_format: '身份证号应为 18 位：17 位数字加一位数字或 X',
    e_id_birth: '身份证号中的出生日期不正确', e_id_check_digit: '身份证号校验位不对（GB 11643），请检查是否输错',
    e_phone_format: '手机号应为 11 位，座机请带区号', e_lease_order: '租期结束早于开始',
    e_date_format: '日期格式应为 年-月-日（如 2026-12-31）', e_zone_missing: '时间缺少时区',
    e_unit_unknown: '该楼栋没有这个房号', e_block_unknown: '没有这个楼栋', e_duplicate: '此人已在该房间登记',
    e_duplicate_in_file: '此人在表中同一房间出现两次', e_lease_past: '新的到期日已经过去', e_revoked: '该租户已注销',
    e_file_type: '请上传 .csv 或 .xlsx 文件', e_file_not_xlsx: '该文件不是有效的 XLSX 工作簿，请另存为 .xlsx 或 .csv',
    e_file_not_csv: '该文件不是 CSV 文本', e_file_encoding: 'CSV 须为 UTF-8 或 GB18030 编码', e_file_empty: '文件是空的',
    e_file_too_big: '文件太大', e_too_many_rows: '行数太多，请拆分', e_headings: '第一行须为列名：姓名、身份证号、手机、楼栋、房号、租期开始、租期结束',
    e_no_file: '请选择文件', f_file: '文件', f_tenant: '租户',
  },
  en: {
    tab: 'Community office', tab_office: 'Community office', sec_register: 'Register a tenant', sec_tenants: 'Tenants', sec_leases: 'Leases ending',
    sec_import: 'Import a sheet', sec_log: 'Door log', sec_blocks: 'Blocks and doors', name: 'Real name',
    id_number: 'Resident ID number', phone: 'Phone', block: 'Block', unit: 'Unit', lease_start: 'Lease start',
    lease_end: 'Lease end', register: 'Register', registered: 'Registered', state: 'State', enrolments: 'Fingers',
    actions: 'Actions', enrol: 'Enrol finger', revoke: 'Revoke', renew: 'Renew', door: 'Door', log: 'Log',
    none: 'none', active: 'active', revoked: 'revoked', pending: 'pending', enrolled: 'enrolled', o_failed: 'failed',
    revoking: 'revoking', revoke_failed: 'revoke failed',
    confirm_revoke: 'Revoke this tenant? Their finger is deleted at every door.',
    step_wait: 'Waiting for the door…', step_place: 'Place the finger on the reader (scan {n} of {scans})',
    step_lift: 'Lift the finger', step_done: 'Enrolled (slot {slot})', step_error: 'The reader reports: {reason}',
    reply_failed: 'Enrolment failed: {detail}', r_timeout: 'no finger in time, try again',
    r_poor_image: 'unclear print, place the finger flat and try again', r_mismatch: 'not the same finger twice, try again',
    r_hardware: 'reader fault', r_refused: 'refused by the door', days7: 'Next 7 days', days30: 'Next 30 days',
    new_end: 'New end', no_leases: 'No lease ends in that time', file: 'Sheet (CSV or XLSX)', import: 'Import',
    imported: '{n} tenants imported', row: 'Row', field: 'Field', problem: 'Problem',
    nothing_stored: 'The file has errors; nothing was stored', filter: 'Filter', all: 'All', tenant: 'Tenant',
    show: 'Show', csv: 'Export CSV', at: 'Time', kind: 'Event', actor: 'By', source: 'Source', src_door: 'door',
    src_staff: 'staff', block_id: 'Block id', block_name: 'Name', units: 'Units (comma-separated)',
    add_block: 'Add block', door_node: 'Door node', f_node: 'Door node', add_door: 'Add door', doors: 'Doors', o_date_hint: 'yyyy-mm-dd',
    saved: 'Saved', error: 'Error: {detail}', no_tenants: 'No tenants yet',
    ok_door_granted: 'opened', ok_door_denied: 'refused', ok_door_lockout: 'locked out', ok_door_forced: 'forced open',
    ok_door_held_open: 'held open', ok_door_fire_release: 'fire release', ok_node_fault: 'fault',
    ok_command_refused: 'command refused', ok_tenant_add: 'registered', ok_tenant_renew: 'renewed',
    ok_tenant_import: 'imported', ok_access_enrol: 'enrol', ok_access_revoke: 'revoke', ok_access_sync: 'list sync',
    ok_door_unlock: 'remote unlock', ok_door_add: 'door added',
    e_required: 'required', e_too_long: 'too long', e_id_format: 'an ID number has 18 characters: 17 digits and a digit or X',
    e_id_birth: 'the birth date in the ID number is not a date', e_id_check_digit: 'the ID number\'s check digit is wrong (GB 11643): a digit was mistyped',
    e_phone_format: 'an 11-digit mobile, or a landline with its area code', e_lease_order: 'the lease ends before it starts',
    e_date_format: 'write the date as year-month-day (2026-12-31)', e_zone_missing: 'the time has no zone',
    e_unit_unknown: 'the block has no such unit', e_block_unknown: 'no such block',
    e_duplicate: 'this person is already registered in the unit', e_duplicate_in_file: 'this person is twice in the sheet for the same unit',
    e_lease_past: 'the new end is in the past', e_revoked: 'the tenant is revoked',
    e_file_type: 'send a .csv or .xlsx file', e_file_not_xlsx: 'this file is not an XLSX workbook: save it as .xlsx or .csv',
    e_file_not_csv: 'this file is not CSV text', e_file_encoding: 'the CSV must be UTF-8 or GB18030',
    e_file_empty: 'the file is empty', e_file_too_big: 'the file is too big', e_too_many_rows: 'too many rows: split the sheet',
    e_headings: 'the first row must name the columns: name, id_number, phone, block, unit, lease_start, lease_end',
    e_no_file: 'choose a file', f_file: 'file', f_tenant: 'tenant',
  },
};

/** @typedef {{lang: string, tz: string}} AppState */
/** @type {{root: HTMLElement|null, app: AppState, blocks: any[], doors: any[], tenants: any[], nodes: any[],
 *   enrol: {command_id: string, tenant: string, door: string, steps: any[], result: any}|null, days: number}} */
const O = {root: null, app: {lang: 'zh', tz: 'Asia/Shanghai'}, blocks: [], doors: [], tenants: [], nodes: [],
  enrol: null, days: 7};

function lang() { return O.app.lang === 'en' ? 'en' : 'zh'; }
/** @param {string} key @param {Record<string, any>} [vars] */
export function t(key, vars = {}) {
  const s = I18N[lang()][key] ?? I18N.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
}
/** @param {any} s */
function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;',
    "'": '&#39;'}[c] || c));
}
/** Year-month-day (both languages: the order of the date inputs), in the district's zone. @param {string} iso */
function parts(iso) {
  const f = new Intl.DateTimeFormat('en-GB', {timeZone: O.app.tz, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23'});
  return Object.fromEntries(f.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
}
/** @param {string} iso */
export function fmtDate(iso) {
  if (!iso) return '';
  const p = parts(iso);
  return lang() === 'zh' ? `${p.year}年${p.month}月${p.day}日` : `${p.year}-${p.month}-${p.day}`;
}
/** @param {string} iso */
export function fmtTime(iso) {
  if (!iso) return '';
  const p = parts(iso);
  return `${fmtDate(iso)} ${p.hour}:${p.minute}:${p.second}`;
}
/** @param {string} kind */
function kindLabel(kind) { const k = 'ok_' + kind.replace(/\./g, '_'); return I18N.en[k] ? t(k) : kind; }

/** @param {string} path @param {RequestInit & {json?: any}} [opts] */
async function api(path, opts = {}) {
  const init = {credentials: /** @type {RequestCredentials} */ ('same-origin'), ...opts};
  if (opts.json !== undefined) {
    init.body = JSON.stringify(opts.json);
    init.headers = {'Content-Type': 'application/json'};
  }
  const r = await fetch(path, init);
  let body = null;
  try { body = await r.json(); } catch { body = null; }
  return {ok: r.ok, status: r.status, body};
}

/** The errors of a 422 (or any failure) as list items, each in the screen's language. @param {any} res */
function errorList(res) {
  const d = res.body && res.body.detail;
  if (d && Array.isArray(d.errors)) {
    return d.errors.map((/** @type {any} */ e) => {
      const code = 'e_' + e.code;
      const text = I18N.en[code] ? t(code) : e.message;
      const where = (e.row != null ? `${t('row')} ${e.row}: ` : '') + (I18N.en[e.field] || I18N.en['f_' + e.field]
        ? t(I18N.en[e.field] ? e.field : 'f_' + e.field) : e.field);
      return `<li data-code="${esc(e.code)}" data-field="${esc(e.field)}"${e.row != null ? ` data-row="${e.row}"` : ''}>`
        + `${esc(where)}: ${esc(text)}</li>`;
    }).join('');
  }
  const detail = typeof d === 'string' ? serverText(d, lang()) : (Array.isArray(d) ? d.map((x) => problemText(x, lang())).join('; ') : res.status);
  return `<li data-code="http_${res.status}">${esc(t('error', {detail}))}</li>`;
}

// --- the screen ---------------------------------------------------------------------------------------------
const SECTIONS = ['register', 'tenants', 'leases', 'import', 'log', 'blocks'];

/** @param {string} id @param {string} label @param {string} [cls] */
function dateInput(id, label, cls = '') {
  return `<input id="${id}" class="date ${cls}" inputmode="numeric" pattern="\\d{4}-\\d{1,2}-\\d{1,2}" size="10" `
    + `placeholder="${esc(t('o_date_hint'))}" aria-label="${esc(t(label))}">`;
}

function layout() {
  const keep = O.root ? Object.fromEntries([...O.root.querySelectorAll('input[id]:not([type=file]),select[id]')]
    .map((el) => [el.id, /** @type {HTMLInputElement} */ (el).value])) : {};
  const root = /** @type {HTMLElement} */ (O.root);
  root.innerHTML = `
  <nav class="office-nav">${SECTIONS.map((s) => `<a href="#office-${s}">${esc(t('sec_' + s))}</a>`).join('')}</nav>
  <section id="office-register" class="office-sec"><h2>${esc(t('sec_register'))}</h2>
    <form id="o-form" class="office-form" novalidate>
      <label>${esc(t('name'))}<input id="o-name" autocomplete="off" required maxlength="100"></label>
      <label>${esc(t('id_number'))}<input id="o-id" autocomplete="off" required maxlength="18" size="20"></label>
      <label>${esc(t('phone'))}<input id="o-phone" autocomplete="off" required maxlength="20"></label>
      <label>${esc(t('block'))}<select id="o-block"></select></label>
      <label>${esc(t('unit'))}<select id="o-unit"></select></label>
      <label>${esc(t('lease_start'))}${dateInput('o-lease-start', 'lease_start')}</label>
      <label>${esc(t('lease_end'))}${dateInput('o-lease-end', 'lease_end')}</label>
      <button type="submit" id="o-register" class="primary">${esc(t('register'))}</button>
    </form>
    <div role="alert"><ul id="o-form-errors" class="error office-errors"></ul></div><p id="o-form-ok" class="office-ok"></p>
  </section>
  <section id="office-tenants" class="office-sec"><h2>${esc(t('sec_tenants'))}</h2>
    <div id="o-enrol" class="office-enrol" hidden role="status" aria-live="polite"></div>
    <div id="o-tenants"></div></section>
  <section id="office-leases" class="office-sec"><h2>${esc(t('sec_leases'))}</h2>
    <div class="office-form"><button type="button" id="o-days-7">${esc(t('days7'))}</button>
      <button type="button" id="o-days-30">${esc(t('days30'))}</button></div><div id="o-leases"></div></section>
  <section id="office-import" class="office-sec"><h2>${esc(t('sec_import'))}</h2>
    <form id="o-import-form" class="office-form"><label>${esc(t('file'))}<input id="o-file" type="file"
      accept=".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"></label>
      <button type="submit" id="o-import">${esc(t('import'))}</button></form>
    <p id="o-import-ok" class="office-ok"></p><div id="o-import-errors" role="alert"></div></section>
  <section id="office-log" class="office-sec"><h2>${esc(t('sec_log'))}</h2>
    <form id="o-log-form" class="office-form"><label>${esc(t('filter'))}<select id="o-log-by">
      <option value="">${esc(t('all'))}</option><option value="door">${esc(t('door'))}</option>
      <option value="block">${esc(t('block'))}</option><option value="tenant">${esc(t('tenant'))}</option></select></label>
      <select id="o-log-what" aria-label="${esc(t('filter'))}"></select>
      <button type="submit" id="o-log-show">${esc(t('show'))}</button><a id="o-log-csv" href="#">${esc(t('csv'))}</a>
    </form><div id="o-log"></div></section>
  <section id="office-blocks" class="office-sec"><h2>${esc(t('sec_blocks'))}</h2>
    <form id="o-block-form" class="office-form">
      <label>${esc(t('block_id'))}<input id="o-block-id" maxlength="64" pattern="[A-Za-z0-9_\\-]+"></label>
      <label>${esc(t('block_name'))}<input id="o-block-name" maxlength="200"></label>
      <label>${esc(t('units'))}<input id="o-block-units" size="30"></label>
      <button type="submit" id="o-add-block">${esc(t('add_block'))}</button></form>
    <form id="o-door-form" class="office-form">
      <label>${esc(t('door_node'))}<select id="o-door-node"></select></label>
      <label>${esc(t('block'))}<select id="o-door-block"></select></label>
      <button type="submit" id="o-add-door">${esc(t('add_door'))}</button></form>
    <div role="alert"><ul id="o-blocks-errors" class="error office-errors"></ul></div><div id="o-blocks"></div></section>`;
  bind();
  fillSelects();
  for (const [id, v] of Object.entries(keep)) { const el = /** @type {HTMLInputElement|null} */ (root.querySelector('#' + id)); if (el && v) el.value = v; }
  fillUnits();
  renderTenants(); renderBlocks(); renderEnrol();
}

/** @param {string} id */
const $o = (id) => /** @type {HTMLInputElement} */ (/** @type {HTMLElement} */ (O.root).querySelector('#' + id));

function fillSelects() {
  const opts = O.blocks.map((b) => `<option value="${esc(b.id)}">${esc(b.id)}${b.name ? ' · ' + esc(b.name) : ''}</option>`).join('');
  $o('o-block').innerHTML = opts; $o('o-door-block').innerHTML = opts;
  const placed = new Set(O.doors.map((d) => d.node));
  $o('o-door-node').innerHTML = O.nodes.filter((n) => n.kind === 'rental_door' && !placed.has(n.id))
    .map((n) => `<option value="${esc(n.id)}">${esc(n.id)}</option>`).join('');
  fillLogWhat();
}
function fillUnits() {
  const b = O.blocks.find((x) => x.id === $o('o-block').value);
  const keep = $o('o-unit').value;
  $o('o-unit').innerHTML = (b && b.units.length ? b.units : ['']).map((u) => `<option value="${esc(u)}">${esc(u || t('none'))}</option>`).join('');
  if (keep) $o('o-unit').value = keep;
}
function fillLogWhat() {
  const by = $o('o-log-by').value;
  const items = by === 'door' ? O.doors.map((d) => [d.node, d.node]) : by === 'block' ? O.blocks.map((b) => [b.id, b.id])
    : by === 'tenant' ? O.tenants.map((x) => [x.id, `${x.name} (${x.block} ${x.unit})`]) : [];
  const sel = $o('o-log-what');
  sel.innerHTML = items.map(([v, l]) => `<option value="${esc(v)}">${esc(l)}</option>`).join('');
  sel.hidden = !by;
}

function bind() {
  $o('o-block').addEventListener('change', fillUnits);
  $o('o-form').addEventListener('submit', (e) => { e.preventDefault(); register(); });
  $o('o-days-7').addEventListener('click', () => { O.days = 7; loadLeases(); });
  $o('o-days-30').addEventListener('click', () => { O.days = 30; loadLeases(); });
  $o('o-import-form').addEventListener('submit', (e) => { e.preventDefault(); importSheet(); });
  $o('o-log-by').addEventListener('change', fillLogWhat);
  $o('o-log-form').addEventListener('submit', (e) => { e.preventDefault(); loadLog(); });
  $o('o-block-form').addEventListener('submit', (e) => { e.preventDefault(); addBlock(); });
  $o('o-door-form').addEventListener('submit', (e) => { e.preventDefault(); addDoor(); });
}

async function load() {
  const [b, d, tn, n] = await Promise.all([api('/api/doors/blocks'), api('/api/doors'), api('/api/doors/tenants'),
    api('/api/nodes')]);
  O.blocks = b.ok ? b.body : []; O.doors = d.ok ? d.body : []; O.tenants = tn.ok ? tn.body : [];
  O.nodes = n.ok ? n.body : [];
  const enrol = await api('/api/doors/enrolments');
  const by = new Map();
  for (const e of enrol.ok ? enrol.body : []) { if (!by.has(e.tenant)) by.set(e.tenant, []); by.get(e.tenant).push(e); }
  for (const x of O.tenants) x.enrolments = by.get(x.id) || [];
  if (!O.root) return;
  const keepBlock = $o('o-block').value;
  fillSelects();
  if (keepBlock) $o('o-block').value = keepBlock;
  fillUnits(); renderTenants(); renderBlocks(); loadLeases();
}

function doorsOf(block) { return O.doors.filter((d) => d.block === block); }

function renderTenants() {
  const box = $o('o-tenants');
  if (!O.tenants.length) { box.innerHTML = `<p class="empty">${esc(t('no_tenants'))}</p>`; return; }
  const rows = O.tenants.map((x) => {
    const fingers = (x.enrolments || []).map((e) => `<span class="enr enr-${esc(e.state)}" data-door="${esc(e.door)}">`
      + `${esc(e.door)}: ${esc(t(e.state === 'failed' ? 'o_failed' : e.state))}</span>`).join(' ') || esc(t('none'));
    const acts = x.state === 'active' ? `<select class="o-enrol-door" aria-label="${esc(t('door'))}">${doorsOf(x.block)
      .map((d) => `<option value="${esc(d.node)}">${esc(d.node)}</option>`).join('')}</select>
      <button type="button" data-act="enrol">${esc(t('enrol'))}</button>
      <button type="button" data-act="revoke">${esc(t('revoke'))}</button>` : '';
    return `<tr data-tenant="${esc(x.id)}" data-state="${esc(x.state)}"><td>${esc(x.name)}</td><td>${esc(x.id_number || '')}</td>
      <td>${esc(x.phone)}</td><td>${esc(x.block)} ${esc(x.unit)}</td><td>${esc(fmtDate(x.lease_start))} – ${esc(fmtDate(x.lease_end))}</td>
      <td>${esc(t(x.state))}</td><td>${fingers}</td><td class="office-acts">${acts}
      <button type="button" data-act="log">${esc(t('log'))}</button></td></tr>`;
  }).join('');
  box.innerHTML = `<table class="office-table"><tr><th>${esc(t('name'))}</th><th>${esc(t('id_number'))}</th>
    <th>${esc(t('phone'))}</th><th>${esc(t('unit'))}</th><th>${esc(t('lease_start'))} – ${esc(t('lease_end'))}</th>
    <th>${esc(t('state'))}</th><th>${esc(t('enrolments'))}</th><th>${esc(t('actions'))}</th></tr>${rows}</table>`;
}

function renderBlocks() {
  $o('o-blocks').innerHTML = `<table class="office-table"><tr><th>${esc(t('block'))}</th><th>${esc(t('block_name'))}</th>
    <th>${esc(t('unit'))}</th><th>${esc(t('doors'))}</th></tr>${O.blocks.map((b) => `<tr data-block="${esc(b.id)}">
    <td>${esc(b.id)}</td><td>${esc(b.name)}</td><td>${esc(b.units.join(', '))}</td><td>${esc(b.doors.join(', '))}</td></tr>`)
    .join('')}</table>`;
}

async function register() {
  const ok = $o('o-form-ok'); const errs = $o('o-form-errors');
  ok.textContent = ''; errs.innerHTML = '';
  const res = await api('/api/doors/tenants', {method: 'POST', json: {
    name: $o('o-name').value, id_number: $o('o-id').value, phone: $o('o-phone').value, block: $o('o-block').value,
    unit: $o('o-unit').value, lease_start: $o('o-lease-start').value, lease_end: $o('o-lease-end').value,
    require_id: true}});
  /** @type {HTMLElement} */ (O.root).querySelectorAll('#o-form .bad').forEach((el) => el.classList.remove('bad'));
  if (!res.ok) {
    errs.innerHTML = errorList(res);
    for (const e of (res.body?.detail?.errors || [])) {
      const id = {name: 'o-name', id_number: 'o-id', phone: 'o-phone', block: 'o-block', unit: 'o-unit',
        lease_start: 'o-lease-start', lease_end: 'o-lease-end'}[e.field];
      if (id) { $o(id).classList.add('bad'); $o(id).setAttribute('aria-invalid', 'true'); }
    }
    return;
  }
  ok.textContent = `${t('registered')}: ${res.body.name} (${res.body.id_number})`;
  for (const id of ['o-name', 'o-id', 'o-phone']) $o(id).value = '';
  await load();
}

/** @param {MouseEvent} ev */
async function onAction(ev) {
  const btn = /** @type {HTMLElement} */ (ev.target).closest('button[data-act]');
  if (!btn) return;
  const row = /** @type {HTMLElement} */ (btn.closest('[data-tenant]'));
  const tid = row?.dataset.tenant || '';
  const act = /** @type {HTMLElement} */ (btn).dataset.act;
  if (act === 'enrol') {
    const door = /** @type {HTMLSelectElement} */ (row.querySelector('.o-enrol-door')).value;
    const res = await api(`/api/doors/tenants/${encodeURIComponent(tid)}/enrol`, {method: 'POST', json: {door}});
    const x = O.tenants.find((y) => y.id === tid);
    O.enrol = {command_id: res.ok ? res.body.command_id : '', tenant: x ? x.name : tid, door, steps: [],
      result: res.ok ? null : {ok: false, detail: errorText(res)}};
    const cid = O.enrol.command_id;
    O.enrol.steps = early.filter((m) => m.command_id === cid);
    renderEnrol(); await load();
  } else if (act === 'revoke') {
    if (!window.confirm(t('confirm_revoke'))) return;
    await api(`/api/doors/tenants/${encodeURIComponent(tid)}/revoke`, {method: 'POST', json: {}});
    await load();
  } else if (act === 'log') {
    $o('o-log-by').value = 'tenant'; fillLogWhat(); $o('o-log-what').value = tid; loadLog();
    document.getElementById('office-log')?.scrollIntoView();
  } else if (act === 'renew') {
    const input = /** @type {HTMLInputElement} */ (row.querySelector('.o-renew-date'));
    const res = await api(`/api/doors/tenants/${encodeURIComponent(tid)}/renew`, {method: 'POST',
      json: {lease_end: input.value}});
    const out = /** @type {HTMLElement} */ (row.querySelector('.o-renew-errors'));
    out.innerHTML = res.ok ? '' : errorList(res);
    if (res.ok) await load();
  }
}
/** @param {any} res */
function errorText(res) { const d = res.body?.detail; return typeof d === 'string' ? serverText(d, lang()) : String(res.status); }

function renderEnrol() {
  const box = $o('o-enrol');
  if (!O.enrol) { box.hidden = true; return; }
  const E = O.enrol;
  box.hidden = false;
  const items = E.steps.map((s) => {
    const text = s.step === 'place' ? t('step_place', s) : s.step === 'lift' ? t('step_lift')
      : s.step === 'done' ? t('step_done', s) : t('step_error', {reason: I18N.en['r_' + s.reason] ? t('r_' + s.reason) : (s.detail || s.reason)});
    return `<li data-step="${esc(s.step)}"${s.n ? ` data-n="${s.n}"` : ''}>${esc(text)}</li>`;
  });
  if (!E.steps.length && !E.result) items.push(`<li data-step="wait">${esc(t('step_wait'))}</li>`);
  if (E.result && !E.result.ok && !E.steps.some((s) => s.step === 'error')) {
    items.push(`<li data-step="failed">${esc(t('reply_failed', {detail: E.result.detail}))}</li>`);
  }
  box.innerHTML = `<b>${esc(t('enrol'))}: ${esc(E.tenant)} @ ${esc(E.door)}</b><ol>${items.join('')}</ol>`;
  box.dataset.state = E.result ? (E.result.ok ? 'done' : 'failed') : 'running';
}

/** @type {any[]} enrolment steps that came before the door's command id was known (the POST's answer) */
const early = [];
/** A message of the console's live stream. @param {any} msg */
function onLive(msg) {
  if (msg && msg.type === 'enrol' && (!O.enrol || msg.command_id !== O.enrol.command_id)) {
    early.push(msg); if (early.length > 50) early.shift();
  }
  if (!msg || !O.enrol) return;
  if (msg.type === 'enrol' && msg.command_id === O.enrol.command_id) {
    O.enrol.steps.push(msg); renderEnrol();
  } else if (msg.type === 'reply' && msg.command_id === O.enrol.command_id) {
    O.enrol.result = {ok: msg.ok, detail: msg.detail}; renderEnrol(); load();
  } else if (msg.type === 'reply' && String(msg.name).startsWith('access.')) {
    load();
  }
}

async function loadLeases() {
  const res = await api(`/api/doors/leases/ending?days=${O.days}`);
  const list = res.ok ? res.body : [];
  $o('o-days-7').classList.toggle('active', O.days === 7); $o('o-days-30').classList.toggle('active', O.days === 30);
  $o('o-leases').innerHTML = list.length ? `<table class="office-table" data-days="${O.days}"><tr><th>${esc(t('name'))}</th>
    <th>${esc(t('unit'))}</th><th>${esc(t('lease_end'))}</th><th>${esc(t('new_end'))}</th></tr>${list.map((x) =>
    `<tr data-tenant="${esc(x.id)}"><td>${esc(x.name)}</td><td>${esc(x.block)} ${esc(x.unit)}</td>
    <td>${esc(fmtDate(x.lease_end))}</td><td>${dateInput('o-renew-' + esc(x.id), 'new_end', 'o-renew-date')}
    <button type="button" data-act="renew">${esc(t('renew'))}</button><div role="alert"><ul class="error office-errors o-renew-errors"></ul></div></td></tr>`)
    .join('')}</table>` : `<p class="empty" data-days="${O.days}">${esc(t('no_leases'))}</p>`;
}

async function importSheet() {
  const input = $o('o-file'); const file = input.files && input.files[0];
  const out = $o('o-import-errors'); const ok = $o('o-import-ok');
  out.innerHTML = ''; ok.textContent = '';
  if (!file) { out.innerHTML = `<ul class="error office-errors"><li data-code="no_file">${esc(t('e_no_file'))}</li></ul>`; return; }
  const r = await fetch(`/api/doors/tenants/import?filename=${encodeURIComponent(file.name)}`, {method: 'POST',
    credentials: 'same-origin', headers: {'Content-Type': 'application/octet-stream'}, body: file});
  let body = null; try { body = await r.json(); } catch { body = null; }
  if (r.ok) { ok.textContent = t('imported', {n: body.imported}); await load(); return; }
  const res = {ok: false, status: r.status, body};
  const errs = body?.detail?.errors || [];
  const rowErrs = errs.filter((/** @type {any} */ e) => e.row != null && e.field !== 'file');
  out.innerHTML = `<p class="error">${esc(t('nothing_stored'))}</p>` + (rowErrs.length
    ? `<table class="office-table o-import-table"><tr><th>${esc(t('row'))}</th><th>${esc(t('field'))}</th><th>${esc(t('problem'))}</th></tr>`
      + rowErrs.map((/** @type {any} */ e) => `<tr data-row="${e.row}" data-code="${esc(e.code)}"><td>${e.row}</td>
      <td>${esc(I18N.en[e.field] ? t(e.field) : e.field)}</td><td>${esc(I18N.en['e_' + e.code] ? t('e_' + e.code) : e.message)}</td></tr>`).join('')
      + '</table>'
    : `<ul class="error office-errors">${errorList(res)}</ul>`);
}

function logQuery() {
  const by = $o('o-log-by').value; const what = $o('o-log-what').value;
  return by && what ? `?${by}=${encodeURIComponent(what)}` : '';
}
async function loadLog() {
  const q = logQuery();
  /** @type {HTMLAnchorElement} */ (/** @type {HTMLElement} */ (O.root).querySelector('#o-log-csv')).href = '/api/doors/audit.csv' + q;
  const res = await api('/api/doors/audit' + q + (q ? '&' : '?') + 'limit=200');
  const rows = res.ok ? res.body : [];
  $o('o-log').innerHTML = `<table class="office-table o-log-table"><tr><th>${esc(t('at'))}</th><th>${esc(t('source'))}</th>
    <th>${esc(t('door'))}</th><th>${esc(t('block'))}</th><th>${esc(t('kind'))}</th><th>${esc(t('tenant'))}</th>
    <th>${esc(t('actor'))}</th></tr>${rows.map((/** @type {any} */ x) => `<tr data-kind="${esc(x.kind)}"><td>${esc(fmtTime(x.at))}</td>
    <td>${esc(t('src_' + x.source))}</td><td>${esc(x.door || '')}</td><td>${esc(x.block || '')}</td>
    <td>${esc(kindLabel(x.kind))}${x.detail && x.detail.reason ? ' (' + esc(x.detail.reason) + ')' : ''}</td>
    <td>${esc(x.tenant || '')}</td><td>${esc(x.actor || '')}</td></tr>`).join('')}</table>`;
}

async function addBlock() {
  const units = $o('o-block-units').value.split(/[,，\s]+/).filter(Boolean);
  const res = await api('/api/doors/blocks', {method: 'POST', json: {id: $o('o-block-id').value,
    name: $o('o-block-name').value, units}});
  $o('o-blocks-errors').innerHTML = res.ok ? '' : errorList(res);
  if (res.ok) { for (const id of ['o-block-id', 'o-block-name', 'o-block-units']) $o(id).value = ''; await load(); }
}
async function addDoor() {
  const res = await api('/api/doors', {method: 'POST', json: {node: $o('o-door-node').value, block: $o('o-door-block').value}});
  $o('o-blocks-errors').innerHTML = res.ok ? '' : errorList(res);
  if (res.ok) await load();
}

/** Both languages, for the console's table (this screen formats its own, with {placeholders}, from I18N). */
export const STRINGS = I18N;

/**
 * Draw the screen into ``root`` and keep it current. ``app``: the console's core (app.js); its ``S`` holds
 * the language and the district's zone.
 * @param {HTMLElement} root @param {any} app
 */
export function mount(root, app) {
  O.root = root; O.app = app.S;
  root.classList.add('office');
  if (!document.querySelector('link[href="/static/office.css"]')) {
    const css = document.createElement('link');
    css.rel = 'stylesheet'; css.href = '/static/office.css'; document.head.appendChild(css);
  }
  root.addEventListener('click', onAction);
  app.on('lang', relabel);
  app.on('live', onLive);
  layout();
  return {show: () => { load(); }};
}

/** Re-draw in the console's current language (the strings, and the dates in that language's order). */
export function relabel() { if (O.root) { layout(); load(); } }
