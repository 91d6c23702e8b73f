// @ts-check
// The alarm queue: unacknowledged first (escalated first among them), then severity, then age (the hub
// orders it; the page keeps that order), a card per alarm with its picture and its stages, the sounds,
// and the night shift's keys (j/k or ↓/↑ move, a acknowledges, d dispatches, o on scene, r resolves).
//
// A district's shift can hold 1,000 open alarms: drawing a card each (and asking each one's dispatches) took
// 1.6–3.6 s. The queue draws the first PAGE cards in order (the top is what the night operator acts on:
// every unacknowledged alarm comes before any acknowledged one), says how many are below and how many of
// those are still unacknowledged, and draws PAGE more when the operator scrolls near the end, presses
// "show more", or moves past the last card with j/↓. A live change redraws only the card it changed.

import {decorate} from '../dispatch.js';

/** @typedef {import('../app.js').Alarm} Alarm */

export const name = 'alarms';
export const STRINGS = {
  zh: {
    tab_alarms: '报警', no_alarms: '当前没有未处理的报警', sound_prompt: '浏览器需要点击一次才能播放报警声音。',
    sound_enable: '启用声音', ack: '确认', dispatch: '派警', on_scene: '已到场', resolve: '结案',
    responder: '处置人员或网格队', note: '备注', escalated: '已升级', stage_open: '报警', stage_acknowledged: '已确认',
    stage_dispatched: '已派警', stage_on_scene: '已到场', stage_resolved: '已结案', place: '位置', count: '次数',
    o_assisted: '已救助', o_false_alarm: '误报', o_crime: '刑事/治安案件', o_other: '其他', o_pick: '选择处置结果…',
    o_test: '测试', o_recovered: '已自动恢复', need_outcome: '结案前请选择处置结果', skipped: '跳过', ago: '前',
    outage_nodes: '台设备', outage_back: '已恢复', keys_hint: '快捷键：j/k 选择，a 确认，d 派警，o 到场，r 结案，? 帮助',
    last_press: '最近一次按下', pressed_again: '群众再次按下报警', q_shown: '已显示 {n} 条，共 {total} 条',
    q_more: '再显示 {n} 条', q_below_open: '下方还有 {n} 条未确认的报警',
  },
  en: {
    tab_alarms: 'Alarms', no_alarms: 'No open alarms',
    sound_prompt: 'The browser needs one click before it may play alarm sounds.', sound_enable: 'Enable sound',
    ack: 'Acknowledge', dispatch: 'Dispatch', on_scene: 'On scene', resolve: 'Resolve',
    responder: 'Responder or grid team', note: 'Note', escalated: 'ESCALATED', stage_open: 'Raised',
    stage_acknowledged: 'Acknowledged', stage_dispatched: 'Dispatched', stage_on_scene: 'On scene',
    stage_resolved: 'Resolved', place: 'Place', count: 'presses', o_assisted: 'Assisted', o_false_alarm: 'False alarm',
    o_crime: 'Crime or disorder', o_other: 'Other', o_pick: 'Choose the outcome…', o_test: 'Test',
    o_recovered: 'Recovered by itself', need_outcome: 'Choose the outcome before resolving', skipped: 'skipped',
    ago: 'ago', outage_nodes: 'nodes', outage_back: 'back',
    keys_hint: 'Keys: j/k select, a acknowledge, d dispatch, o on scene, r resolve, ? help',
    last_press: 'last press', pressed_again: 'PRESSED AGAIN', q_shown: 'Showing {n} of {total}',
    q_more: 'Show {n} more', q_below_open: '{n} unacknowledged further down',
  },
};
/** Cards drawn at first, and added each time the operator reaches the end of those drawn. */
export const PAGE = 40;
export const OUTCOMES = ['assisted', 'false_alarm', 'crime', 'other'];
export const STAGES = ['open', 'acknowledged', 'dispatched', 'on_scene', 'resolved'];
/** @type {Record<string, string>} */
const STAGE_AT = {open: 'raised_at', acknowledged: 'acked_at', dispatched: 'dispatched_at', on_scene: 'on_scene_at',
  resolved: 'resolved_at'};

/** @param {HTMLElement} root @param {any} app */
export function mount(root, app) {
  const {S, t, esc, api, fmtTime, fmtDur, kindLabel, on, loadAlarms, canWork} = app;
  root.innerHTML = `<div id="sound-bar" class="sound-bar"><span data-i18n="sound_prompt">${t('sound_prompt')}</span>
    <button id="sound-on" data-i18n="sound_enable">${t('sound_enable')}</button></div>
    <p class="hint" data-i18n="keys_hint">${t('keys_hint')}</p>
    <div id="alarms" class="alarms"></div>
    <p id="queue-more" class="queue-more" hidden><span class="q-text"></span> <button class="q-more"></button></p>
    <p id="no-alarms" class="empty" data-i18n="no_alarms">${t('no_alarms')}</p>`;
  const list = /** @type {HTMLElement} */ (root.querySelector('#alarms'));
  /** @type {Map<string, {el: HTMLElement, sig: string}>} */
  const cards = new Map();
  /** @type {Map<string, string>} a card's last refusal, kept when the card is drawn again (the change it was
   * refused for usually redraws it) */
  const refused = new Map();
  /** @type {AudioContext|null} */
  let audio = null;
  let selected = 0;
  let drawn = PAGE; // how many of the queue's cards are drawn (the first ones, in the queue's order)
  const more = /** @type {HTMLElement} */ (root.querySelector('#queue-more'));
  const moreBtn = /** @type {HTMLButtonElement} */ (more.querySelector('button'));
  function showMore() { drawn += PAGE; render(); }
  moreBtn.addEventListener('click', showMore);
  // scrolling near the end draws the next cards before they are reached
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && !root.hidden && drawn < S.alarms.length) showMore();
  }, {rootMargin: '0px 0px 600px 0px'}).observe(more);

  // --- sound: Web Audio beeps, allowed only after one click (autoplay rules) -------------------------
  const soundBar = /** @type {HTMLElement} */ (root.querySelector('#sound-bar'));
  /** @type {HTMLElement} */ (root.querySelector('#sound-on')).addEventListener('click', () => {
    // @ts-ignore - webkitAudioContext on old WebKit
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    audio.resume(); soundBar.hidden = true; beep(1);
  });
  function beep(times = 2, loud = false) {
    const ctx = audio;
    if (!ctx || ctx.state !== 'running') { soundBar.hidden = false; return; }
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
    const open = S.alarms.filter((/** @type {Alarm} */ a) => a.state === 'open');
    if (open.some((/** @type {Alarm} */ a) => a.escalated)) beep(3, true);
    else if (open.length && Date.now() / 1000 % 10 < 2) beep(1);
  }, 2000);

  function stageList(/** @type {Alarm} */ a) {
    return '<ol>' + STAGES.map((s) => {
      const at = a[STAGE_AT[s]];
      if (!at && (a.skipped || []).includes(s)) {
        return `<li class="skipped" data-stage="${s}">${t('stage_' + s)} – ${t('skipped')}</li>`;
      }
      return at ? `<li class="done">${t('stage_' + s)} ${fmtTime(at)}${s === 'dispatched' && a.dispatched_to
        ? ' → ' + esc(a.dispatched_to) : ''}</li>` : '';
    }).join('') + '</ol>';
  }
  function actions(/** @type {Alarm} */ a) {
    if (!canWork()) return '';
    const i = STAGES.indexOf(a.state || 'open');
    let h = '';
    if (i < 1) h += `<button class="primary" data-act="ack">${t('ack')}</button>`;
    if (i < 2) {
      h += `<input data-f="to" aria-label="${t('responder')}" placeholder="${t('responder')}" value="${
        esc(a.grid ? t('grid') + ' ' + a.grid : '')}"><button data-act="dispatch">${t('dispatch')}</button>`;
    }
    if (i < 3) h += `<button data-act="on_scene">${t('on_scene')}</button>`;
    h += `<select data-f="outcome" aria-label="${t('o_pick')}" required><option value="" selected disabled>${
      t('o_pick')}</option>${OUTCOMES.map((o) => `<option value="${o}">${t('o_' + o)}</option>`).join('')}</select>
      <input data-f="note" aria-label="${t('note')}" placeholder="${t('note')}"><button data-act="resolve">${t('resolve')}</button>`;
    return `<div class="actions">${h}</div><p class="error"></p>`;
  }
  function outageMeta(/** @type {Alarm} */ a) { // one incident for many nodes gone silent together
    const shown = (a.nodes || []).slice(0, 30);
    const more = (a.count || 0) > shown.length ? ` …+${(a.count || 0) - shown.length}` : '';
    return `<div class="meta outage">${a.count} ${t('outage_nodes')} · ${t('outage_back')} ${a.nodes_back || 0}</div>
      <div class="meta members">${shown.map(esc).join(', ')}${more}</div>`;
  }
  function card(/** @type {Alarm} */ a) {
    const d = document.createElement('article');
    d.dataset.id = a.id; d.dataset.kind = a.kind; d.dataset.state = a.state; d.tabIndex = -1;
    d.className = `alarm s-${a.state} k-${(a.kind || '').split('.')[0]}${a.escalated ? ' escalated' : ''}`;
    // a repeated press is the same alarm: its count and the time of the latest press, never a second card
    const last = (a.count || 0) > 1 && a.last_press_at ? ` · ${t('last_press')} ${fmtTime(a.last_press_at)}` : '';
    // pressed again after someone took it on: the resident is still calling, the card says so loudly
    const again = a.state !== 'open' && a.last_press_at && a.acked_at && a.last_press_at > a.acked_at;
    if (again) d.classList.add('again');
    d.innerHTML = `<h3>${esc(kindLabel(a.kind || ''))}${a.escalated ? ` <span class="esc">${t('escalated')}</span>` : ''}${
        again ? ` <span class="esc again-badge">${t('pressed_again')}</span>` : ''}
        <span class="age" data-since="${esc(a.raised_at)}"></span></h3>
      ${a.kind === 'nodes.offline' ? outageMeta(a) : `<div class="meta"><a href="#/nodes/${encodeURIComponent(a.node || '')}">${
        esc(a.node)}</a> · ${t('place')}: ${esc(a.place || '–')} · ${t('grid')}: ${esc(a.grid || '–')}${
        (a.count || 0) > 1 ? ` · <span class="count">×${a.count}</span> ${t('count')}${last}` : ''}</div>`}
      <img alt="" loading="lazy" data-snap="${esc(a.id)}"${a.has_snapshot ? ` src="/api/events/${encodeURIComponent(a.id)}/snapshot.jpg"`
        : ' hidden'}>
      ${stageList(a)}${actions(a)}`;
    const img = /** @type {HTMLImageElement} */ (d.querySelector('img'));
    img.onerror = () => { img.hidden = true; };
    img.onload = () => { img.hidden = false; };
    d.querySelectorAll('[data-act]').forEach((b) => b.addEventListener('click',
      () => act(a, /** @type {HTMLElement} */ (b).dataset.act || '', d)));
    const said = refused.get(a.id);
    const error = d.querySelector('.error');
    if (said && error) error.textContent = said;
    decorate(d); // the responders on duty and each dispatch's steps (dispatch.js)
    return d;
  }
  function render() {
    const keep = new Set();
    let at = /** @type {ChildNode|null} */ (list.firstChild);
    const shown = S.alarms.slice(0, Math.max(drawn, PAGE));
    for (const a of shown) {
      const sig = [a.state, a.count, a.last_press_at, a.nodes_back, a.escalated, a.dispatched_to, a.has_snapshot, S.lang].join('|');
      let entry = cards.get(a.id);
      if (!entry || entry.sig !== sig) {
        const el = card(a);
        if (entry) { if (at === entry.el) at = el; entry.el.replaceWith(el); }
        entry = {el, sig}; cards.set(a.id, entry);
      }
      // the server's order; a card already in its place is not moved (moving 1,000 cards relaid the page)
      if (at === entry.el) at = entry.el.nextSibling; else list.insertBefore(entry.el, at);
      keep.add(a.id);
    }
    for (const [id, entry] of cards) if (!keep.has(id)) { entry.el.remove(); cards.delete(id); }
    // what is not drawn is counted, never hidden: how many below, and how many of them nobody has acknowledged
    const below = S.alarms.length - shown.length;
    const waiting = S.alarms.slice(shown.length).filter((/** @type {Alarm} */ a) => a.state === 'open').length;
    more.hidden = below <= 0;
    more.classList.toggle('waiting', waiting > 0);
    const fill = (/** @type {string} */ key, /** @type {Record<string, number|string>} */ v) =>
      t(key).replace(/\{(\w+)\}/g, (_, k) => String(v[k]));
    // as the tab's count says it: "1000+" when the hub holds more than the page asks for (those beyond come
    // after these in the queue's order: the hub lists the unacknowledged first)
    const total = S.alarms.length >= app.ALARM_LIMIT ? `${app.ALARM_LIMIT}+` : S.alarms.length;
    /** @type {HTMLElement} */ (more.querySelector('.q-text')).textContent = fill('q_shown',
      {n: shown.length, total}) + (waiting ? ' · ' + fill('q_below_open', {n: waiting}) : '');
    moreBtn.textContent = fill('q_more', {n: Math.min(PAGE, below)});
    list.dataset.total = String(S.alarms.length); list.dataset.drawn = String(shown.length);
    const count = document.getElementById('count');
    if (count) count.textContent = S.alarms.length >= app.ALARM_LIMIT ? `${app.ALARM_LIMIT}+` : String(S.alarms.length);
    /** @type {HTMLElement} */ (root.querySelector('#no-alarms')).hidden = S.alarms.length > 0;
    select(selected);
    tickAges();
  }
  function tickAges() {
    const now = Date.now();
    root.querySelectorAll('.age[data-since]').forEach((el) => {
      el.textContent = fmtDur((now - Date.parse(/** @type {HTMLElement} */ (el).dataset.since || '')) / 1000) + ' ' + t('ago');
    });
    const clock = document.getElementById('clock');
    if (clock) clock.textContent = fmtTime(new Date().toISOString(), true);
  }
  setInterval(tickAges, 1000);
  async function act(/** @type {Alarm} */ a, /** @type {string} */ action, /** @type {HTMLElement} */ el) {
    /** @type {Record<string, string>} */
    const body = {};
    const f = (/** @type {string} */ n) => /** @type {HTMLInputElement} */ (el.querySelector(`[data-f="${n}"]`));
    const error = /** @type {HTMLElement} */ (el.querySelector('.error'));
    if (action === 'dispatch') body.to = f('to').value || (a.grid ? `${t('grid')} ${a.grid}` : 'patrol');
    if (action === 'resolve') { // no default outcome: the operator says what happened
      if (!f('outcome').value) { error.textContent = t('need_outcome'); f('outcome').focus(); return; }
      body.outcome = f('outcome').value; if (f('note').value) body.note = f('note').value;
    }
    const r = await api(`/api/alarms/${encodeURIComponent(a.id)}/${action}`, {method: 'POST', body});
    if (r.ok) refused.delete(a.id); else refused.set(a.id, error.textContent = await app.failure(r));
    loadAlarms();
  }

  // --- keys for the night shift: only on this screen, never while typing in a field ------------------------
  function select(/** @type {number} */ i) {
    const els = [...list.children];
    selected = Math.max(0, Math.min(i, els.length - 1));
    els.forEach((el, n) => el.classList.toggle('selected', n === selected));
  }
  document.addEventListener('keydown', (e) => {
    if (root.hidden || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = /** @type {HTMLElement} */ (e.target);
    if (target.closest('input, select, textarea')) return;
    const els = /** @type {HTMLElement[]} */ ([...list.children]);
    const cur = els[selected];
    /** @type {Record<string, string>} */
    const keys = {a: 'ack', d: 'dispatch', o: 'on_scene'};
    if (e.key === 'j' || e.key === 'ArrowDown') {
      // past the last card drawn: the next ones are drawn first, so the keys reach the whole queue
      if (selected >= els.length - 1 && els.length < S.alarms.length) showMore();
      select(selected + 1); /** @type {HTMLElement|undefined} */ (list.children[selected])?.scrollIntoView({block: 'nearest'});
    }
    else if (e.key === 'k' || e.key === 'ArrowUp') { select(selected - 1); els[selected]?.scrollIntoView({block: 'nearest'}); }
    else if (cur && keys[e.key]) /** @type {HTMLElement|null} */ (cur.querySelector(`[data-act="${keys[e.key]}"]`))?.click();
    else if (cur && e.key === 'r') /** @type {HTMLElement|null} */ (cur.querySelector('[data-f="outcome"]'))?.focus();
    else if (e.key === '?') /** @type {HTMLElement} */ (root.querySelector('.hint')).classList.toggle('shown');
    else return;
    e.preventDefault();
  });

  on('alarms', (/** @type {{fresh: boolean, escalated: boolean, again: boolean}} */ d) => {
    render();
    if (d.escalated) beep(3, true); else if (d.fresh || d.again) beep(2);
  });
  on('lang', () => { for (const e of cards.values()) e.sig = ''; render(); });
  on('live', (/** @type {any} */ msg) => {
    if (msg.type !== 'snapshot') return;
    const img = /** @type {HTMLImageElement|null} */ (root.querySelector(`img[data-snap="${CSS.escape(msg.event_id)}"]`));
    if (img) img.src = `/api/events/${encodeURIComponent(msg.event_id)}/snapshot.jpg?t=${Date.now()}`;
    else app.scheduleAlarms(msg.event_id); // its card is not drawn yet: it comes with the picture
  });
  render();
}
