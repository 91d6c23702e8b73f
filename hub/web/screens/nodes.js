// @ts-check
// The fleet and each node's page: health (online, last heartbeat, outbox depth, disk, temperature, version,
// config in effect), the last 48 hours (heartbeats, restarts, temperature, outbox per hour), recent events,
// config pushes (validated by the hub; a line diff against the config last
// applied; sent → accepted → applied / rolled back) and the live view.

export const name = 'nodes';
export const LANG = 'remount'; // drawn again in the other language (app.js)
export const STRINGS = {
  zh: {
    tab_nodes: '设备', n_id: '设备', n_kind: '类型', n_state: '状态', n_last: '最近心跳', n_version: '版本',
    n_outbox: '待发事件', n_disk: '磁盘剩余', n_temp: '温度', n_health: '运行状况', n_events: '最近事件',
    n_config: '配置下发', n_config_hint: '粘贴完整的节点配置（YAML），中心先校验再签名下发', n_push: '校验并下发',
    n_pushed: '已下发，等待设备确认', n_diff: '与上次生效配置的差异', n_no_diff: '与上次生效配置相同',
    n_updates: '下发记录', n_issued: '下发时间', n_operator: '操作员', n_reason: '原因', n_none: '无',
    n_unknown: '没有这个设备', n_filter: '筛选设备', n_back: '返回设备列表', n_in_effect: '当前生效配置',
    c_sent: '已发送', c_accepted: '已接受', c_applied: '已生效', c_rolled_back: '已回滚', c_refused: '被拒绝',
    c_expired: '已过期', st_online: '在线', st_offline: '离线', st_unknown: '未知', n_place: '位置',
    n_time: '时间', n_kind_ev: '事件', n_live: '实时画面', k_node_online: '设备上线', st_removed: '已移除',
    n_add: '新增设备', n_add_go: '新增并下载安装包', n_broker: '设备连接的 MQTT 地址（mqtts://主机:8883）',
    n_block_key: '楼栋密钥（仅门禁）', n_lat: '纬度', n_lon: '经度', n_added: '已新增，安装包已下载。',
    n_broker_note: '请在代理服务器上运行 pingan-hub broker config --out DIR --reload 使其生效', n_remove: '移除设备',
    n_confirm_remove: '确定移除该设备？它将无法再连接中心。', n_removed: '已移除。', kind_alarm_post: '报警杆',
    kind_rental_door: '出租屋门禁', n_auth: 'MQTT 登录方式', n_auth_password: '密码登录', n_auth_cert: '客户端证书登录',
    n_wiring: '接线图（当前生效配置）',
    n_no_wiring: '中心只知道经中心下发并已生效的配置；请在设备上运行 pingan-edge wiring 查看接线图',
    n_trend: '最近 48 小时', n_trend_heard: '收到心跳的小时', n_trend_restarts: '重启', n_trend_hottest: '最高温度',
    n_trend_outbox: '待发事件峰值', n_trend_table: '逐小时明细', n_trend_hour: '小时', n_trend_hb: '心跳数',
    n_trend_gap: '这一小时没有收到心跳', n_trend_restarted: '这一小时内重启过', n_trend_fps: '最低帧率',
    n_trend_none: '还没有心跳记录',
  },
  en: {
    tab_nodes: 'Nodes', n_id: 'Node', n_kind: 'Kind', n_state: 'State', n_last: 'Last heartbeat', n_version: 'Version',
    n_outbox: 'Outbox', n_disk: 'Disk free', n_temp: 'Temperature', n_health: 'Health', n_events: 'Recent events',
    n_config: 'Config push', n_config_hint: 'Paste the whole node config (YAML); the hub validates it, then signs and sends it',
    n_push: 'Validate and send', n_pushed: 'Sent; waiting for the node', n_diff: 'Difference from the config last applied',
    n_no_diff: 'Same as the config last applied', n_updates: 'Pushes', n_issued: 'Issued', n_operator: 'Operator',
    n_reason: 'Reason', n_none: 'none', n_unknown: 'No such node', n_filter: 'Filter nodes', n_back: 'Back to the nodes',
    n_in_effect: 'Config in effect', c_sent: 'sent', c_accepted: 'accepted', c_applied: 'applied',
    c_rolled_back: 'rolled back', c_refused: 'refused', c_expired: 'expired', st_online: 'online', st_offline: 'offline',
    st_unknown: 'unknown', n_place: 'Place', n_time: 'Time', n_kind_ev: 'Event', n_live: 'Live view',
    k_node_online: 'Node online', st_removed: 'removed', n_add: 'Add a node', n_add_go: 'Add and download its bundle',
    n_broker: 'MQTT address the node dials (mqtts://HOST:8883)', n_block_key: 'Block key (doors only)',
    n_lat: 'Latitude', n_lon: 'Longitude', n_added: 'Added; its bundle was downloaded.',
    n_broker_note: 'Run pingan-hub broker config --out DIR --reload on the broker so it takes effect',
    n_remove: 'Remove node', n_confirm_remove: 'Remove this node? It will no longer be able to connect.',
    n_removed: 'Removed.', kind_alarm_post: 'alarm pole', kind_rental_door: 'rental door', n_auth: 'MQTT login',
    n_auth_password: 'password', n_auth_cert: 'client certificate',
    n_wiring: 'Wiring (the config in effect)',
    n_no_wiring: 'The hub knows only configs it pushed and the node applied; run pingan-edge wiring on the node to see its wiring',
    n_trend: 'Last 48 hours', n_trend_heard: 'Hours with heartbeats', n_trend_restarts: 'Restarts',
    n_trend_hottest: 'Hottest', n_trend_outbox: 'Outbox peak', n_trend_table: 'Hour by hour', n_trend_hour: 'Hour',
    n_trend_hb: 'Heartbeats', n_trend_gap: 'No heartbeat this hour', n_trend_restarted: 'Restarted this hour',
    n_trend_fps: 'Lowest frame rate', n_trend_none: 'No heartbeats recorded yet',
  },
};

/** A line diff (longest common subsequence): [' '|'-'|'+', line][]; a node config is a few hundred lines. */
export function diffLines(/** @type {string} */ a, /** @type {string} */ b) {
  const x = a.split('\n'); const y = b.split('\n');
  const n = x.length; const m = y.length;
  const L = Array.from({length: n + 1}, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) {
    L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  }
  /** @type {[string, string][]} */
  const out = []; let i = 0; let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push([' ', x[i]]); i++; j++; } else if (L[i + 1][j] >= L[i][j + 1]) out.push(['-', x[i++]]);
    else out.push(['+', y[j++]]);
  }
  while (i < n) out.push(['-', x[i++]]);
  while (j < m) out.push(['+', y[j++]]);
  return out;
}

/** @param {HTMLElement} root @param {any} app */
export function mount(root, app) {
  const {S, t, esc, api, fmtTime, kindLabel, on, health} = app;
  let current = '';
  let unknown = false;
  /** @type {any[]} */ let updates = [];
  const field = (/** @type {string} */ n, /** @type {string} */ label, extra = '') =>
    `<input name="${n}" aria-label="${t(label)}" placeholder="${t(label)}" ${extra}>`;
  root.innerHTML = `<div id="fleet"><input id="fleet-filter" type="search" aria-label="${t('n_filter')}"
      data-i18n-ph="n_filter" placeholder="${t('n_filter')}">
    ${app.isRole('installer', 'admin') ? `<details id="node-add-box"><summary>${t('n_add')}</summary>
      <form id="node-add" class="filters">${field('id', 'n_id', 'required size="12"')}
        <select name="kind" aria-label="${t('n_kind')}"><option value="alarm_post">${t('kind_alarm_post')}</option>
          <option value="rental_door">${t('kind_rental_door')}</option></select>
        ${field('grid', 'grid', 'size="6"')}${field('place', 'n_place')}${field('lat', 'n_lat', 'size="9" inputmode="decimal"')}
        ${field('lon', 'n_lon', 'size="9" inputmode="decimal"')}${field('broker_url', 'n_broker', 'required size="34" value="mqtts://"')}
        ${field('block_key', 'n_block_key', 'type="password" autocomplete="off"')}
        <select name="auth" aria-label="${t('n_auth')}"><option value="password">${t('n_auth_password')}</option>
          <option value="cert">${t('n_auth_cert')}</option></select>
        <button type="submit" class="primary">${t('n_add_go')}</button></form>
      <p id="node-add-msg" class="error" role="alert"></p></details>` : ''}
    <div id="fleet-list"></div></div><div id="node-page" hidden></div>`;
  const addForm = /** @type {HTMLFormElement|null} */ (root.querySelector('#node-add'));
  addForm?.addEventListener('submit', async (e) => {
    e.preventDefault();
    const msg = /** @type {HTMLElement} */ (root.querySelector('#node-add-msg'));
    /** @type {Record<string, any>} */
    const body = Object.fromEntries([...new FormData(addForm)].filter(([, v]) => v !== ''));
    for (const k of ['lat', 'lon']) if (k in body) body[k] = Number(body[k]);
    const r = await api('/api/nodes', {method: 'POST', body});
    if (!r.ok) { msg.textContent = await app.failure(r); return; }
    const a = document.createElement('a'); // the bundle holds the node's secrets: saved once, kept nowhere else
    a.href = URL.createObjectURL(await r.blob()); a.download = `${body.id}.bundle.tar.gz`;
    document.body.appendChild(a); a.click(); a.remove(); setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    msg.textContent = `${body.id}: ${t('n_added')} ${t('n_broker_note')}`;
    addForm.reset(); app.loadNodes();
  });
  const fleet = /** @type {HTMLElement} */ (root.querySelector('#fleet'));
  const page = /** @type {HTMLElement} */ (root.querySelector('#node-page'));
  const filter = /** @type {HTMLInputElement} */ (root.querySelector('#fleet-filter'));
  filter.addEventListener('input', renderFleet);
  const hb = (/** @type {any} */ n) => n.heartbeat || {};
  function renderFleet() {
    if (fleet.hidden) return;
    const q = filter.value.trim().toLowerCase();
    const rows = S.nodes.filter((/** @type {any} */ n) => !q || `${n.id} ${n.place} ${n.grid}`.toLowerCase().includes(q))
      .slice(0, 500);
    /** @type {HTMLElement} */ (root.querySelector('#fleet-list')).innerHTML = `<table class="fleet"><tr>${
      ['n_id', 'n_kind', 'grid', 'n_place', 'n_state', 'n_last', 'n_version'].map((k) => `<th scope="col">${t(k)}</th>`).join('')}</tr>${
      rows.map((/** @type {any} */ n) => `<tr data-node="${esc(n.id)}" data-health="${health(n)}"><td><a href="#/nodes/${
        encodeURIComponent(n.id)}">${esc(n.id)}</a></td><td>${esc(n.kind)}</td><td>${esc(n.grid || '–')}</td><td>${
        esc(n.place)}</td><td><i class="dot ${health(n) === 'alarm' ? 'alarm-c' : health(n)}"></i>${t('st_' + (n.state || 'unknown'))}</td><td>${
        fmtTime(n.last_seen, true)}</td><td>${esc(n.version || '–')}</td></tr>`).join('')}</table>`;
  }
  function lastApplied() {
    const u = updates.find((x) => x.state === 'applied');
    return u ? u.yaml || '' : '';
  }
  async function renderNode(/** @type {string} */ id) {
    const n = S.nodes.find((/** @type {any} */ x) => x.id === id);
    unknown = !n;  // a deep link or a reload: the list may not be here yet, so look again when it comes
    if (!n) { page.innerHTML = `<p class="error">${t('n_unknown')}: ${esc(id)}</p><a href="#/nodes">${t('n_back')}</a>`; return; }
    const h = hb(n);
    const cfgOk = app.isRole('installer', 'admin');
    page.innerHTML = `<p><a href="#/nodes">${t('n_back')}</a></p>
      <h2 id="node-title" data-node="${esc(n.id)}">${esc(n.id)} <small>${esc(n.place)} · ${t('grid')} ${esc(n.grid || '–')}</small>
        ${n.kind !== 'rental_door' ? `<button data-act="live" data-node="${esc(n.id)}">${t('n_live')}</button>` : ''}</h2>
      <h3>${t('n_health')}</h3>
      <dl class="health" id="node-health">
        <dt>${t('n_state')}</dt><dd data-f="state" data-health="${health(n)}">${t('st_' + (n.state || 'unknown'))}</dd>
        <dt>${t('n_last')}</dt><dd>${fmtTime(n.last_seen, true) || '–'}</dd>
        <dt>${t('n_outbox')}</dt><dd data-f="outbox">${esc(h.outbox_depth ?? '–')}</dd>
        <dt>${t('n_disk')}</dt><dd>${h.disk_free_bytes != null ? `${(h.disk_free_bytes / 2 ** 30).toFixed(1)} GiB` : '–'}</dd>
        <dt>${t('n_temp')}</dt><dd>${h.cpu_temp_c != null ? `${Number(h.cpu_temp_c).toFixed(1)} °C` : '–'}</dd>
        <dt>${t('n_version')}</dt><dd>${esc(n.version || h.version || '–')}</dd>
        <dt>${t('n_in_effect')}</dt><dd><code id="node-config-sha">–</code></dd>
      </dl>
      <h3>${t('n_trend')}</h3><div id="node-trend" class="trend"></div>
      ${cfgOk && n.state !== 'removed' ? `<p><button id="node-remove">${t('n_remove')}</button>
        <span id="node-remove-msg" role="status"></span></p>` : ''}
      <h3>${t('n_events')}</h3><div id="node-events"></div>
      ${cfgOk ? `<h3>${t('n_config')}</h3><p class="hint">${t('n_config_hint')}</p>
        <textarea id="config-yaml" rows="12" cols="80" spellcheck="false" aria-label="${t('n_config')}"></textarea>
        <div id="config-diff" class="diff"></div>
        <p><button id="config-push" class="primary">${t('n_push')}</button></p><p id="config-error" class="error" role="alert"></p>
        <h3>${t('n_updates')}</h3><div id="config-updates"></div>
        <h3>${t('n_wiring')}</h3><div id="node-wiring" class="wiring"></div>` : ''}`;
    loadTrend(id);
    const ev = await api(`/api/events?node=${encodeURIComponent(id)}&limit=20`);
    if (ev.ok && current === id) {
      const list = await ev.json();
      /** @type {HTMLElement} */ (page.querySelector('#node-events')).innerHTML = `<table><tr><th scope="col">${t('n_time')}</th>
        <th scope="col">${t('n_kind_ev')}</th></tr>${list.map((/** @type {any} */ e) => `<tr><td>${fmtTime(e.received_at || e.node_ts, true)}</td><td>${
          esc(kindLabel(e.kind))}</td></tr>`).join('')}</table>`;
    }
    if (!cfgOk) return;
    page.querySelector('#node-remove')?.addEventListener('click', async () => {
      if (!confirm(t('n_confirm_remove'))) return;
      const r = await api(`/api/nodes/${encodeURIComponent(id)}`, {method: 'DELETE'});
      const out = /** @type {HTMLElement} */ (page.querySelector('#node-remove-msg'));
      out.textContent = r.ok ? `${t('n_removed')} ${t('n_broker_note')}` : await app.failure(r);
      if (r.ok) app.loadNodes();
    });
    const yaml = /** @type {HTMLTextAreaElement} */ (page.querySelector('#config-yaml'));
    await loadUpdates(id);
    if (!yaml.value) yaml.value = lastApplied();
    yaml.addEventListener('input', showDiff);
    /** @type {HTMLElement} */ (page.querySelector('#config-push')).addEventListener('click', () => push(id, yaml.value));
  }
  /** The node's last 48 hours, one bar per hour (hub/nodes/health.py): an empty hour is one the hub heard
   * nothing from it; the table under the bars says the same in words. */
  async function loadTrend(/** @type {string} */ id) {
    const HOURS = 48;
    const r = await api(`/api/nodes/${encodeURIComponent(id)}/health?hours=${HOURS}`);
    const box = /** @type {HTMLElement|null} */ (page.querySelector('#node-trend'));
    if (current !== id || !box) return;
    if (!r.ok) { box.innerHTML = `<p class="error">${esc(await app.failure(r))}</p>`; return; }
    const h = await r.json();
    /** @type {Map<number, any>} */ const byHour = new Map(h.rows.map((/** @type {any} */ x) => [Date.parse(x.hour), x]));
    const start = Date.parse(h.since);
    const hours = Array.from({length: h.hours}, (_, i) => start + i * 3600e3);
    if (!h.rows.length) { box.innerHTML = `<p class="hint">${t('n_trend_none')}</p>`; return; }
    const most = Math.max(1, ...h.rows.map((/** @type {any} */ x) => x.heartbeats));
    const temps = h.rows.map((/** @type {any} */ x) => x.cpu_temp_max).filter((/** @type {any} */ v) => v != null);
    const summary = [
      `${t('n_trend_heard')} ${h.rows.length}/${h.hours}`,
      `${t('n_trend_restarts')} ${h.rows.filter((/** @type {any} */ x) => x.restarted).length}`,
      temps.length ? `${t('n_trend_hottest')} ${Math.max(...temps).toFixed(1)} °C` : '',
      `${t('n_trend_outbox')} ${Math.max(...h.rows.map((/** @type {any} */ x) => x.outbox_max))}`,
    ].filter(Boolean).join(' · ');
    const W = 10, TALL = 36;
    const bars = hours.map((at, i) => {
      const x = byHour.get(at);
      const label = `${fmtTime(new Date(at).toISOString(), true)}: ${x ? `${t('n_trend_hb')} ${x.heartbeats}${
        x.restarted ? ` · ${t('n_trend_restarted')}` : ''}` : t('n_trend_gap')}`;
      if (!x) return `<rect class="gap" x="${i * W}" y="${TALL - 3}" width="${W - 2}" height="3"><title>${esc(label)}</title></rect>`;
      const tall = Math.max(2, Math.round(TALL * x.heartbeats / most));
      return `<rect class="${x.restarted ? 'restart' : 'ok'}" x="${i * W}" y="${TALL - tall}" width="${W - 2}" height="${
        tall}"><title>${esc(label)}</title></rect>`;
    }).join('');
    const cell = (/** @type {any} */ v, digits = 0) => v == null ? '–' : Number(v).toFixed(digits);
    box.innerHTML = `<p id="node-trend-summary">${esc(summary)}</p>
      <svg role="img" aria-label="${esc(summary)}" viewBox="0 0 ${hours.length * W} ${TALL}" width="${hours.length * W}"
        height="${TALL}">${bars}</svg>
      <details><summary>${t('n_trend_table')}</summary><table id="node-trend-table"><tr><th scope="col">${t('n_trend_hour')}</th>
        <th scope="col">${t('n_trend_hb')}</th><th scope="col">${t('n_trend_restarts')}</th><th scope="col">${t('n_temp')}</th>
        <th scope="col">${t('n_outbox')}</th><th scope="col">${t('n_trend_fps')}</th></tr>${h.rows.map((/** @type {any} */ x) =>
        `<tr data-hour="${esc(x.hour)}"><td>${fmtTime(x.hour, true)}</td><td>${x.heartbeats}</td><td>${x.restarted ? '✓' : ''}</td><td>${
          cell(x.cpu_temp_max, 1)}</td><td>${x.outbox_max}</td><td>${cell(x.fps_min, 1)}</td></tr>`).join('')}</table></details>`;
  }
  function showDiff() {
    const yaml = /** @type {HTMLTextAreaElement|null} */ (page.querySelector('#config-yaml'));
    const out = /** @type {HTMLElement|null} */ (page.querySelector('#config-diff'));
    if (!yaml || !out) return;
    const base = lastApplied();
    const d = diffLines(base, yaml.value).filter(([op]) => op !== ' ');
    out.innerHTML = !base || !yaml.value ? '' : `<b>${t('n_diff')}</b>${d.length ? `<pre>${d.map(([op, l]) =>
      `<span class="${op === '+' ? 'add' : 'del'}">${op} ${esc(l)}</span>`).join('\n')}</pre>` : ` ${t('n_no_diff')}`}`;
  }
  async function loadUpdates(/** @type {string} */ id) {
    const r = await api(`/api/nodes/${encodeURIComponent(id)}/config/updates?limit=20`);
    if (!r.ok || current !== id) return;
    updates = await r.json();
    const box = page.querySelector('#config-updates');
    if (box) box.innerHTML = `<table id="config-updates-table"><tr><th scope="col">${t('n_issued')}</th><th scope="col">${
      t('n_operator')}</th><th scope="col">${t('n_state')}</th><th scope="col">${t('n_reason')}</th></tr>${updates.map((u) =>
      `<tr data-command="${esc(u.command_id)}" data-state="${esc(u.state)}"><td>${fmtTime(u.issued_at, true)}</td><td>${
        esc(u.operator)}</td><td>${t('c_' + u.state)}</td><td>${esc(u.reason || '')}</td></tr>`).join('')}</table>`;
    const sha = page.querySelector('#node-config-sha');
    if (sha) sha.textContent = (updates.find((u) => u.state === 'applied') || {}).sha256?.slice(0, 12) || '–';
    showDiff();
    showWiring(id);
  }
  /** The Pi header of the config in effect (edge/shared/wiring.py draws it at the hub; labels escaped there). */
  async function showWiring(/** @type {string} */ id) {
    const box = /** @type {HTMLElement|null} */ (page.querySelector('#node-wiring'));
    if (!box) return;
    if (!lastApplied()) { box.innerHTML = `<p class="hint">${t('n_no_wiring')}</p>`; return; }
    // the updates reload on every live event of this node; the picture changes only with the config in effect
    const applied = (updates.find((u) => u.state === 'applied') || {}).command_id;
    if (box.dataset.command === applied) return;
    const r = await api(`/api/nodes/${encodeURIComponent(id)}/wiring.svg`);
    if (current !== id) return;
    box.dataset.command = r.ok ? applied : '';
    if (!r.ok) { box.innerHTML = `<p class="error">${esc(await app.failure(r))}</p>`; return; }
    box.innerHTML = await r.text();
  }
  async function push(/** @type {string} */ id, /** @type {string} */ yaml) {
    const err = /** @type {HTMLElement} */ (page.querySelector('#config-error'));
    err.textContent = '';
    const r = await api(`/api/nodes/${encodeURIComponent(id)}/config`, {method: 'POST', body: {yaml}});
    if (!r.ok) { err.textContent = await app.failure(r); return; }
    err.textContent = t('n_pushed');
    loadUpdates(id);
  }
  on('nodes', () => { renderFleet(); if (current && unknown) renderNode(current); });
  on('live', (/** @type {any} */ msg) => {
    if (current && ((msg.type === 'reply' && msg.node === current) || (msg.type === 'event' && msg.event?.node === current))) {
      loadUpdates(current);
    }
  });
  function show(/** @type {string} */ id) {
    current = id;
    fleet.hidden = !!id; page.hidden = !id;
    if (id) renderNode(id); else renderFleet();
  }
  return {show};
}
