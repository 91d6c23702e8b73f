// @ts-check
// The monitoring-centre console's entry: registers the screens and starts. No build step, no CDN; Simplified
// Chinese by default, English on request. Each screen is an ES module exporting `name`, `STRINGS` and
// `mount(root, app)` (see app.js); to add one, import it and put it in SCREENS.
import * as app from './app.js';
import * as live from './live.js';
import * as alarms from './screens/alarms.js';
import * as map from './screens/map.js';
import * as nodes from './screens/nodes.js';
import * as reports from './screens/reports.js';
import * as admin from './screens/admin.js';
import * as history from './screens/history.js';

/** Strings every screen shares (the header, the login, the stream's state). */
export const STRINGS = {
  zh: {
    login_title: '监控中心登录', username: '用户名', password: '密码', login: '登录', logout: '退出',
    lang_switch: 'English', connecting: '连接中…', live: '实时在线', disconnected: '连接断开',
    lost_title: '与中心的连接已断开', lost_body: '正在重新连接… 期间的报警将在恢复后补上。',
    bad_login: '用户名或密码错误', too_many: '失败次数过多，请稍后再试', failed: '操作失败', grid: '网格', node: '设备',
    line: '行', screens: '页面',
    k_alarm_pressed: '一键报警', k_alarm_repeat: '再次按下', k_door_forced: '门被强行打开', k_tamper_opened: '机箱被打开',
    k_tamper_camera: '摄像头被遮挡', k_node_offline: '设备离线', k_nodes_offline: '多台设备同时离线',
    k_detection_person: '检测到人员', k_detection_vehicle: '检测到车辆', k_detection_loitering: '徘徊',
    k_door_held_open: '门长时间未关', k_door_fire_release: '消防释放', k_door_lockout: '门禁锁定', k_node_fault: '设备故障',
    k_alarm_test: '测试报警',
  },
  en: {
    login_title: 'Monitoring centre login', username: 'Username', password: 'Password', login: 'Log in',
    logout: 'Log out', lang_switch: '中文', connecting: 'connecting…', live: 'live', disconnected: 'disconnected',
    lost_title: 'Connection to the hub lost', lost_body: 'Reconnecting… alarms raised meanwhile will be caught up.',
    bad_login: 'Wrong username or password', too_many: 'Too many failures; try again later', failed: 'Action failed',
    grid: 'Grid', node: 'Node', line: 'line', screens: 'Screens',
    k_alarm_pressed: 'Alarm button', k_alarm_repeat: 'Pressed again', k_door_forced: 'Door forced',
    k_tamper_opened: 'Enclosure opened', k_tamper_camera: 'Camera tampered', k_node_offline: 'Node offline',
    k_nodes_offline: 'Many nodes offline at once', k_detection_person: 'Person detected',
    k_detection_vehicle: 'Vehicle detected', k_detection_loitering: 'Loitering', k_door_held_open: 'Door held open',
    k_door_fire_release: 'Fire release', k_door_lockout: 'Door lockout', k_node_fault: 'Node fault',
    k_alarm_test: 'Test alarm',
  },
};

/** The screens, in the order of their tabs. The community office (screens/office.js) goes here too. */
export const SCREENS = [
  alarms, history, map, nodes, reports, {...admin, roles: ['admin']},
];

app.addStrings(STRINGS);
app.register(SCREENS, app);
const panel = live.init(app);
// for the tests and the benches: the state and a few entry points (modules keep no globals)
Object.assign(window, {pingan: Object.assign(app.S, {app, live: live.LV, ...panel, loadAlarms: app.loadAlarms})});

const $ = app.$;
$('login-form').addEventListener('submit', async (/** @type {Event} */ e) => {
  e.preventDefault();
  const r = await app.api('/api/login', {method: 'POST', body: {username: $('login-user').value,
    password: $('login-pass').value}});
  if (!r.ok) { $('login-error').textContent = app.t(r.status === 429 ? 'too_many' : 'bad_login'); return; }
  $('login-pass').value = ''; $('login-error').textContent = '';
  app.start();
});
$('logout').addEventListener('click', async () => { await app.api('/api/logout', {method: 'POST'}); app.showLogin(); });
document.querySelectorAll('.lang').forEach((b) => b.addEventListener('click', () => {
  app.S.lang = app.S.lang === 'zh' ? 'en' : 'zh'; localStorage.setItem('pingan.lang', app.S.lang); app.applyLang();
}));
app.start();
