// The responder's phone app (/r/): duty, position while on duty, tasks live with sound and vibration,
// accept / decline, on scene, resolve with photos shrunk here before upload. No build step, no CDN.
// Simplified Chinese by default, English on request; the hub's refusals in the same language (server-errors.js).
import {detailText} from './server-errors.js';

const T = {
  zh: {
    title: '平安 · 处置人员', offline: '未连接', online: '在线', login_title: '处置人员登录', username: '用户名',
    password: '密码', login: '登录', logout: '退出登录', bad_login: '用户名或密码错误', not_responder: '此账号不是处置人员账号',
    not_set_up: '尚未加入队伍，请联系监控中心', consent: '值班期间共享我的位置（下班即停止）', check_in: '上岗签到',
    check_out: '下岗签退', on_duty: '值班中', off_duty: '未值班', no_shift: '当前不在排班时段', shift: '排班',
    gps_on: '正在共享位置', gps_off: '未共享位置', gps_denied: '无法获取位置：', sound_on: '点此启用提示音',
    no_tasks: '暂无任务', new_task: '新任务', accept: '接受', decline: '拒绝', reason: '拒绝原因（必填）',
    need_reason: '请填写拒绝原因', on_scene: '已到场', resolve: '处置完毕', outcome: '处置结果', note: '备注',
    photos: '现场照片（最多 4 张）', too_many_photos: '最多 4 张照片', navigate: '导航', coords: '坐标', place: '位置',
    grid: '网格', presses: '按键次数', raised: '报警时间', accept_by: '请在此时间前接受', distance: '距报警柱',
    push_on: '开启推送通知', m: '米', failed: '操作失败', uploading: '正在上传照片…', done: '任务已完成，谢谢！',
    st_offered: '待接受', st_accepted: '已接受，前往现场', st_on_scene: '已到场', st_declined: '已拒绝',
    st_expired: '已超时（仍可接受）', st_resolved: '已完成', st_withdrawn: '报警已结案，任务已撤回',
    k_alarm_pressed: '一键报警：居民按下了求助按钮', k_alarm_test: '测试报警', k_door_forced: '门被强行打开',
    k_tamper_opened: '机箱被打开', k_tamper_camera: '摄像头被遮挡', k_other: '报警',
    o_assisted: '已救助', o_false_alarm: '误报', o_crime: '刑事/治安案件', o_test: '测试', o_recovered: '已恢复',
    o_other: '其他', o_pick: '选择处置结果…', need_outcome: '请选择处置结果',
  },
  en: {
    push_on: 'Turn on push notifications', title: 'Pingan · Responder', offline: 'offline', online: 'live', login_title: 'Responder login',
    username: 'Username', password: 'Password', login: 'Log in', logout: 'Log out',
    bad_login: 'Wrong username or password', not_responder: 'This account is not a responder account',
    not_set_up: 'Not in a team yet; ask the monitoring centre', consent: 'Share my position while on duty (stops off duty)',
    check_in: 'Check in', check_out: 'Check out', on_duty: 'On duty', off_duty: 'Off duty',
    no_shift: 'No shift of your team now', shift: 'Shifts', gps_on: 'Sharing position', gps_off: 'Position not shared',
    gps_denied: 'No position: ', sound_on: 'Tap to enable alert sound', no_tasks: 'No tasks', new_task: 'New task',
    accept: 'Accept', decline: 'Decline', reason: 'Reason for declining (required)', need_reason: 'Say why you decline',
    on_scene: 'On scene', resolve: 'Resolved', outcome: 'Outcome', note: 'Note', photos: 'Photos (up to 4)',
    too_many_photos: 'At most 4 photos', navigate: 'Navigate', coords: 'Coordinates', place: 'Place', grid: 'Grid',
    presses: 'Presses', raised: 'Raised', accept_by: 'Accept by', distance: 'From the pole', m: 'm',
    failed: 'Failed', uploading: 'Uploading photos…', done: 'Task done, thank you!',
    st_offered: 'Waiting for you', st_accepted: 'Accepted, on the way', st_on_scene: 'On scene', st_declined: 'Declined',
    st_expired: 'Timed out (you may still accept)', st_resolved: 'Done', st_withdrawn: 'Alarm closed: task withdrawn',
    k_alarm_pressed: 'Help button: a resident pressed it', k_alarm_test: 'Test alarm', k_door_forced: 'Door forced open',
    k_tamper_opened: 'Enclosure opened', k_tamper_camera: 'Camera covered', k_other: 'Alarm',
    o_assisted: 'Assisted', o_false_alarm: 'False alarm', o_crime: 'Crime / public order', o_test: 'Test',
    o_recovered: 'Recovered', o_other: 'Other', o_pick: 'Pick an outcome…', need_outcome: 'Pick an outcome',
  },
};
const OUTCOMES = ['assisted', 'false_alarm', 'crime', 'test', 'recovered', 'other'];
const MAX_PHOTOS = 4;
const PHOTO_EDGE = 1600; // longest side after shrinking on the phone
const S = {lang: localStorage.getItem('pingan-r-lang') || 'zh', me: null, tasks: new Map(), ws: null, retry: 0,
  watch: null, lastSent: 0, audio: null, alive: false};
const $ = (id) => document.getElementById(id);
const t = (k) => (T[S.lang][k] ?? T.zh[k] ?? k);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
const fmt = (iso) => (iso ? new Date(iso).toLocaleString(S.lang === 'zh' ? 'zh-CN' : 'en-GB', {hour12: false}) : '–');

async function api(path, opts = {}) {
  const init = {credentials: 'same-origin', method: opts.method || 'GET', headers: {}};
  if (opts.raw) { init.body = opts.raw; init.headers['Content-Type'] = opts.type; } else if (opts.body) {
    init.body = JSON.stringify(opts.body); init.headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(path, init);
  if (r.status === 401 && path !== '/api/login') { showLogin(); throw new Error('login required'); }
  return r;
}
async function detail(r) {
  const j = await r.json().catch(() => ({}));
  return `${t('failed')}: ${detailText(j.detail, S.lang) || r.status}`;
}

function applyLang() {
  document.documentElement.lang = S.lang === 'zh' ? 'zh-CN' : 'en';
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $('lang').textContent = S.lang === 'zh' ? 'English' : '中文';
  $('conn').textContent = t(S.alive ? 'online' : 'offline');
  if (S.me) renderDuty();
  renderTasks();
}
$('lang').addEventListener('click', () => { S.lang = S.lang === 'zh' ? 'en' : 'zh'; localStorage.setItem('pingan-r-lang', S.lang); applyLang(); });

// --- login ------------------------------------------------------------------------------------------
function showLogin(msg = '') {
  $('app').hidden = true; $('login').hidden = false; $('login-error').textContent = msg;
  stopTracking(); if (S.ws) { const ws = S.ws; S.ws = null; ws.close(); }
}
$('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await api('/api/login', {method: 'POST', body: {username: $('login-user').value, password: $('login-pass').value}});
  if (!r.ok) { $('login-error').textContent = r.status === 401 ? t('bad_login') : await detail(r); return; }
  $('login-pass').value = '';
  start();
});
// Web Push (hub/web/push.js, an ES module loaded only when asked): a bonus where the browser's push service
// is reachable; the answer (on, blocked, unreachable) is said here in the page's language.
$('push-on').addEventListener('click', async () => {
  const push = await import('/static/push.js');
  const out = await push.enablePush().catch((e) => ({ok: false, reason: 'failed', error: String(e)}));
  $('push-msg').textContent = push.PUSH_TEXT[S.lang][out.reason] || out.reason;
  $('push-msg').dataset.reason = out.reason;
});
$('logout').addEventListener('click', async () => { await api('/api/logout', {method: 'POST'}).catch(() => null); showLogin(); });

async function start() {
  const r = await api('/api/responder/me').catch(() => null);
  if (!r) return;
  if (r.status === 403) { showLogin(t('not_responder')); return; }
  if (r.status === 404) { showLogin(t('not_set_up')); return; }
  if (!r.ok) { showLogin(await detail(r)); return; }
  S.me = await r.json();
  $('login').hidden = true; $('app').hidden = false;
  renderDuty(); track(); connect(); loadTasks();
}

// --- duty and position --------------------------------------------------------------------------------
function renderDuty() {
  const me = S.me;
  $('who').textContent = me.name; $('team').textContent = me.team_name;
  $('duty-state').innerHTML = me.on_duty ? `<span class="on">${t('on_duty')}</span>`
    : `<span class="off">${t('off_duty')}</span>${me.in_shift ? '' : ` · ${t('no_shift')}`}`;
  $('duty-state').dataset.onDuty = me.on_duty ? '1' : '0';
  $('duty-toggle').textContent = t(me.on_duty ? 'check_out' : 'check_in');
  $('duty-toggle').className = me.on_duty ? 'danger' : 'ok';
  $('consent').checked = !!me.consent; $('consent').disabled = me.on_duty;
  $('gps').textContent = S.watch != null ? t('gps_on') : t('gps_off');
}
$('duty-toggle').addEventListener('click', async () => {
  $('duty-error').textContent = '';
  const on = !S.me.on_duty;
  const r = await api('/api/responder/duty', {method: 'POST', body: {on, consent: $('consent').checked}});
  if (!r.ok) { $('duty-error').textContent = await detail(r); return; }
  S.me = await r.json();
  track(); renderDuty();
});
// Position only while on duty and with consent: the watch is started on check-in and stopped on check-out
// (and whenever the hub answers 409: the shift ended); the hub refuses fixes off duty anyway.
function track() {
  if (S.me && S.me.on_duty && S.me.consent && navigator.geolocation) {
    if (S.watch == null) {
      S.watch = navigator.geolocation.watchPosition(sendFix, (err) => { $('gps').textContent = t('gps_denied') + err.message; },
        {enableHighAccuracy: true, maximumAge: 10000, timeout: 30000});
    }
  } else stopTracking();
  $('gps').textContent = S.watch != null ? t('gps_on') : t('gps_off');
}
function stopTracking() {
  if (S.watch != null && navigator.geolocation) navigator.geolocation.clearWatch(S.watch);
  S.watch = null; S.fix = null;
  if (S.pending) { clearTimeout(S.pending); S.pending = null; }
}
function sendFix(pos) {
  S.fix = {lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy: pos.coords.accuracy};
  const wait = 5000 - (Date.now() - S.lastSent); // at most one fix every 5 s; the newest one goes then
  if (wait > 0) { if (!S.pending) S.pending = setTimeout(() => { S.pending = null; postFix(); }, wait); return; }
  postFix();
}
async function postFix() {
  if (S.watch == null || !S.fix) return; // off duty meanwhile: nothing goes
  S.lastSent = Date.now();
  const r = await api('/api/responder/position', {method: 'POST', body: S.fix}).catch(() => null);
  if (r && r.status === 409) { // off duty (the shift ended) or no consent: stop at once
    stopTracking(); const me = await api('/api/responder/me'); if (me.ok) S.me = await me.json(); renderDuty();
  }
}
function here() { // a fresh position for "on scene" (the last fix when none comes within 10 s)
  return new Promise((resolve) => {
    if (!navigator.geolocation) { resolve(S.fix); return; }
    navigator.geolocation.getCurrentPosition((p) => resolve({lat: p.coords.latitude, lon: p.coords.longitude}),
      () => resolve(S.fix), {enableHighAccuracy: true, timeout: 10000, maximumAge: 5000});
  });
}

// --- live tasks ---------------------------------------------------------------------------------------
async function connect() {
  if (S.ws) return;
  const tk = await api('/api/live/ticket', {method: 'POST'}).catch(() => null);
  if (!tk || !tk.ok) { setTimeout(connect, 2000); return; }
  const {ticket} = await tk.json();
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/responder/live?ticket=${encodeURIComponent(ticket)}`);
  S.ws = ws;
  ws.onopen = () => { S.retry = 0; S.alive = true; $('conn').className = ''; $('conn').textContent = t('online'); loadTasks(); };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === 'task') upsert(msg.task, true);
  };
  ws.onclose = () => {
    S.alive = false; $('conn').className = 'down'; $('conn').textContent = t('offline');
    if (S.ws !== ws) return;
    S.ws = null; S.retry = Math.min(S.retry + 1, 5); setTimeout(connect, 700 * S.retry);
  };
}
async function loadTasks() {
  const r = await api('/api/responder/tasks').catch(() => null);
  if (!r || !r.ok) return;
  const list = await r.json();
  const ids = new Set(list.map((x) => x.id));
  for (const [id, task] of S.tasks) if (!ids.has(id) && !['resolved', 'declined'].includes(task.state)) S.tasks.delete(id);
  list.forEach((x) => upsert(x, false));
  renderTasks();
}
function upsert(task, live) {
  const old = S.tasks.get(task.id);
  S.tasks.set(task.id, {...(old || {}), ...task});
  if (live && task.state === 'offered' && (!old || old.state !== 'offered')) alertNewTask();
  renderTasks();
}
function alertNewTask() { // sound and vibration while the page is open (a closed page: hub/notify's channels)
  if (navigator.vibrate) navigator.vibrate([400, 150, 400, 150, 400]);
  try {
    S.audio = S.audio || new AudioContext();
    if (S.audio.state !== 'running') { $('sound-bar').hidden = false; S.audio.resume().catch(() => null); }
    const o = S.audio.createOscillator(); const g = S.audio.createGain();
    o.type = 'square'; o.frequency.value = 880; g.gain.value = 0.2;
    o.connect(g); g.connect(S.audio.destination);
    o.start(); o.frequency.setValueAtTime(660, S.audio.currentTime + 0.3); o.stop(S.audio.currentTime + 0.9);
  } catch { $('sound-bar').hidden = false; }
  document.title = `(${t('new_task')}) ${t('title')}`;
  S.alerts = (S.alerts || 0) + 1; document.body.dataset.alerts = String(S.alerts);
}
$('sound-on').addEventListener('click', () => {
  S.audio = S.audio || new AudioContext(); S.audio.resume(); $('sound-bar').hidden = true;
});

function kindText(k) { return t('k_' + k.replace('.', '_')) === 'k_' + k.replace('.', '_') ? t('k_other') : t('k_' + k.replace('.', '_')); }
function renderTasks() {
  const root = $('tasks');
  if (!root) return;
  const list = [...S.tasks.values()].sort((a, b) => a.offered_at.localeCompare(b.offered_at));
  $('no-tasks').hidden = list.length > 0;
  const keep = new Set();
  for (const task of list) {
    keep.add(task.id);
    const sig = [task.state, task.photos, task.scene_distance_m, task.warning, S.lang].join('|');
    let el = root.querySelector(`[data-id="${CSS.escape(task.id)}"]`);
    if (el && el.dataset.sig === sig) continue;
    const fresh = card(task); fresh.dataset.sig = sig;
    if (el) el.replaceWith(fresh); else root.appendChild(fresh);
  }
  root.querySelectorAll('.task').forEach((el) => { if (!keep.has(el.dataset.id)) el.remove(); });
}
function card(task) {
  const d = document.createElement('article');
  d.className = `task s-${task.state}`; d.dataset.id = task.id; d.dataset.state = task.state;
  const coords = task.lat != null ? `${task.lat.toFixed(5)}, ${task.lon.toFixed(5)}` : '–';
  let h = `<h2>${esc(kindText(task.kind))}</h2>
    <div class="meta state">${esc(t('st_' + task.state))}</div>
    <img class="snap" alt="" hidden>
    <div class="meta">${t('place')}: <b>${esc(task.place || task.node)}</b> · ${t('grid')}: ${esc(task.grid || '–')}</div>
    <div class="meta">${t('presses')}: ${esc(task.presses)} · ${t('raised')}: ${esc(fmt(task.raised_at))}</div>
    <div class="meta">${t('coords')}: <span class="coords">${esc(coords)}</span>
      ${task.geo ? ` · <a class="nav" href="${esc(task.geo)}">${t('navigate')}</a>` : ''}</div>`;
  if (task.state === 'offered') h += `<div class="meta">${t('accept_by')}: ${esc(fmt(task.accept_by))}</div>`;
  if (task.scene_distance_m != null) h += `<div class="meta dist">${t('distance')}: ${esc(task.scene_distance_m)} ${t('m')}</div>`;
  if (task.warning) h += `<p class="warn">${esc(task.warning)}</p>`;
  if (task.state === 'offered' || task.state === 'expired') {
    h += `<div class="row"><button class="ok" data-act="accept">${t('accept')}</button>
      <button class="danger" data-act="decline">${t('decline')}</button></div>
      ${task.state === 'offered' ? `<input data-f="reason" placeholder="${t('reason')}" maxlength="500">` : ''}`;
  } else if (task.state === 'accepted') {
    h += `<div class="row"><button data-act="on_scene">${t('on_scene')}</button></div>`;
  }
  if (task.state === 'accepted' || task.state === 'on_scene') {
    h += `<label><span>${t('outcome')}</span><select data-f="outcome"><option value="" selected disabled>${t('o_pick')}</option>${
      OUTCOMES.map((o) => `<option value="${o}">${t('o_' + o)}</option>`).join('')}</select></label>
      <label><span>${t('note')}</span><textarea data-f="note" rows="2" maxlength="2000"></textarea></label>
      <label><span>${t('photos')}</span><input data-f="photos" type="file" accept="image/*" capture="environment" multiple></label>
      <div class="row"><button class="ok" data-act="resolve">${t('resolve')}</button></div>`;
  }
  if (task.state === 'resolved') h += `<p class="meta">${t('done')}</p>`;
  h += '<p class="error" role="alert"></p>';
  d.innerHTML = h;
  snapshot(d.querySelector('img.snap'), task.id, 0);
  d.querySelectorAll('[data-act]').forEach((b) => b.addEventListener('click', () => act(task, b.dataset.act, d, b)));
  return d;
}

// The pole's picture may be stored a moment after the alarm: ask again a few times before giving up.
function snapshot(img, id, tries) {
  img.onload = () => { img.hidden = false; };
  img.onerror = () => { if (tries < 5) setTimeout(() => snapshot(img, id, tries + 1), 2000); };
  img.src = `/api/responder/tasks/${encodeURIComponent(id)}/snapshot.jpg${tries ? `?t=${tries}` : ''}`;
}

// A photo is shrunk here (longest side PHOTO_EDGE, JPEG) before it goes up: a phone's 12 MP picture is
// several MB over a mobile network; the hub takes at most 10 MB and 4 photos per task.
async function shrink(file) {
  const bmp = await createImageBitmap(file);
  const scale = Math.min(1, PHOTO_EDGE / Math.max(bmp.width, bmp.height));
  const c = document.createElement('canvas');
  c.width = Math.round(bmp.width * scale); c.height = Math.round(bmp.height * scale);
  c.getContext('2d').drawImage(bmp, 0, 0, c.width, c.height);
  bmp.close();
  return new Promise((resolve) => c.toBlob(resolve, 'image/jpeg', 0.8));
}
async function act(task, action, el, button) {
  const err = el.querySelector('.error'); err.textContent = '';
  const f = (n) => el.querySelector(`[data-f="${n}"]`);
  const base = `/api/responder/tasks/${encodeURIComponent(task.id)}`;
  let body = {};
  if (action === 'decline') {
    const reason = (f('reason')?.value || '').trim();
    if (!reason) { err.textContent = t('need_reason'); f('reason')?.focus(); return; }
    body = {reason};
  }
  if (action === 'on_scene') { const p = await here(); body = p ? {lat: p.lat, lon: p.lon} : {}; }
  button.disabled = true;
  try {
    if (action === 'resolve') {
      if (!f('outcome').value) { err.textContent = t('need_outcome'); return; }
      const files = [...(f('photos').files || [])];
      if (files.length + (task.photos || 0) > MAX_PHOTOS) { err.textContent = t('too_many_photos'); return; }
      if (files.length) err.textContent = t('uploading');
      for (const file of files) {
        let blob;
        try { blob = await shrink(file); } catch { blob = file; } // not decodable here: the hub says 422
        const r = await api(`${base}/photos`, {method: 'POST', raw: blob, type: blob.type || 'application/octet-stream'});
        if (!r.ok) { err.textContent = await detail(r); return; }
        task.photos = (task.photos || 0) + 1;
      }
      err.textContent = '';
      body = {outcome: f('outcome').value, note: f('note').value || null};
    }
    const r = await api(`${base}/${action}`, {method: 'POST', body});
    if (!r.ok) { err.textContent = await detail(r); return; }
    upsert(await r.json(), false);
    document.title = t('title');
  } finally { button.disabled = false; }
}

if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('/r/sw.js', {scope: '/r/'}).catch(() => null);
}
applyLang();
start();
