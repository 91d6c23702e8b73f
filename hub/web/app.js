// @ts-check
// The console's shared core: state, the API helper, i18n, the live stream and the routing between screens.
// Plain ES modules served as they are (no build step at run time: district networks are closed);
// `tsc --noEmit` checks them in CI against types generated from the hub's contract (types/contract.d.ts).
//
// A screen is a module that exports `mount(root, app)`:
//   root: the screen's own <main id="tab-NAME" class="tab-body"> (empty, hidden until its tab is chosen)
//   app:  this module (import * as app): app.api, app.t, app.S, app.on, app.go, app.esc, app.fmtTime …
// and `STRINGS` ({zh: {...}, en: {...}}, the same keys in both: tests/hub/test_console_i18n.py fails otherwise).
// mount() is called once after login and may return {show(arg)} (called each time its route is shown,
// with the part after the name: #/nodes/pole-07 → show('pole-07')). Register it in console.js's SCREENS.
// `export const LANG = 'remount'`: on a language switch the screen is emptied and mounted again (its
// app.on listeners from before end), then shown where it was; without it the screen relabels itself
// (data-i18n / data-i18n-ph attributes are relabelled for every screen, and app.on('lang', ...) is called).

import {problemText, serverText} from './server-errors.js';

/** @typedef {import('./types/contract').LiveMessage} LiveMessage */
/** @typedef {{id: string, node?: string, kind?: string, state?: string, count?: number, escalated?: boolean,
 *   raised_at?: string, grid?: string, place?: string, has_snapshot?: boolean, rank?: number, incident?: string|null,
 *   [k: string]: any}} Alarm */
/** @typedef {{id: string, kind?: string, state?: string, place?: string, grid?: string, lat?: number|null,
 *   lon?: number|null, last_seen?: string, [k: string]: any}} NodeRow */
/** @typedef {{zh: Record<string, string>, en: Record<string, string>}} Strings */
/** @typedef {{show?: (arg: string) => void}} ScreenHandle */
/** @typedef {{name: string, mount: (root: HTMLElement, app: any) => (ScreenHandle|void), STRINGS?: Strings,
 *   tab?: boolean, roles?: string[], LANG?: string}} Screen */
/** @typedef {{screen: Screen, root: HTMLElement, handle: ScreenHandle|null, mounted: boolean, gen: number,
 *   arg: string}} Entry */

export const S = {
  lang: localStorage.getItem('pingan.lang') || 'zh',
  /** @type {{username: string, role: string, timezone?: string}|null} */ me: null,
  tz: 'Asia/Shanghai',
  /** @type {Alarm[]} */ alarms: [],
  /** @type {NodeRow[]} */ nodes: [],
  /** @type {number|null} */ cursor: null,
  /** @type {WebSocket|null} */ ws: null,
  /** @type {Date|null} */ lostAt: null,
  retry: 0,
  route: 'alarms',
};

/** @type {Strings} */
const TABLE = {zh: {}, en: {}};
/** Adds a screen's strings (both languages). */
export function addStrings(/** @type {Strings} */ strings) {
  Object.assign(TABLE.zh, strings.zh); Object.assign(TABLE.en, strings.en);
}
export function t(/** @type {string} */ key) { return (S.lang === 'en' ? TABLE.en : TABLE.zh)[key] ?? TABLE.en[key] ?? key; }
export function kindLabel(/** @type {string} */ k) { return t('k_' + String(k).replace('.', '_')); }
export function esc(/** @type {any} */ s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;',
    "'": '&#39;'}[c] || c));
}
/** @returns {any} an element by id (screens own their markup; a missing id is a bug the tests see) */
export const $ = (/** @type {string} */ id) => document.getElementById(id);

/** A time in the district's zone; with the date in the language's order (year-month-day in both). */
export function fmtTime(/** @type {string|null|undefined} */ iso, withDate = false) {
  if (!iso) return '';
  /** @type {Intl.DateTimeFormatOptions} */
  const opts = {timeZone: S.tz, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false};
  if (withDate) Object.assign(opts, {year: 'numeric', month: '2-digit', day: '2-digit'});
  const f = new Intl.DateTimeFormat(S.lang === 'zh' ? 'zh-CN' : 'en-GB', opts);
  if (S.lang === 'zh' || !withDate) return f.format(new Date(iso));
  // English dates in the order the report inputs take them (year-month-day), never dd/mm beside mm/dd
  const p = Object.fromEntries(f.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}
export function fmtDur(/** @type {number|null|undefined} */ s) {
  if (s == null) return '–';
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  return Math.floor(s / 3600) + 'h' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + 'm';
}

// --- events between modules: 'alarms', 'nodes', 'lang', 'live' (every stream message), 'route' -------
const bus = new EventTarget();
export function on(/** @type {string} */ type, /** @type {(detail: any) => void} */ fn) {
  bus.addEventListener(type, (e) => fn(/** @type {CustomEvent} */ (e).detail));
}
export function emit(/** @type {string} */ type, /** @type {any} */ detail = null) {
  bus.dispatchEvent(new CustomEvent(type, {detail}));
}

// --- API ------------------------------------------------------------------------------------------
/** fetch() with the console's cookie and JSON; a 401 goes back to the login. */
export async function api(/** @type {string} */ path, /** @type {{method?: string, body?: any}} */ opts = {}) {
  /** @type {RequestInit} */
  const init = {credentials: 'same-origin', method: opts.method, headers: {'Content-Type': 'application/json'}};
  if (opts.body !== undefined) init.body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  const r = await fetch(path, init);
  if (r.status === 401 && path !== '/api/login') { showLogin(); throw new Error('login required'); }
  return r;
}
/** A failed answer's message for a person: the hub's detail (a string or pydantic's list), else the status. */
export async function failure(/** @type {Response} */ r) {
  const body = await r.json().catch(() => ({}));
  const d = body.detail;
  if (Array.isArray(d)) {
    return d.map((p) => `${(p.loc || []).filter((/** @type {any} */ x) => x !== 'body').join('.')}${
      p.line ? ` (${t('line')} ${p.line})` : ''}: ${problemText(p, S.lang)}`).join('; ');
  }
  return `${t('failed')}: ${say(d || body.message || r.status)}`;
}
/** A sentence of the hub's (an answer's `detail`) in the console's language (server-errors.js). */
export function say(/** @type {any} */ text) {
  // a value the hub put in the sentence that the console has a word for: an alarm's stage, a node's state
  const word = (/** @type {string} */ v) => {
    for (const key of [`stage_${v}`, `st_${v}`]) { const w = t(key); if (w !== key) return w; }
    return v;
  };
  return serverText(String(text ?? ''), S.lang, word);
}

// --- login ------------------------------------------------------------------------------------------
export function showLogin() {
  if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
  $('app-view').hidden = true; $('login-view').hidden = false; $('lost').hidden = true; $('login-user').focus();
}
export function applyLang() {
  document.documentElement.lang = S.lang === 'zh' ? 'zh-CN' : 'en';
  document.querySelectorAll('[data-i18n]').forEach((el) => {
    el.textContent = t(/** @type {HTMLElement} */ (el).dataset.i18n || '');
  });
  document.querySelectorAll('[data-i18n-ph]').forEach((el) => {
    /** @type {HTMLInputElement} */ (el).placeholder = t(/** @type {HTMLElement} */ (el).dataset.i18nPh || '');
  });
  // screens of forms and tables (LANG = 'remount') are drawn again in the new language, each where it was
  for (const e of screens.values()) {
    if (!e.mounted || e.screen.LANG !== 'remount') continue;
    e.gen++; e.root.innerHTML = '';
    e.handle = e.screen.mount(e.root, scoped(e)) || null;
    if (!e.root.hidden) e.handle?.show?.(e.arg);
  }
  emit('lang');
}
export function canWork() { return !!S.me && ['operator', 'admin'].includes(S.me.role); }
export function isRole(/** @type {string[]} */ ...roles) { return !!S.me && roles.includes(S.me.role); }

// --- screens and routing (#/name/arg) ------------------------------------------------------------------
/** @type {Map<string, Entry>} */
const screens = new Map();
/** The app as one mounting of a screen sees it: its listeners end when the screen is mounted again. */
function scoped(/** @type {Entry} */ entry) {
  const gen = entry.gen;
  return {...app, on: (/** @type {string} */ type, /** @type {(d: any) => void} */ fn) => on(type, (d) => {
    if (entry.gen === gen) fn(d);
  })};
}
export function register(/** @type {Screen[]} */ list, /** @type {any} */ self) {
  const nav = $('tabs'); const main = $('screens');
  for (const screen of list) {
    if (screen.STRINGS) addStrings(screen.STRINGS);
    const root = document.createElement('main');
    root.id = 'tab-' + screen.name; root.className = 'tab-body'; root.hidden = true;
    main.appendChild(root);
    screens.set(screen.name, {screen, root, handle: null, mounted: false, gen: 0, arg: ''});
    if (screen.tab !== false) {
      const b = document.createElement('button');
      b.className = 'tab'; b.id = 'tab-btn-' + screen.name; b.dataset.tab = screen.name; b.dataset.i18n = 'tab_' + screen.name;
      b.textContent = t('tab_' + screen.name);
      if (screen.name === 'alarms') {
        b.removeAttribute('data-i18n');
        b.innerHTML = `<span data-i18n="tab_alarms">${t('tab_alarms')}</span> <b id="count">0</b>`;
      }
      b.addEventListener('click', () => go(screen.name));
      nav.appendChild(b);
    }
  }
  app = self;
}
/** @type {any} */
let app = null;
export function go(/** @type {string} */ route) {
  if (location.hash !== '#/' + route) location.hash = '#/' + route; else show();
}
function allowed(/** @type {Screen} */ s) { return !s.roles || (S.me && s.roles.includes(S.me.role)); }
/** Shows the screen the address names (the alarms when none or one this role may not see). */
export function show() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  let entry = screens.get(name);
  if (!entry || !allowed(entry.screen)) entry = screens.get('alarms');
  if (!entry) return;
  S.route = entry.screen.name;
  for (const [n, e] of screens) e.root.hidden = n !== S.route;
  document.querySelectorAll('.tab').forEach((b) => {
    const tab = /** @type {HTMLElement} */ (b);
    tab.classList.toggle('active', tab.dataset.tab === S.route);
    tab.hidden = !allowed(/** @type {any} */ (screens.get(tab.dataset.tab || ''))?.screen || {});
  });
  if (!entry.mounted) { entry.mounted = true; entry.handle = entry.screen.mount(entry.root, scoped(entry)) || null; }
  entry.arg = decodeURIComponent(rest.join('/'));
  entry.handle?.show?.(entry.arg);
  emit('route', S.route);
}
window.addEventListener('hashchange', () => { if (S.me) show(); });

// --- the shared lists: open alarms and nodes (every screen reads them; the stream refreshes them) --------
/** The most open alarms the page asks for (the API's most); the count then says "1000+". */
export const ALARM_LIMIT = 1000;
/** The most ids one patch asks for (the API's most); more changes at once load the whole list. */
const PATCH_LIMIT = 200;
const seen = new Set();
/** @type {Map<string, number>} */
const counts = new Map();
/** @type {Promise<any>|null} */
let alarmsLoading = null;
/** What the next load must bring: the whole list, or only the alarms live messages named. */
let wantAll = false;
/** @type {Set<string>} */
const wanted = new Set();
/** The list again after a live change: at once when no load is under way (a new alarm's card waited 50 ms
 * for nothing), else once more when it ends (a burst of messages is one or two loads, never one each). With
 * an id, only that alarm is fetched and merged (a new card no longer waits for 1,000 alarms, 585 KB). */
export function scheduleAlarms(/** @type {string|undefined} */ id = undefined) {
  if (id) wanted.add(id); else wantAll = true;
  if (alarmsLoading) return;
  const all = wantAll || wanted.size > PATCH_LIMIT || !S.alarms.length;
  const ids = all ? [] : [...wanted];
  wantAll = false; wanted.clear();
  alarmsLoading = (all ? loadAlarms() : patchAlarms(ids)).catch(() => undefined).finally(() => {
    alarmsLoading = null;
    if (wantAll || wanted.size) scheduleAlarms(wanted.values().next().value);
  });
}
/** Notes what changed in these rows (new, escalated, pressed again) and remembers them. */
function noteChanges(/** @type {Alarm[]} */ rows) {
  let fresh = false; let escalated = false; let again = false;
  for (const a of rows) {
    const before = counts.get(a.id);
    if (before != null && (a.count || 0) > before) again = true; // pressed again: the same card, counted at once
    counts.set(a.id, a.count || 0);
    if (!seen.has(a.id) && a.state === 'open') fresh = true;
    if (a.escalated && !seen.has(a.id + ':esc')) { escalated = true; seen.add(a.id + ':esc'); }
    seen.add(a.id);
  }
  return {fresh, escalated, again};
}
/** @returns {Promise<{fresh: boolean, escalated: boolean}|undefined>} */
export async function loadAlarms() {
  const r = await api(`/api/alarms?limit=${ALARM_LIMIT}`);
  if (!r.ok) return;
  /** @type {Alarm[]} */
  const list = await r.json();
  const changes = noteChanges(list);
  S.alarms = list;
  emit('alarms', changes);
  return changes;
}
/** The queue's order, as the hub sorts it (hub/alarms/service.py list_alarms): waiting first, escalated first
 * among them, the loudest kind (`rank`), the oldest, the id. */
function queueOrder(/** @type {Alarm} */ a, /** @type {Alarm} */ b) {
  const key = (/** @type {Alarm} */ x) => [x.state === 'open' ? 0 : 1, x.escalated ? 0 : 1, x.rank ?? 99];
  const ka = key(a); const kb = key(b);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] - kb[i];
  const ra = a.raised_at || ''; const rb = b.raised_at || '';
  if (ra !== rb) return ra < rb ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
/** Merges the named alarms as they are now: resolved ones and those folded into an incident leave the list. */
async function patchAlarms(/** @type {string[]} */ ids) {
  const r = await api(`/api/alarms?ids=${ids.map(encodeURIComponent).join(',')}`);
  if (!r.ok) { await loadAlarms(); return; }
  /** @type {Alarm[]} */
  const rows = await r.json();
  const byId = new Map(S.alarms.map((a) => [a.id, a]));
  let left = false;
  for (const a of rows) {
    const gone = a.state === 'resolved' || !!a.incident;
    if (gone) { left = left || byId.delete(a.id); continue; }
    byId.set(a.id, a);
  }
  const full = S.alarms.length >= ALARM_LIMIT;
  const list = [...byId.values()].sort(queueOrder).slice(0, ALARM_LIMIT);
  const changes = noteChanges(rows.filter((a) => a.state !== 'resolved' && !a.incident));
  S.alarms = list;
  emit('alarms', changes);
  if (full && left) scheduleAlarms(); // the list was cut at the limit: the next one in line comes with the whole
}
let nodesTimer = /** @type {any} */ (null);
export function scheduleNodes() {
  if (!nodesTimer) nodesTimer = setTimeout(() => { nodesTimer = null; loadNodes(); }, 200);
}
export async function loadNodes() {
  const r = await api('/api/nodes').catch(() => null);
  if (!r || !r.ok) return;
  S.nodes = await r.json();
  emit('nodes');
}
/** Each node's open alarm kinds, built once per list (the map asks for 2,000 nodes: filtering 1,000 alarms for
 * each was 2 million steps on every change). @type {{list: Alarm[]|null, kinds: Map<string, string[]>}} */
const openKinds = {list: null, kinds: new Map()};
function kindsOf(/** @type {string} */ node) {
  if (openKinds.list !== S.alarms) {
    openKinds.list = S.alarms; openKinds.kinds = new Map();
    for (const a of S.alarms) {
      if (a.state === 'resolved' || a.kind === 'alarm.test' || !a.node) continue;
      const k = openKinds.kinds.get(a.node);
      if (k) k.push(a.kind || ''); else openKinds.kinds.set(a.node, [a.kind || '']);
    }
  }
  return openKinds.kinds.get(node) || [];
}
/** The colour an open alarm gives its node: every kind but tests colours it (held open and lockout stayed green). */
export function health(/** @type {NodeRow} */ n) {
  const open = kindsOf(n.id);
  if (open.some((k) => !k.startsWith('tamper.') && !k.endsWith('.offline'))) return 'alarm';
  if (open.some((k) => k.startsWith('tamper.'))) return 'tamper';
  if (n.state !== 'online') return 'offline';
  return 'online';
}

// --- the live stream (WebSocket /api/live; ?since= replays what a reconnecting page missed) ---------------
export function connect() {
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
    /** @type {LiveMessage & {cursor?: number}} */
    const msg = JSON.parse(m.data);
    if (msg.cursor != null && (S.cursor == null || msg.cursor > S.cursor)) S.cursor = msg.cursor;
    if (msg.type === 'hello') return;
    if (msg.type === 'alarm' || ('alarm' in msg && msg.alarm)) {
      const alarm = /** @type {{id?: string}|null|undefined} */ ('alarm' in msg ? msg.alarm : null);
      scheduleAlarms(alarm?.id || ('alarm_id' in msg ? String(msg.alarm_id) : undefined));
    }
    if (msg.type === 'node') scheduleNodes();
    emit('live', msg);
    // for what is not a module of the console (benches, extensions): the same message as a window event
    window.dispatchEvent(new CustomEvent('pingan:live', {detail: msg}));
  };
  ws.onclose = async () => {
    if (S.ws !== ws) return;
    S.ws = null;
    const me = await fetch('/api/me', {credentials: 'same-origin'}).catch(() => null);
    if (me && me.status === 401) { showLogin(); return; }
    S.lostAt = S.lostAt || new Date();
    $('lost').hidden = false; $('lost-since').textContent = fmtTime(S.lostAt.toISOString(), true);
    $('conn').textContent = t('disconnected'); $('conn').className = 'down'; $('conn').dataset.i18n = 'disconnected';
    S.retry = Math.min(S.retry + 1, 5);
    setTimeout(connect, 500 * S.retry);
  };
}

/** After login (or a page load with a session): who, the lists, the screen the address names, the stream. */
export async function start() {
  const r = await fetch('/api/me', {credentials: 'same-origin'});
  // a responder's login is not for the console: their phone app (/r/) is
  if (r.status === 403) { location.replace('/r/'); return; }
  if (!r.ok) { showLogin(); return; }
  S.me = await r.json(); S.tz = S.me?.timezone || S.tz;
  $('login-view').hidden = true; $('app-view').hidden = false;
  $('whoami').textContent = `${S.me?.username} (${S.me?.role})`;
  applyLang();
  show();
  await loadNodes(); await loadAlarms(); // the nodes first: a card offers Live only for a node online
  connect();
}
// the session slides while the console is open: the node list refresh keeps it alive
setInterval(() => { if (S.me && !$('app-view').hidden) loadNodes(); }, 30000);

/** The start of a day (YYYY-MM-DD) in the district's zone, as an ISO time with its offset, for the API. */
export function dayStart(/** @type {string} */ day) {
  const name = new Intl.DateTimeFormat('en', {timeZone: S.tz, timeZoneName: 'longOffset'})
    .formatToParts(new Date(day + 'T12:00:00Z')).find((p) => p.type === 'timeZoneName')?.value || 'GMT';
  const off = name === 'GMT' ? '+00:00' : name.slice(3);
  return `${day}T00:00:00${off}`;
}
/** The day after a YYYY-MM-DD (an inclusive "to" date becomes an exclusive bound). */
export function nextDay(/** @type {string} */ day) {
  const d = new Date(day + 'T00:00:00Z'); d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}
/** Whether text is a real calendar day as YYYY-MM-DD (2026-13-01 and 2026-02-30 are not). */
export function isDay(/** @type {string} */ text) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const d = new Date(text + 'T00:00:00Z');
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === text;
}
