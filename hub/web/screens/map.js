// @ts-check
// The district map: Leaflet (vendored from npm, hub/web/vendor/; loaded when the map is first opened) with
// Leaflet.markercluster for 1,600 doors, the tile source the hub is set to (天地图 with the district's key, an
// offline tile server, or none), the grids' boundaries from the district's GeoJSON (`pingan-hub grids import`),
// each node at its coordinates coloured by its worst open alarm, and the nodes without coordinates listed
// beside the map, never drawn on it. A click on a node opens its page.

export const name = 'map';
export const STRINGS = {
  zh: {
    tab_map: '地图', h_online: '在线', h_offline: '离线', h_tamper: '防拆/遮挡', h_alarm: '报警', no_location: '未标位置：',
    map_no_tiles: '未配置底图（PINGAN_MAP_TILES）：只显示网格和设备', map_failed: '地图无法加载', open_node: '打开设备页',
  },
  en: {
    tab_map: 'Map', h_online: 'online', h_offline: 'offline', h_tamper: 'tamper', h_alarm: 'alarm',
    no_location: 'No location:', map_no_tiles: 'No base map set (PINGAN_MAP_TILES): grids and nodes only',
    map_failed: 'The map could not be loaded', open_node: 'Open the node page',
  },
};
const COLOURS = {alarm: '#ff2b2b', tamper: '#f0a000', offline: '#777777', online: '#2fbf5b'};
const WORST = ['alarm', 'tamper', 'offline', 'online'];

/** Loads a vendored script once (classic scripts: Leaflet's plugins expect the global L). */
function script(/** @type {string} */ src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src; s.onload = resolve; s.onerror = () => reject(new Error(src));
    document.head.appendChild(s);
  });
}
function style(/** @type {string} */ href) {
  const l = document.createElement('link'); l.rel = 'stylesheet'; l.href = href; document.head.appendChild(l);
}

/** @param {HTMLElement} root @param {any} app */
export function mount(root, app) {
  const {S, t, esc, api, on, health, go} = app;
  root.innerHTML = `<div class="legend">${WORST.map((h) => `<span><i class="dot ${h === 'alarm' ? 'alarm-c' : h}"></i><span
      data-i18n="h_${h}">${t('h_' + h)}</span></span>`).join('')}<span id="map-note" class="hint"></span></div>
    <div class="map-wrap"><div id="map" role="region" aria-label="${t('tab_map')}"></div>
      <div id="map-unplaced" class="map-unplaced" hidden></div></div>`;
  const box = /** @type {HTMLElement} */ (root.querySelector('#map'));
  const note = /** @type {HTMLElement} */ (root.querySelector('#map-note'));
  /** @type {any} */ let L = null;
  /** @type {any} */ let map = null;
  /** @type {any} */ let cluster = null;
  /** @type {Map<string, {marker: any, sig: string}>} */
  const markers = new Map();
  let fitted = false;

  async function init() {
    style('/static/vendor/leaflet/leaflet.css'); style('/static/vendor/leaflet.markercluster/MarkerCluster.css');
    await script('/static/vendor/leaflet/leaflet.js');
    await script('/static/vendor/leaflet.markercluster/leaflet.markercluster.js');
    L = /** @type {any} */ (window).L;
    const r = await api('/api/map');
    const cfg = r.ok ? await r.json() : {tiles: null, grids: {type: 'FeatureCollection', features: []}};
    map = L.map(box, {preferCanvas: false, zoomControl: true, attributionControl: true, maxZoom: 19});
    if (cfg.tiles) {
      for (const layer of cfg.tiles.layers) {
        L.tileLayer(layer, {maxZoom: cfg.tiles.max_zoom || 18, subdomains: cfg.tiles.subdomains || 'abc',
          attribution: esc(cfg.tiles.attribution || '')}).addTo(map);
      }
    } else {
      note.dataset.i18n = 'map_no_tiles'; note.textContent = t('map_no_tiles');
    }
    const grids = L.geoJSON(cfg.grids, {style: {color: '#5b8fd9', weight: 1.5, fillOpacity: 0.04},
      onEachFeature: (/** @type {any} */ f, /** @type {any} */ layer) => {
        const n = f.properties?.name || f.properties?.grid || '';
        if (n) layer.bindTooltip(`${esc(t('grid'))} ${esc(n)}`, {sticky: true});
      }}).addTo(map);
    // a cluster takes the colour of its worst member, so an alarm shows at every zoom
    cluster = L.markerClusterGroup({maxClusterRadius: 50, disableClusteringAtZoom: 18, chunkedLoading: true,
      iconCreateFunction: (/** @type {any} */ c) => {
        const worst = c.getAllChildMarkers().map((/** @type {any} */ m) => m.options.health)
          .sort((/** @type {string} */ a, /** @type {string} */ b) => WORST.indexOf(a) - WORST.indexOf(b))[0] || 'online';
        return L.divIcon({html: `<div data-health="${worst}"><span>${c.getChildCount()}</span></div>`,
          className: `cluster h-${worst}`, iconSize: L.point(36, 36)});
      }});
    map.addLayer(cluster);
    /** @type {any} */ (window).pingan.map = map; // for the tests
    const b = grids.getBounds();
    if (b.isValid()) { map.fitBounds(b); fitted = true; } else map.setView([24.48, 118.11], 13);
    render();
  }
  function icon(/** @type {any} */ n, /** @type {string} */ h) {
    return L.divIcon({className: `node-marker h-${h}`, iconSize: h === 'alarm' ? [22, 22] : [14, 14],
      html: `<span data-node="${esc(n.id)}" data-health="${h}" title="${esc(n.id)} · ${esc(n.place || '')}"></span>`});
  }
  function render() {
    const unplaced = S.nodes.filter((/** @type {any} */ n) => n.lat == null || n.lon == null);
    const list = /** @type {HTMLElement} */ (root.querySelector('#map-unplaced'));
    list.hidden = !unplaced.length;
    list.innerHTML = unplaced.length ? `<b>${t('no_location')}</b><ul>${unplaced.map((/** @type {any} */ n) =>
      `<li data-node="${esc(n.id)}" data-health="${health(n)}"><a href="#/nodes/${encodeURIComponent(n.id)}"><i class="dot ${
        health(n) === 'alarm' ? 'alarm-c' : health(n)}"></i>${esc(n.id)}</a> <small>${esc(n.place || '')}</small></li>`).join('')}</ul>` : '';
    if (!map) return;
    const keep = new Set();
    const add = []; const drop = [];
    for (const n of S.nodes) {
      if (n.lat == null || n.lon == null) continue;
      keep.add(n.id);
      const h = health(n); const sig = `${h}|${n.lat}|${n.lon}|${n.place}`;
      const have = markers.get(n.id);
      if (have && have.sig === sig) continue;
      if (have) drop.push(have.marker);
      const m = L.marker([n.lat, n.lon], {icon: icon(n, h), health: h, title: n.id, keyboard: true,
        alt: n.id, zIndexOffset: h === 'alarm' ? 1000 : 0});
      m.bindTooltip(`${esc(n.id)} · ${esc(n.place || '')}`);
      m.on('click', () => go('nodes/' + n.id));
      markers.set(n.id, {marker: m, sig}); add.push(m);
    }
    for (const [id, e] of markers) if (!keep.has(id)) { drop.push(e.marker); markers.delete(id); }
    if (drop.length) cluster.removeLayers(drop);
    if (add.length) cluster.addLayers(add);
    if (!fitted && markers.size) {
      fitted = true; map.fitBounds(L.latLngBounds([...markers.values()].map((e) => e.marker.getLatLng())).pad(0.1));
    }
  }
  on('nodes', render); on('alarms', render); on('lang', render);
  let started = /** @type {Promise<void>|null} */ (null);
  return {show: () => {
    if (!started) {
      started = init().catch((e) => { note.textContent = `${t('map_failed')}: ${e.message}`; });
    } else if (map) map.invalidateSize();
    app.loadNodes();
  }};
}
