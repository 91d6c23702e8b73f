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
import {STRINGS} from './strings.js';
import * as admin from './screens/admin.js';
import * as history from './screens/history.js';
import * as office from './screens/office.js';
import * as selftest from './screens/selftest.js';
import * as teams from './screens/teams.js';
import * as sensitive from './screens/sensitive.js';
import * as dispatch from './dispatch.js';
import * as citylink from './citylink.js';
import * as brokerlimit from './brokerlimit.js';
import * as health from './health.js';

/** The screens, in the order of their tabs. */
export const SCREENS = [
  alarms, history, map, nodes, reports, selftest, office, teams, {...admin, roles: ['admin']},
  {...sensitive, roles: ['admin']},
];

app.addStrings(STRINGS);
app.addStrings(dispatch.STRINGS); // the dispatch panel on the alarm cards and its part of the report
dispatch.init(app);
sensitive.initBanner(app); // the sensitive-period banner, for every role (screens/sensitive.js)
app.addStrings(citylink.STRINGS); // the city-networking badge in the header (GB/T 28181)
app.addStrings(brokerlimit.STRINGS); // the header's warning when the broker may not hold every node
app.register(SCREENS, app);
citylink.init(app);
brokerlimit.init(app);
health.init(app); // after the badges: its first answer finds them listening
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
