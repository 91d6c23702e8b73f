// The operator's side of dispatch (issue 18), beside console.js: on each alarm card, the responders on duty
// for its grid nearest first (distance from their last fix, and its age), offer the task to one, several
// or a team, and each step of every dispatch as it happens (offered, accepted, declined with its reason,
// expired and re-offered, on scene with the distance to the pole, resolved, photos). A plain script: it
// reads console.js's `S` (language, alarms) and hears the live stream through the `pingan:live` event.
'use strict';
(() => {
  const TX = {
    zh: {
      open: '派人处置', close: '收起', none: '该网格当前无人值班', nearest: '派最近一位', chosen: '派给所选',
      team: '派整队', far: '米', fix: '定位', ago: '前', no_fix: '无定位', busy: '正在处置其他任务',
      asked: '已派', d_offered: '待接受', d_accepted: '已接受', d_declined: '已拒绝', d_expired: '超时未接受',
      d_on_scene: '已到场', d_resolved: '已完成', d_withdrawn: '已撤回', reason: '原因', photos: '张照片', from_pole: '距报警柱',
      f_reoffered: '未被接受，已转派下一位最近的人员', f_nobody: '无人接受，请另行安排', failed: '操作失败',
      pick: '请先选择人员', by_auto: '自动', rep: '处置人员', rep_team: '队伍', rep_who: '人员', offers: '派单',
      accepted: '接受', declines: '拒绝', expired: '超时', nobody: '无人接受', t_accept: '接受用时',
      t_scene: '到场用时', t_resolve: '处置用时', p50: '中位数', p90: '90% 分位',
    },
    en: {
      open: 'Dispatch responders', close: 'Close', none: 'Nobody on duty for this grid', nearest: 'Send the nearest',
      chosen: 'Send selected', team: 'Send team', far: 'm', fix: 'fix', ago: 'ago', no_fix: 'no fix',
      busy: 'busy with another task', asked: 'asked', d_offered: 'offered', d_accepted: 'accepted',
      d_declined: 'declined', d_expired: 'not accepted in time', d_on_scene: 'on scene', d_resolved: 'resolved', d_withdrawn: 'withdrawn',
      reason: 'reason', photos: 'photos', from_pole: 'from the pole',
      f_reoffered: 'Not accepted: offered to the next nearest', f_nobody: 'Nobody accepted: arrange someone else',
      failed: 'Failed', pick: 'Pick someone first', by_auto: 'auto', rep: 'Responders', rep_team: 'Team',
      rep_who: 'Responder', offers: 'Offers', accepted: 'Accepted', declines: 'Declines', expired: 'Not accepted in time',
      nobody: 'Nobody accepted', t_accept: 'To accept', t_scene: 'To on scene', t_resolve: 'To resolve', p50: 'p50',
      p90: 'p90',
    },
  };
  const lang = () => (typeof S !== 'undefined' && S.lang === 'en' ? 'en' : 'zh');
  const tx = (k) => TX[lang()][k] || k;
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
  const D = {rows: new Map(), flags: new Map(), open: new Set()}; // per alarm id
  const css = document.createElement('link');
  css.rel = 'stylesheet'; css.href = '/static/dispatch.css'; document.head.appendChild(css);

  const age = (s) => (s == null ? '' : s < 90 ? `${s}s` : s < 5400 ? `${Math.round(s / 60)}min` : `${Math.round(s / 3600)}h`);
  const hhmm = (iso) => (iso ? new Date(iso).toLocaleTimeString(lang() === 'zh' ? 'zh-CN' : 'en-GB', {hour12: false}) : '');
  async function call(path, body) {
    const r = await fetch(path, {method: body ? 'POST' : 'GET', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json'}, body: body ? JSON.stringify(body) : undefined});
    if (!r.ok) { const j = await r.json().catch(() => ({})); throw new Error(j.detail || String(r.status)); }
    return r.json();
  }

  function statusHtml(id) {
    const rows = D.rows.get(id) || [];
    const flag = D.flags.get(id);
    let h = flag ? `<p class="d-flag">${esc(tx(flag.startsWith('nobody') ? 'f_nobody' : 'f_reoffered'))}</p>` : '';
    h += rows.map((d) => {
      const when = d[`${d.state}_at`] || d.expired_at || d.declined_at || d.offered_at;
      let extra = d.state === 'declined' && d.reason ? ` · ${tx('reason')}: ${esc(d.reason)}` : '';
      if (d.scene_distance_m != null) extra += ` · ${tx('from_pole')} ${esc(d.scene_distance_m)} ${tx('far')}`;
      return `<li data-responder="${esc(d.responder)}" data-dstate="${esc(d.state)}"><b>${esc(d.name || d.responder)}</b>
        <span class="d-st d-${esc(d.state)}">${esc(tx('d_' + d.state))}</span> ${esc(hhmm(when))}${
        d.by === 'auto' ? ` (${tx('by_auto')})` : ''}${extra}</li>`;
    }).join('');
    return `<ul class="d-status">${h}</ul>`;
  }
  function pickerHtml(people) {
    if (!people.length) return `<p class="d-none">${tx('none')}</p>`;
    const teams = [...new Set(people.map((p) => p.team))];
    return `<ul class="d-people">${people.map((p) => `<li><label><input type="checkbox" value="${esc(p.username)}"${
      p.busy || p.asked ? ' disabled' : ''}> <b>${esc(p.name)}</b> · ${p.distance_m != null
      ? `${esc(p.distance_m)} ${tx('far')}` : tx('no_fix')}${p.fix_age_s != null ? ` · ${tx('fix')} ${age(p.fix_age_s)} ${tx('ago')}` : ''}${
      p.busy ? ` · ${tx('busy')}` : ''}${p.asked ? ` · ${tx('asked')}` : ''}</label></li>`).join('')}</ul>
      <div class="d-acts"><button data-d="nearest">${tx('nearest')}</button><button data-d="chosen">${tx('chosen')}</button>${
      teams.map((t) => `<button data-d="team" data-team="${esc(t)}">${tx('team')} ${esc(t)}</button>`).join('')}</div>`;
  }

  function render(card) {
    const id = card.dataset.id;
    let panel = card.querySelector('.d-panel');
    if (!panel) {
      panel = document.createElement('div');
      panel.className = 'd-panel';
      panel.innerHTML = `<button class="d-open" data-d="toggle"></button><div class="d-pick"></div><div class="d-rows"></div>
        <p class="d-error error"></p>`;
      panel.addEventListener('click', (e) => { const b = e.target.closest('[data-d]'); if (b) act(card, b); });
      card.appendChild(panel);
    }
    panel.querySelector('.d-open').textContent = tx(D.open.has(id) ? 'close' : 'open');
    panel.querySelector('.d-rows').innerHTML = statusHtml(id);
  }
  async function loadPicker(card) {
    const id = card.dataset.id;
    const pick = card.querySelector('.d-pick');
    if (!D.open.has(id)) { pick.innerHTML = ''; return; }
    try { pick.innerHTML = pickerHtml(await call(`/api/alarms/${encodeURIComponent(id)}/responders`)); } catch (e) {
      card.querySelector('.d-error').textContent = `${tx('failed')}: ${e.message}`;
    }
  }
  async function act(card, b) {
    const id = card.dataset.id;
    const err = card.querySelector('.d-error'); err.textContent = '';
    if (b.dataset.d === 'toggle') {
      if (D.open.has(id)) D.open.delete(id); else D.open.add(id);
      render(card); loadPicker(card); return;
    }
    let body;
    if (b.dataset.d === 'nearest') body = {nearest: 1};
    if (b.dataset.d === 'team') body = {team: b.dataset.team};
    if (b.dataset.d === 'chosen') {
      const to = [...card.querySelectorAll('.d-people input:checked')].map((i) => i.value);
      if (!to.length) { err.textContent = tx('pick'); return; }
      body = {to};
    }
    try { await call(`/api/alarms/${encodeURIComponent(id)}/dispatches`, body); } catch (e) {
      err.textContent = `${tx('failed')}: ${e.message}`; return;
    }
    D.open.delete(id);
    const c = document.querySelector(`article.alarm[data-id="${CSS.escape(id)}"]`);
    if (c) { render(c); loadPicker(c); }
  }

  async function attach(card) {
    card.dataset.disp = '1';
    const id = card.dataset.id;
    if (card.dataset.kind === 'nodes.offline') return;
    render(card);
    if (D.open.has(id)) loadPicker(card);
    if (!D.rows.has(id)) {
      try { D.rows.set(id, await call(`/api/alarms/${encodeURIComponent(id)}/dispatches`)); } catch { return; }
      const c = document.querySelector(`article.alarm[data-id="${CSS.escape(id)}"]`);
      if (c) render(c);
    }
  }
  window.addEventListener('pingan:live', (e) => {
    const msg = e.detail;
    if (!msg || msg.type !== 'dispatch') return;
    D.rows.set(msg.alarm_id, msg.dispatches || []);
    if (msg.flag) D.flags.set(msg.alarm_id, msg.flag);
    else if ((msg.dispatches || []).some((d) => ['accepted', 'on_scene', 'resolved'].includes(d.state))) D.flags.delete(msg.alarm_id);
    const card = document.querySelector(`article.alarm[data-id="${CSS.escape(msg.alarm_id)}"]`);
    if (card) { render(card); if (D.open.has(msg.alarm_id)) loadPicker(card); }
  });
  // the Reports tab: per team and per responder, under the console's own report (same period)
  const dur = (s) => (s == null ? '–' : s < 90 ? `${Math.round(s)}s` : `${(s / 60).toFixed(1)}min`);
  function repTable(first, rows, key) {
    const head = [first, tx('offers'), tx('accepted'), tx('declines'), tx('expired'), tx('nobody'),
      `${tx('t_accept')} ${tx('p50')}/${tx('p90')}`, `${tx('t_scene')} ${tx('p50')}/${tx('p90')}`,
      `${tx('t_resolve')} ${tx('p50')}/${tx('p90')}`];
    return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${[
      key(r), r.offers, r.accepted, r.declines, r.expired, r.nobody_accepted,
      `${dur(r.accept_p50_s)} / ${dur(r.accept_p90_s)}`, `${dur(r.on_scene_p50_s)} / ${dur(r.on_scene_p90_s)}`,
      `${dur(r.resolve_p50_s)} / ${dur(r.resolve_p90_s)}`].map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
  }
  const report = document.getElementById('report');
  let loading = false;
  if (report) {
    new MutationObserver(async () => {
      if (loading || report.querySelector('#report-responders') || !report.children.length) return;
      loading = true;
      try {
        const q = typeof reportQuery === 'function' ? reportQuery() : 'period=week';
        const R = await call('/api/reports/responders?' + q);
        const sec = document.createElement('section');
        sec.id = 'report-responders';
        sec.innerHTML = `<h2>${tx('rep')}</h2>${repTable(tx('rep_team'), R.teams, (r) => r.team)}
          ${repTable(tx('rep_who'), R.responders, (r) => `${r.name} (${r.responder})`)}`;
        if (!report.querySelector('#report-responders')) report.appendChild(sec);
      } catch { /* the console's own report stands; this part is extra */ } finally { loading = false; }
    }).observe(report, {childList: true});
  }
  const root = document.getElementById('alarms');
  if (root) {
    new MutationObserver(() => {
      root.querySelectorAll('article.alarm:not([data-disp])').forEach(attach);
    }).observe(root, {childList: true});
  }
})();
