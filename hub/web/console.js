// Pingan monitoring-centre console: no build step, no CDN. Simplified Chinese by default, English on request.
'use strict';
const I18N = {
  zh: {
    login_title: '监控中心登录', username: '用户名', password: '密码', login: '登录', logout: '退出',
    lang_switch: 'English', tab_alarms: '报警', tab_map: '地图', tab_reports: '报表', connecting: '连接中…',
    live: '实时在线', disconnected: '连接断开', sound_prompt: '浏览器需要点击一次才能播放报警声音。',
    sound_enable: '启用声音', no_alarms: '当前没有未处理的报警', lost_title: '与中心的连接已断开',
    lost_body: '正在重新连接… 期间的报警将在恢复后补上。', h_online: '在线', h_offline: '离线',
    h_tamper: '防拆/遮挡', h_alarm: '报警', today: '今天', this_week: '本周', range: '自定义', show: '查看',
    csv: '导出 CSV', bad_login: '用户名或密码错误', too_many: '失败次数过多，请稍后再试',
    ack: '确认', dispatch: '派警', on_scene: '已到场', resolve: '结案', responder: '处置人员或网格队',
    note: '备注', escalated: '已升级', stage_open: '报警', stage_acknowledged: '已确认', stage_dispatched: '已派警',
    stage_on_scene: '已到场', stage_resolved: '已结案', grid: '网格', place: '位置', count: '次数',
    o_assisted: '已救助', o_false_alarm: '误报', o_crime: '刑事/治安案件', o_other: '其他',
    k_alarm_pressed: '一键报警', k_door_forced: '门被强行打开', k_tamper_opened: '机箱被打开',
    k_tamper_camera: '摄像头被遮挡', k_node_offline: '设备离线', k_nodes_offline: '多台设备同时离线', outage_nodes: '台设备', outage_back: '已恢复', k_detection_person: '检测到人员',
    k_detection_vehicle: '检测到车辆', k_detection_loitering: '徘徊', k_door_held_open: '门长时间未关',
    k_door_fire_release: '消防释放', k_door_lockout: '门禁锁定', k_node_fault: '设备故障', k_alarm_test: '测试报警',
    r_alarms: '报警数', r_tests: '测试', r_escalated: '升级', r_open: '未结案', r_per_hour: '各小时报警数',
    r_per_node: '各设备报警数', r_per_grid: '各网格报警数', r_response: '处置时间', r_median: '中位数',
    r_p90: '90% 分位', r_uptime: '设备在线率', r_doors: '门禁', r_scorecard: '网格考核',
    d_granted: '开门', d_denied: '拒绝', d_forced: '强行打开', d_held_open: '未关门', d_lockout: '锁定',
    s_acknowledge: '确认', s_dispatch: '派警', s_arrive: '到场', s_resolve: '结案', nodes: '设备',
    false_alarms: '误报', node: '设备', ago: '前', failed: '操作失败', no_location: '未标位置：',
    o_pick: '选择处置结果…', o_test: '测试', o_recovered: '已自动恢复', need_outcome: '结案前请选择处置结果',
    skipped: '跳过', r_down: '离线时长', r_n: '次数', r_skipped: '跳过', date_hint: '年-月-日',
  },
  en: {
    login_title: 'Monitoring centre login', username: 'Username', password: 'Password', login: 'Log in',
    logout: 'Log out', lang_switch: '中文', tab_alarms: 'Alarms', tab_map: 'Map', tab_reports: 'Reports',
    connecting: 'connecting…', live: 'live', disconnected: 'disconnected',
    sound_prompt: 'The browser needs one click before it may play alarm sounds.', sound_enable: 'Enable sound',
    no_alarms: 'No open alarms', lost_title: 'Connection to the hub lost',
    lost_body: 'Reconnecting… alarms raised meanwhile will be caught up.', h_online: 'online', h_offline: 'offline',
    h_tamper: 'tamper', h_alarm: 'alarm', today: 'Today', this_week: 'This week', range: 'Range', show: 'Show',
    csv: 'Export CSV', bad_login: 'Wrong username or password', too_many: 'Too many failures; try again later',
    ack: 'Acknowledge', dispatch: 'Dispatch', on_scene: 'On scene', resolve: 'Resolve',
    responder: 'Responder or grid team', note: 'Note', escalated: 'ESCALATED', stage_open: 'Raised',
    stage_acknowledged: 'Acknowledged', stage_dispatched: 'Dispatched', stage_on_scene: 'On scene',
    stage_resolved: 'Resolved', grid: 'Grid', place: 'Place', count: 'presses',
    o_assisted: 'Assisted', o_false_alarm: 'False alarm', o_crime: 'Crime or disorder', o_other: 'Other',
    k_alarm_pressed: 'Alarm button', k_door_forced: 'Door forced', k_tamper_opened: 'Enclosure opened',
    k_tamper_camera: 'Camera tampered', k_node_offline: 'Node offline', k_nodes_offline: 'Many nodes offline at once', outage_nodes: 'nodes', outage_back: 'back', k_detection_person: 'Person detected',
    k_detection_vehicle: 'Vehicle detected', k_detection_loitering: 'Loitering', k_door_held_open: 'Door held open',
    k_door_fire_release: 'Fire release', k_door_lockout: 'Door lockout', k_node_fault: 'Node fault',
    k_alarm_test: 'Test alarm', r_alarms: 'Alarms', r_tests: 'Tests', r_escalated: 'Escalated', r_open: 'Open',
    r_per_hour: 'Alarms per hour', r_per_node: 'Alarms per node', r_per_grid: 'Alarms per grid',
    r_response: 'Response times', r_median: 'median', r_p90: 'p90', r_uptime: 'Node uptime', r_doors: 'Doors',
    r_scorecard: 'Grid scorecard', d_granted: 'granted', d_denied: 'denied', d_forced: 'forced',
    d_held_open: 'held open', d_lockout: 'lockout', s_acknowledge: 'acknowledge', s_dispatch: 'dispatch',
    s_arrive: 'arrive', s_resolve: 'resolve', nodes: 'Nodes', false_alarms: 'False alarms', node: 'Node',
    ago: 'ago', failed: 'Action failed', no_location: 'No location:',
    o_pick: 'Choose the outcome…', o_test: 'Test', o_recovered: 'Recovered by itself',
    need_outcome: 'Choose the outcome before resolving', skipped: 'skipped', r_down: 'Downtime', r_n: 'n',
    r_skipped: 'Skipped', date_hint: 'YYYY-MM-DD',
  },
};
const OUTCOMES = ['assisted', 'false_alarm', 'crime', 'other'];
const STAGES = ['open', 'acknowledged', 'dispatched', 'on_scene', 'resolved'];
const STAGE_AT = {open: 'raised_at', acknowledged: 'acked_at', dispatched: 'dispatched_at', on_scene: 'on_scene_at',
  resolved: 'resolved_at'};
const $ = (id) => document.getElementById(id);
const S = {lang: localStorage.getItem('pingan.lang') || 'zh', me: null, tz: 'Asia/Shanghai', alarms: [], nodes: [],
  cards: new Map(), seen: new Set(), cursor: null, ws: null, audio: null, lostAt: null, retry: 0, timer: null};
window.pingan = S; // for tests and the latency bench

function t(key) { return (I18N[S.lang] || I18N.zh)[key] ?? I18N.en[key] ?? key; }
function kindLabel(k) { return t('k_' + k.replace('.', '_')); }
function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;',
    "'": '&#39;'}[c]));
}
function applyLang() {
  document.documentElement.lang = S.lang === 'zh' ? 'zh-CN' : 'en';
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll('[data-i18n-ph]').forEach((el) => { el.placeholder = t(el.dataset.i18nPh); });
  S.cards.clear(); $('alarms').innerHTML = ''; renderAlarms(); renderMap();
  if (!$('tab-reports').hidden) loadReport();
}
function fmtTime(iso, withDate) {
  if (!iso) return '';
  const opts = {timeZone: S.tz, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false};
  if (withDate) Object.assign(opts, {year: 'numeric', month: '2-digit', day: '2-digit'});
  const f = new Intl.DateTimeFormat(S.lang === 'zh' ? 'zh-CN' : 'en-GB', opts);
  if (S.lang === 'zh' || !withDate) return f.format(new Date(iso));
  // English dates in the order the report inputs take them (year-month-day), never dd/mm beside mm/dd
  const p = Object.fromEntries(f.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}
function fmtDur(s) {
  if (s == null) return '–';
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  return Math.floor(s / 3600) + 'h' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + 'm';
}

// --- API ------------------------------------------------------------------------------------------
async function api(path, opts = {}) {
  const init = {credentials: 'same-origin', ...opts, headers: {'Content-Type': 'application/json'}};
  if (opts.body && typeof opts.body !== 'string') init.body = JSON.stringify(opts.body);
  const r = await fetch(path, init);
  if (r.status === 401 && path !== '/api/login') { showLogin(); throw new Error('login required'); }
  return r;
}

// --- login ------------------------------------------------------------------------------------------
function showLogin() {
  if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
  $('app-view').hidden = true; $('login-view').hidden = false; $('lost').hidden = true; $('login-user').focus();
}
$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await api('/api/login', {method: 'POST', body: {username: $('login-user').value,
    password: $('login-pass').value}});
  if (!r.ok) { $('login-error').textContent = t(r.status === 429 ? 'too_many' : 'bad_login'); return; }
  $('login-pass').value = ''; $('login-error').textContent = '';
  start();
});
$('logout').addEventListener('click', async () => { await api('/api/logout', {method: 'POST'}); showLogin(); });
document.querySelectorAll('.lang').forEach((b) => b.addEventListener('click', () => {
  S.lang = S.lang === 'zh' ? 'en' : 'zh'; localStorage.setItem('pingan.lang', S.lang); applyLang();
}));

async function start() {
  const r = await fetch('/api/me', {credentials: 'same-origin'});
  if (r.status === 403) { location.href = '/r/'; return; } // a responder's login: their phone app (issue 18)
  if (!r.ok) { showLogin(); return; }
  S.me = await r.json(); S.tz = S.me.timezone || S.tz;
  $('login-view').hidden = true; $('app-view').hidden = false;
  $('whoami').textContent = `${S.me.username} (${S.me.role})`;
  applyLang();
  await loadNodes(); await loadAlarms(); // the nodes first: a card offers Live only for a node online
  connect();
}

// --- sound: Web Audio beeps, allowed only after one click (autoplay rules) -------------------------
$('sound-on').addEventListener('click', () => {
  S.audio = S.audio || new (window.AudioContext || window.webkitAudioContext)();
  S.audio.resume(); $('sound-bar').hidden = true; beep(1);
});
function beep(times = 2, loud = false) {
  const ctx = S.audio;
  if (!ctx || ctx.state !== 'running') { $('sound-bar').hidden = false; return; }
  for (let i = 0; i < times; i++) {
    const o = ctx.createOscillator(); const g = ctx.createGain();
    const at = ctx.currentTime + i * 0.35;
    o.type = loud ? 'square' : 'sine'; o.frequency.value = loud ? 1320 : 880;
    g.gain.setValueAtTime(0.0001, at); g.gain.exponentialRampToValueAtTime(loud ? 0.9 : 0.4, at + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, at + 0.25);
    o.connect(g).connect(ctx.destination); o.start(at); o.stop(at + 0.3);
  }
}
setInterval(() => { // keep reminding while anything is unacknowledged; faster and louder once escalated
  const open = S.alarms.filter((a) => a.state === 'open');
  if (open.some((a) => a.escalated)) beep(3, true);
  else if (open.length && Date.now() / 1000 % 10 < 2) beep(1);
}, 2000);

// --- alarms --------------------------------------------------------------------------------------------
let refreshing = null;
function scheduleAlarms() { if (!refreshing) refreshing = setTimeout(() => { refreshing = null; loadAlarms(); }, 50); }
async function loadAlarms() {
  const r = await api('/api/alarms');
  if (!r.ok) return;
  const list = await r.json();
  let fresh = false; let escalated = false;
  for (const a of list) {
    if (!S.seen.has(a.id) && a.state === 'open') fresh = true;
    if (a.escalated && !S.seen.has(a.id + ':esc')) { escalated = true; S.seen.add(a.id + ':esc'); }
    S.seen.add(a.id);
  }
  S.alarms = list;
  renderAlarms();
  renderMap();
  if (escalated) beep(3, true); else if (fresh) beep(2);
}
function stageList(a) {
  return '<ol>' + STAGES.map((s) => {
    const at = a[STAGE_AT[s]];
    if (!at && (a.skipped || []).includes(s)) {
      return `<li class="skipped" data-stage="${s}">${t('stage_' + s)} – ${t('skipped')}</li>`;
    }
    return at ? `<li class="done">${t('stage_' + s)} ${fmtTime(at)}${s === 'dispatched' && a.dispatched_to
      ? ' → ' + esc(a.dispatched_to) : ''}</li>` : '';
  }).join('') + '</ol>';
}
function actions(a) {
  if (!S.me || !['operator', 'admin'].includes(S.me.role)) return '';
  const i = STAGES.indexOf(a.state);
  let h = '';
  if (i < 1) h += `<button class="primary" data-act="ack">${t('ack')}</button>`;
  if (i < 2) {
    h += `<input data-f="to" placeholder="${t('responder')}" value="${esc(a.grid ? t('grid') + ' ' + a.grid : '')}">
      <button data-act="dispatch">${t('dispatch')}</button>`;
  }
  if (i < 3) h += `<button data-act="on_scene">${t('on_scene')}</button>`;
  h += `<select data-f="outcome" required><option value="" selected disabled>${t('o_pick')}</option>${
    OUTCOMES.map((o) => `<option value="${o}">${t('o_' + o)}</option>`).join('')}</select><input data-f="note" placeholder="${t('note')}"><button data-act="resolve">${t('resolve')}</button>`;
  return `<div class="actions">${h}</div><p class="error"></p>`;
}
function card(a) {
  const d = document.createElement('article');
  d.dataset.id = a.id; d.dataset.kind = a.kind; d.dataset.state = a.state;
  d.className = `alarm s-${a.state} k-${a.kind.split('.')[0]}${a.escalated ? ' escalated' : ''}`;
  d.innerHTML = `<h3>${esc(kindLabel(a.kind))}${a.escalated ? ` <span class="esc">${t('escalated')}</span>` : ''}
      <span class="age" data-since="${esc(a.raised_at)}"></span></h3>
    ${a.kind === 'nodes.offline' ? outageMeta(a) : `<div class="meta">${esc(a.node)} · ${t('place')}: ${esc(a.place || '–')}
      · ${t('grid')}: ${esc(a.grid || '–')}${a.count > 1 ? ` · ×${a.count} ${t('count')}` : ''}</div>`}
    <img alt="" data-snap="${esc(a.id)}"${a.has_snapshot ? ` src="/api/events/${encodeURIComponent(a.id)}/snapshot.jpg"`
      : ' hidden'}>
    ${stageList(a)}${actions(a)}`;
  const img = d.querySelector('img');
  img.onerror = () => { img.hidden = true; };
  img.onload = () => { img.hidden = false; };
  d.querySelectorAll('[data-act]').forEach((b) => b.addEventListener('click', () => act(a, b.dataset.act, d)));
  return d;
}
function outageMeta(a) { // one incident for many nodes gone silent together: how many, which, how many back
  const shown = (a.nodes || []).slice(0, 30);
  const more = a.count > shown.length ? ` …+${a.count - shown.length}` : '';
  return `<div class="meta outage">${a.count} ${t('outage_nodes')} · ${t('outage_back')} ${a.nodes_back || 0}</div>
    <div class="meta members">${shown.map(esc).join(', ')}${more}</div>`;
}
function renderAlarms() {
  const root = $('alarms');
  const keep = new Set();
  for (const a of S.alarms) {
    const sig = [a.state, a.count, a.nodes_back, a.escalated, a.dispatched_to, a.has_snapshot, S.lang].join('|');
    let entry = S.cards.get(a.id);
    if (!entry || entry.sig !== sig) {
      const el = card(a);
      if (entry) entry.el.replaceWith(el);
      entry = {el, sig}; S.cards.set(a.id, entry);
    }
    root.appendChild(entry.el); // keeps the server's order: loudest first, then newest
    keep.add(a.id);
  }
  for (const [id, entry] of S.cards) if (!keep.has(id)) { entry.el.remove(); S.cards.delete(id); }
  $('count').textContent = S.alarms.length;
  $('no-alarms').hidden = S.alarms.length > 0;
  tickAges();
}
function tickAges() {
  const now = Date.now();
  document.querySelectorAll('.age[data-since]').forEach((el) => {
    el.textContent = fmtDur((now - Date.parse(el.dataset.since)) / 1000) + ' ' + t('ago');
  });
  $('clock').textContent = fmtTime(new Date().toISOString(), true);
}
setInterval(tickAges, 1000);
async function act(a, action, el) {
  const body = {};
  const f = (n) => el.querySelector(`[data-f="${n}"]`);
  if (action === 'dispatch') body.to = f('to').value || (a.grid ? `${t('grid')} ${a.grid}` : 'patrol');
  if (action === 'resolve') { // no default outcome: the operator says what happened
    if (!f('outcome').value) { el.querySelector('.error').textContent = t('need_outcome'); f('outcome').focus(); return; }
    body.outcome = f('outcome').value; if (f('note').value) body.note = f('note').value;
  }
  const r = await api(`/api/alarms/${encodeURIComponent(a.id)}/${action}`, {method: 'POST', body});
  if (!r.ok) {
    const msg = await r.json().catch(() => ({}));
    el.querySelector('.error').textContent = `${t('failed')}: ${msg.detail || r.status}`;
  }
  loadAlarms();
}

// --- live connection ---------------------------------------------------------------------------------
function connect() {
  const proto = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const since = S.cursor != null ? `?since=${S.cursor}` : '';
  const ws = new WebSocket(proto + location.host + '/api/live' + since);
  S.ws = ws;
  ws.onopen = () => {
    S.retry = 0; S.lostAt = null; $('lost').hidden = true;
    $('conn').textContent = t('live'); $('conn').className = ''; $('conn').dataset.i18n = 'live';
    loadAlarms(); loadNodes();
  };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    window.dispatchEvent(new CustomEvent('pingan:live', {detail: msg})); // dispatch.js, office.js listen
    if (msg.cursor != null && (S.cursor == null || msg.cursor > S.cursor)) S.cursor = msg.cursor;
    if (msg.type === 'hello') return;
    if (msg.alarm || msg.type === 'alarm') scheduleAlarms();
    if (msg.type === 'node') scheduleNodes();
    if (msg.type === 'snapshot') {
      const img = document.querySelector(`img[data-snap="${CSS.escape(msg.event_id)}"]`);
      if (img) img.src = `/api/events/${encodeURIComponent(msg.event_id)}/snapshot.jpg?t=${Date.now()}`;
      else scheduleAlarms(); // its card is not drawn yet: it comes with the picture
    }
  };
  ws.onclose = async () => {
    if (S.ws !== ws) return;
    S.ws = null;
    const me = await fetch('/api/me', {credentials: 'same-origin'}).catch(() => null);
    if (me && me.status === 401) { showLogin(); return; }
    S.lostAt = S.lostAt || new Date();
    $('lost').hidden = false; $('lost-since').textContent = fmtTime(S.lostAt.toISOString(), true);
    $('conn').textContent = t('disconnected'); $('conn').className = 'down';
    S.retry = Math.min(S.retry + 1, 5);
    setTimeout(connect, 500 * S.retry);
  };
}
// the session slides while the console is open: the node list refresh keeps it alive
setInterval(() => { if (S.me && !$('app-view').hidden) loadNodes(); }, 30000);

// --- map -----------------------------------------------------------------------------------------------
let nodesTimer = null;
function scheduleNodes() { if (!nodesTimer) nodesTimer = setTimeout(() => { nodesTimer = null; loadNodes(); }, 200); }
async function loadNodes() {
  const r = await api('/api/nodes').catch(() => null);
  if (!r || !r.ok) return;
  S.nodes = await r.json(); renderMap();
  document.dispatchEvent(new Event('pingan:nodes')); // e.g. Live is offered only for nodes online
}
function health(n) { // every open alarm kind colours its node (a door held open or locked out stayed green)
  const open = S.alarms.filter((a) => a.node === n.id && a.state !== 'resolved' && a.kind !== 'alarm.test')
    .map((a) => a.kind);
  if (open.some((k) => !k.startsWith('tamper.') && !k.endsWith('.offline'))) return 'alarm-c';
  if (open.some((k) => k.startsWith('tamper.'))) return 'tamper';
  if (n.state !== 'online') return 'offline';
  return 'online';
}
function renderMap() {
  const svg = $('map');
  const placed = S.nodes.filter((n) => n.lat != null && n.lon != null);
  const unplaced = S.nodes.filter((n) => n.lat == null || n.lon == null);
  // labels never overlap: each takes the first free spot around its dot (alarms first), or none (its title stays)
  const boxes = [];
  const free = (b) => b.x0 >= 0 && b.x1 <= 1000 && b.y0 >= 0 && b.y1 <= 640
    && !boxes.some((o) => b.x0 < o.x1 && b.x1 > o.x0 && b.y0 < o.y1 && b.y1 > o.y0);
  const label = (text, cx, cy, r, size = 12) => {
    const w = text.length * size * 0.62; const h = size + 2;
    for (const [x, y, anchor] of [[cx + r + 3, cy + size / 3, 'start'], [cx - r - 3, cy + size / 3, 'end'],
      [cx, cy - r - 4, 'middle'], [cx, cy + r + size + 2, 'middle']]) {
      const x0 = anchor === 'start' ? x : anchor === 'end' ? x - w : x - w / 2;
      const b = {x0, x1: x0 + w, y0: y - size, y1: y - size + h};
      if (free(b)) { boxes.push(b); return {x, y, anchor}; }
    }
    return null;
  };
  const dot = (n, cx, cy) => {
    const c = health(n); const r = c === 'alarm-c' ? 11 : 7;
    const at = label(n.id, cx, cy, r);
    return `<g data-node="${esc(n.id)}" data-health="${c.replace('-c', '')}"><title>${esc(n.id)} · ${
      esc(n.place)} · ${esc(n.state)}</title><circle class="${c}" cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="${r}"/>${
      at ? `<text x="${at.x.toFixed(1)}" y="${at.y.toFixed(1)}" text-anchor="${at.anchor}">${esc(n.id)}</text>` : ''}</g>`;
  };
  // nodes registered without a location are listed beside the map, not drawn on it (they stacked over poles)
  const list = $('map-unplaced');
  list.hidden = !unplaced.length;
  list.innerHTML = unplaced.length ? `<b>${t('no_location')}</b><ul>${unplaced.map((n) =>
    `<li data-node="${esc(n.id)}" data-health="${health(n).replace('-c', '')}"><i class="dot ${health(n)}"></i>${
      esc(n.id)} <small>${esc(n.place || '')}</small></li>`).join('')}</ul>` : '';
  if (!placed.length) { svg.innerHTML = ''; return; }
  const lats = placed.map((n) => n.lat); const lons = placed.map((n) => n.lon);
  const [la0, la1, lo0, lo1] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const k = Math.cos((la0 + la1) / 2 * Math.PI / 180); // equirectangular, good enough for a district
  const w = Math.max((lo1 - lo0) * k, 1e-4); const h = Math.max(la1 - la0, 1e-4);
  const scale = Math.min(900 / w, 540 / h);
  const x = (n) => 50 + ((n.lon - lo0) * k) * scale + (900 - w * scale) / 2;
  const y = (n) => 50 + (la1 - n.lat) * scale + (540 - h * scale) / 2;
  const grids = {};
  for (const n of placed) (grids[n.grid || '–'] ||= []).push(n);
  let out = '';
  for (const n of placed) boxes.push({x0: x(n) - 11, x1: x(n) + 11, y0: y(n) - 11, y1: y(n) + 11}); // dots first
  const loud = (n) => (health(n) === 'alarm-c' ? 0 : health(n) === 'tamper' ? 1 : 2);
  for (const n of [...placed].sort((a, b) => loud(a) - loud(b))) out += dot(n, x(n), y(n));
  for (const [g, members] of Object.entries(grids)) {
    const cx = members.reduce((s, n) => s + x(n), 0) / members.length;
    const cy = members.reduce((s, n) => s + y(n), 0) / members.length;
    const at = label(`${t('grid')} ${g}`, cx, cy, 22, 14);
    if (at) out = `<text class="grid-label" x="${at.x.toFixed(1)}" y="${at.y.toFixed(1)}" text-anchor="${at.anchor}">${
      t('grid')} ${esc(g)}</text>` + out;
  }
  svg.innerHTML = out;
}

// --- tabs ----------------------------------------------------------------------------------------------
document.querySelectorAll('.tab').forEach((b) => b.addEventListener('click', () => {
  document.querySelectorAll('.tab').forEach((x) => x.classList.toggle('active', x === b));
  for (const name of ['alarms', 'map', 'reports']) $('tab-' + name).hidden = name !== b.dataset.tab;
  if (b.dataset.tab === 'reports') loadReport();
  if (b.dataset.tab === 'map') loadNodes();
}));

// --- reports -------------------------------------------------------------------------------------------
function reportQuery() {
  const p = $('report-period').value;
  if (p === 'range' && $('report-from').value) {
    return `from=${$('report-from').value}&to=${$('report-to').value || $('report-from').value}`;
  }
  return `period=${p === 'range' ? 'today' : p}`;
}
$('report-form').addEventListener('submit', (e) => { e.preventDefault(); loadReport(); });
for (const id of ['report-from', 'report-to']) { // typing a date means a range
  $(id).addEventListener('input', () => { $('report-period').value = 'range'; });
}
function bars(labels, values, height = 160) {
  const max = Math.max(1, ...values); const bw = Math.min(80, 960 / Math.max(1, values.length));
  let s = `<svg viewBox="0 0 1000 ${height + 30}">`;
  values.forEach((v, i) => {
    const bh = v / max * height; const x = 30 + i * bw;
    s += `<rect x="${x.toFixed(1)}" y="${(height - bh + 5).toFixed(1)}" width="${(bw * 0.8).toFixed(1)}" height="${
      bh.toFixed(1)}"><title>${esc(labels[i])}: ${v}</title></rect>`;
    if (v) s += `<text x="${(x + bw * 0.4).toFixed(1)}" y="${(height - bh).toFixed(1)}" text-anchor="middle">${v}</text>`;
    s += `<text x="${(x + bw * 0.4).toFixed(1)}" y="${height + 22}" text-anchor="middle">${esc(labels[i])}</text>`;
  });
  return s + '</svg>';
}
function table(head, rows) {
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) =>
    `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
}
async function loadReport() {
  const q = reportQuery();
  $('report-csv').href = '/api/reports/alarms.csv?' + q;
  const r = await api('/api/reports/summary?' + q);
  if (!r.ok) { $('report').textContent = t('failed'); return; }
  const R = await r.json();
  const tot = R.totals;
  const top = R.per_node.slice(0, 24);
  $('report').innerHTML = `<p>${fmtTime(R.from, true)} – ${fmtTime(R.to, true)} (${esc(R.timezone)})</p>
    <div class="cards" id="report-totals">
      <div class="card"><b>${tot.alarms}</b>${t('r_alarms')}</div><div class="card"><b>${tot.open}</b>${t('r_open')}</div>
      <div class="card"><b>${tot.escalated}</b>${t('r_escalated')}</div><div class="card"><b>${tot.tests}</b>${t('r_tests')}</div>
      ${Object.entries(R.doors).map(([k, v]) => `<div class="card"><b>${v}</b>${t('r_doors')}: ${t('d_' + k)}</div>`).join('')}
    </div>
    <h2>${t('r_per_hour')}</h2><div class="chart">${bars([...Array(24).keys()].map(String), R.per_hour)}</div>
    <h2>${t('r_per_node')}</h2><div class="chart">${bars(top.map((n) => n.node), top.map((n) => n.alarms))}</div>
    <h2>${t('r_per_grid')}</h2><div class="chart">${bars(R.per_grid.map((g) => g.grid || '–'),
      R.per_grid.map((g) => g.alarms))}</div>
    <h2>${t('r_response')}</h2>${table(['', t('r_n'), t('r_median'), t('r_p90'), t('r_skipped')],
      Object.entries(R.response).map(([k, v]) => [t('s_' + k), v.n, fmtDur(v.median_s), fmtDur(v.p90_s), v.skipped ?? 0]))}
    <h2>${t('r_scorecard')}</h2>${table([t('grid'), t('nodes'), t('r_alarms'), t('false_alarms'), t('r_escalated'),
      t('s_acknowledge') + ' ' + t('r_median'), t('s_resolve') + ' ' + t('r_median'), t('r_uptime'),
      t('d_denied'), t('d_forced')], R.scorecard.map((g) => [g.grid || '–', g.nodes, g.alarms, g.false_alarms,
      g.escalated, fmtDur(g.ack.median_s), fmtDur(g.resolve.median_s),
      g.uptime_pct == null ? '–' : g.uptime_pct.toFixed(2) + '%', g.doors.denied, g.doors.forced]))}
    <h2>${t('r_uptime')}</h2>${table([t('node'), t('grid'), '%', t('r_down')], R.uptime.map((u) =>
      [u.node, u.grid, u.uptime_pct.toFixed(2), fmtDur(u.downtime_s)]))}`;
}

start();
