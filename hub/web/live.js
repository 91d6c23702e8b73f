// @ts-check
// Live view and talk-back in the console (docs/live-view.md): the browser's own WebRTC, signalled
// through the hub's API (the hub carries the offer to the pole as a signed command). A panel, not a
// screen: init(app) wires it to the alarm cards (a Live button each) and the node page.

export const STRINGS = {
  zh: {
    lv_live: '实时画面', lv_talk: '对讲', lv_ptt: '按住说话', lv_open: '开放通话', lv_close: '关闭',
    lv_connecting: '连接中…', lv_playing: '直播中', lv_failed: '无法打开实时画面', lv_ended: '实时画面已结束',
    lv_talking: '对讲中：现场可听到中心', lv_mic: '无法使用麦克风', lv_offline: '设备不在线，无法查看实时画面',
  },
  en: {
    lv_live: 'Live', lv_talk: 'Talk', lv_ptt: 'Hold to talk', lv_open: 'Open line', lv_close: 'Close',
    lv_connecting: 'connecting…', lv_playing: 'live', lv_failed: 'Could not open live view', lv_ended: 'Live view ended',
    lv_talking: 'Talking: the pole can hear the centre', lv_mic: 'Microphone unavailable',
    lv_offline: 'The node is offline (or not connected yet): no live view',
  },
};
/** @type {{pc: RTCPeerConnection|null, session: string|null, node: string|null, kind: string|null, timer: any,
 *   mic: MediaStream|null, open: boolean, seq: number}} */
export const LV = {pc: null, session: null, node: null, kind: null, timer: null, mic: null, open: false, seq: 0};

/** @param {any} app */
export function init(app) {
  const {S, t, api, $, on} = app;
  app.addStrings(STRINGS);
  const canTalk = () => app.canWork();

  function lvStatus(key, detail) {
    $('live-status').textContent = t(key) + (detail ? `: ${detail}` : '');
    $('live-status').dataset.state = key;
    $('live-status').dataset.detail = detail ?? '';
}
  // only a node that is online can stream; one that is offline or never came up offers no Live
  const lvOnline = (node) => S.nodes.some((n) => n.id === node && n.state === 'online');
  function lvRelabel() { // the language changed: the status follows it (it stayed "直播中" in English)
    const st = $('live-status');
    if (st.dataset.state) lvStatus(st.dataset.state, st.dataset.detail);
    lvButtons();
}
  on('lang', lvRelabel);
  on('nodes', () => {
    document.querySelectorAll('[data-act="live"]').forEach((/** @type {HTMLElement} */ b) => { b.hidden = !lvOnline(b.dataset.node); });
  });
  // a pressed alarm shows its scene by itself once, not again on every page load
  const LV_SHOWN = 'pingan.live.shown';
  function lvShown() { try { return JSON.parse(localStorage.getItem(LV_SHOWN)) || []; } catch { return []; } }
  function lvMarkShown(id) { localStorage.setItem(LV_SHOWN, JSON.stringify([...lvShown().slice(-199), id])); }
  function lvButtons() {
    $('live-talk').hidden = !canTalk() || LV.kind !== 'live';
    $('live-ptt').hidden = $('live-openline').hidden = LV.kind !== 'talk';
    $('live-openline').classList.toggle('active', LV.open);
}
  async function waitIce(pc, ms = 2000) {
    if (pc.iceGatheringState === 'complete') return;
    await new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === 'complete') resolve(); };
      pc.addEventListener('icegatheringstatechange', done);
      setTimeout(resolve, ms); // whatever was gathered by then goes in the offer
    });
}

  async function openLive(node, talk = false) {
    await closeLive(false);
    const seq = ++LV.seq;
    document.body.classList.add('live-open'); // the page makes room: the panel covers no button
    LV.node = node; LV.kind = talk ? 'talk' : 'live'; LV.open = false;
    $('live-panel').hidden = false; $('live-node').textContent = node; lvStatus('lv_connecting'); lvButtons();
    let pc = null;
    try {
      const cfg = await (await api('/api/live/config')).json();
      pc = new RTCPeerConnection({iceServers: cfg.ice_servers || []});
      LV.pc = pc;
      pc.addTransceiver('video', {direction: 'recvonly'});
      if (talk) {
        try {
          LV.mic = await navigator.mediaDevices.getUserMedia({audio: true});
        } catch (e) { lvStatus('lv_mic', e.name); throw e; }
        LV.mic.getAudioTracks().forEach((tr) => { tr.enabled = false; pc.addTrack(tr, LV.mic); }); // push-to-talk
      }
      pc.ontrack = (e) => {
        const stream = e.streams[0] || new MediaStream([e.track]);
        if (e.track.kind === 'video') $('live-video').srcObject = stream;
        else $('live-audio').srcObject = stream; // the pole's microphone
      };
      pc.onconnectionstatechange = () => {
        if (LV.pc !== pc) return;
        if (pc.connectionState === 'connected') lvStatus(talk ? 'lv_talking' : 'lv_playing');
        if (pc.connectionState === 'failed') { lvStatus('lv_ended'); closeLive(true, true); }
      };
      await pc.setLocalDescription(await pc.createOffer());
      await waitIce(pc);
      const r = await api(`/api/nodes/${encodeURIComponent(node)}/${talk ? 'talk' : 'live'}`,
        {method: 'POST', body: {sdp: pc.localDescription.sdp}});
      const body = await r.json().catch(() => ({}));
      if (seq !== LV.seq) { pc.close(); return; } // closed or replaced meanwhile
      if (!r.ok) { lvStatus('lv_failed', app.say(body.detail || r.status)); closeLive(false, true); return; }
      LV.session = body.session;
      await pc.setRemoteDescription({type: 'answer', sdp: body.sdp});
      const video = $('live-video');
      video.play().catch(() => {}); // muted video may autoplay
      if (talk) $('live-audio').play().catch(() => {});
      LV.timer = setInterval(keepAlive, (body.keepalive_s || 5) * 1000);
    } catch (e) {
      if (seq === LV.seq && $('live-status').dataset.state === 'lv_connecting') lvStatus('lv_failed', e.message);
      if (seq === LV.seq) closeLive(false, true);
    }
}
  async function lvNotOnline(node) { // says so at once, asks the hub for nothing
    await closeLive(false);
    ++LV.seq; LV.node = node; LV.kind = 'offline';
    $('live-panel').hidden = false; document.body.classList.add('live-open');
    $('live-node').textContent = node; lvStatus('lv_offline'); lvButtons();
}
  async function keepAlive() {
    if (!LV.session) return;
    const r = await api(`/api/live/${LV.session}/keepalive`, {method: 'POST'}).catch(() => null);
    if (r && r.status === 404) { lvStatus('lv_ended'); closeLive(false, true); } // ended by time limit or node
}
  async function closeLive(tellHub = true, keepPanel = false) {
    const {pc, session, mic, timer} = LV;
    Object.assign(LV, {pc: null, session: null, mic: null, timer: null, open: false});
    if (timer) clearInterval(timer);
    if (mic) mic.getTracks().forEach((tr) => tr.stop());
    if (pc) pc.close();
    if (!keepPanel) {
      $('live-panel').hidden = true; $('live-video').srcObject = null; LV.node = null;
      document.body.classList.remove('live-open');
    }
    $('live-audio').srcObject = null;
    if (session && tellHub) await api(`/api/live/${session}`, {method: 'DELETE'}).catch(() => null);
}
  function setMic(on) { if (LV.mic) LV.mic.getAudioTracks().forEach((tr) => { tr.enabled = on; }); }

  // the panel's buttons
  $('live-close').addEventListener('click', () => closeLive());
  $('live-talk').addEventListener('click', () => { if (LV.node) openLive(LV.node, true); });
  const ptt = $('live-ptt');
  for (const ev of ['mousedown', 'touchstart']) ptt.addEventListener(ev, (e) => { e.preventDefault(); setMic(true); });
  for (const ev of ['mouseup', 'mouseleave', 'touchend']) ptt.addEventListener(ev, () => { if (!LV.open) setMic(false); });
  $('live-openline').addEventListener('click', () => { LV.open = !LV.open; setMic(LV.open); lvButtons(); });
  // leaving the page ends the session at once (the hub's keep-alive timeout is the fallback)
  window.addEventListener('pagehide', () => {
    if (LV.session) fetch(`/api/live/${LV.session}`, {method: 'DELETE', keepalive: true, credentials: 'same-origin'});
  });

  // entry points: a Live button on each alarm card, a click on a pole on the map, and by itself on a new alarm
  document.addEventListener('click', (e) => {
    const b = /** @type {HTMLElement|null} */ (/** @type {HTMLElement} */ (e.target).closest('[data-act="live"]'));
    if (b) { e.stopPropagation(); (lvOnline(b.dataset.node) ? openLive : lvNotOnline)(b.dataset.node); }
  }, true);
  function decorate() {
    document.querySelectorAll('article.alarm:not([data-live])').forEach((/** @type {HTMLElement} */ card) => {
      card.dataset.live = '1';
      const a = S.alarms.find((x) => x.id === card.dataset.id);
      if (!a || a.kind.startsWith('door.') || a.kind.endsWith('.offline')) return;
      const h = card.querySelector('h3');
      const b = document.createElement('button');
      b.className = 'live-btn'; b.dataset.act = 'live'; b.dataset.node = a.node; b.textContent = t('lv_live');
      b.hidden = !lvOnline(a.node);
      h.appendChild(b);
      // a resident pressed the button: show the scene at once, once; a newer press replaces an older pole
      // being watched (never a talk in progress)
      if (a.kind === 'alarm.pressed' && a.state === 'open' && lvOnline(a.node) && LV.kind !== 'talk'
          && !lvShown().includes(a.id)) {
        lvMarkShown(a.id);
        if (LV.node !== a.node || !LV.pc) openLive(a.node);
      }
    });
  }
  // the alarm screen is mounted after this: watch its list once it is there, and decorate what it drew already
  const lvObserver = new MutationObserver(decorate);
  let watched = false;
  const watch = () => {
    const list = $('alarms');
    if (list && !watched) { watched = true; lvObserver.observe(list, {childList: true}); decorate(); }
  };
  on('alarms', watch); on('route', watch);
  return {openLive, closeLive, lvStatus, lvNotOnline, lvOnline};
}
