// @ts-check
// One poll of /api/health for the header's badges (citylink.js, brokerlimit.js): each listens to
// app.on('health', body) and draws its own section; body is null while the hub cannot be reached (the
// connection banner already says so).

const EVERY_MS = 15000;

/** Starts polling. @param {any} app the console core */
export function init(app) {
  const poll = async () => {
    /** @type {any} */
    let body = null;
    try {
      const r = await fetch('/api/health', {credentials: 'same-origin'});
      if (r.ok) body = await r.json();
    } catch { /* unreachable: the badges keep their last state */ return; }
    app.emit('health', body);
  };
  poll();
  setInterval(poll, EVERY_MS);
}
