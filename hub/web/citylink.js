// @ts-check
// The header's city-networking badge (GB/T 28181, hub/gb28181, docs/gb28181.md): the hub's registration with
// the city platform, from /api/health's `gb28181` section (health.js polls it); hidden when the hub does not
// network with a city. A red badge is for the duty officer to tell the technicians: alarms still reach this
// console either way.

/** @type {{zh: Record<string, string>, en: Record<string, string>}} */
export const STRINGS = {
  zh: {gb_label: '市级联网', gb_registered: '已注册', gb_unregistered: '未注册', gb_refused: '上级平台拒绝（编号或密码）',
    gb_offline: '上级平台无响应'},
  en: {gb_label: 'City link', gb_registered: 'registered', gb_unregistered: 'not registered',
    gb_refused: 'refused by the city platform (ID or password)', gb_offline: 'city platform not answering'},
};

/** Adds the badge after the connection status and keeps it current. @param {any} app the console core */
export function init(app) {
  const badge = document.createElement('span');
  badge.id = 'gb-badge';
  badge.hidden = true;
  app.$('conn').after(badge);
  /** @type {{state: string, last_error?: string|null}|null} */
  let last = null;
  const draw = () => {
    badge.hidden = !last;
    if (!last) return;
    badge.textContent = `${app.t('gb_label')}: ${app.t('gb_' + last.state)}`;
    badge.className = last.state === 'registered' ? '' : 'down';
    badge.title = last.last_error || '';
  };
  app.on('health', (/** @type {any} */ body) => { last = body?.gb28181 ?? null; draw(); });
  app.on('lang', draw);
}
