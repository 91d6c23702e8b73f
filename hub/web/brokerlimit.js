// @ts-check
// The header's broker warning: shown only when the broker on the hub's box may open fewer files than the
// registered nodes need (/api/health's `broker` section, hub/nodes/broker_headroom.py). mosquitto holds a file
// per connected node and refuses the ones past its limit without a word in its log, so those poles and
// doors would just stay offline; the badge tells the duty officer to call the technicians before that.

/** @type {{zh: Record<string, string>, en: Record<string, string>}} */
export const STRINGS = {
  zh: {broker_limit: '代理服务器文件数上限不足：{limit} < {needed}（{nodes} 个节点），超出的节点无法连接',
    broker_limit_fix: '请技术人员调高 mosquitto 的 LimitNOFILE（如 65536）并重启，见 docs/scale.md'},
  en: {broker_limit: 'Broker file limit too low: {limit} < {needed} ({nodes} nodes); nodes past it cannot connect',
    broker_limit_fix: 'Technicians: raise mosquitto\'s LimitNOFILE (e.g. 65536) and restart it; see docs/scale.md'},
};

/** Adds the (normally hidden) badge after the connection status. @param {any} app the console core */
export function init(app) {
  const badge = document.createElement('span');
  badge.id = 'broker-badge';
  badge.className = 'down';
  badge.hidden = true;
  app.$('conn').after(badge);
  /** @type {{open_files_limit: number, nodes: number, needed: number, enough: boolean}|null} */
  let last = null;
  const draw = () => {
    badge.hidden = !last || last.enough;
    if (!last || last.enough) return;
    const fill = (/** @type {string} */ s) => s.replace('{limit}', String(last?.open_files_limit))
      .replace('{needed}', String(last?.needed)).replace('{nodes}', String(last?.nodes));
    badge.textContent = fill(app.t('broker_limit'));
    badge.title = app.t('broker_limit_fix');
  };
  app.on('health', (/** @type {any} */ body) => { last = body?.broker ?? null; draw(); });
  app.on('lang', draw);
}
