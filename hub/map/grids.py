"""The district's grids on the console's map: boundaries imported from the district's GeoJSON, and the
base layer the hub is set to (PINGAN_MAP_TILES: 天地图, an offline tile server, or none).

A district office hands over one GeoJSON FeatureCollection of its grids (534 in the one we met). Each
feature is a Polygon or MultiPolygon in WGS84 lon/lat, named by a property (``name``, ``grid`` or
``code`` unless told). An import replaces every grid at once and stores nothing from a file with a bad
feature: a half-imported district would draw a map with holes nobody notices."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from hub.errors import HubError
from hub.store.engine import now_utc
from hub.store.schema import grids

NAME_KEYS = ("name", "grid", "code")
MAX_BYTES = 64 * 1024 * 1024
TIANDITU = "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}" \
           "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}"


class GeoJSONInvalid(HubError, ValueError):
    """The grids file cannot be imported; ``problems`` says where (feature number and why), both languages."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:10]) + (f"; … {len(problems) - 10} more" if len(problems) > 10 else "")
        super().__init__(f"GeoJSON 无效，未导入任何网格 / invalid GeoJSON, nothing imported: {shown}")


def _ring_problem(ring: Any) -> str | None:
    if not isinstance(ring, list) or len(ring) < 4:
        return "a ring needs at least 4 positions / 多边形的环至少需要 4 个点"
    for pos in ring:
        if not (isinstance(pos, list) and len(pos) >= 2 and all(isinstance(c, int | float) and math.isfinite(c)
                                                                  for c in pos[:2])):
            return f"position {pos!r} is not [lon, lat] / 坐标不是 [经度, 纬度]"
        lon, lat = pos[0], pos[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            return f"position {pos!r} is outside lon/lat (WGS84; a projected file?) / 坐标超出经纬度范围"
    if ring[0][:2] != ring[-1][:2]:
        return "a ring must end where it starts / 多边形的环必须闭合"
    return None


def _geometry_problem(geom: Any) -> str | None:
    if not isinstance(geom, dict):
        return "no geometry / 缺少 geometry"
    kind, coords = geom.get("type"), geom.get("coordinates")
    if kind == "Polygon":
        polygons = [coords]
    elif kind == "MultiPolygon":
        polygons = coords if isinstance(coords, list) else [None]
    else:
        return f"geometry type {kind!r}: a grid is a Polygon or MultiPolygon / 网格必须是多边形"
    for poly in polygons:
        if not isinstance(poly, list) or not poly:
            return "a polygon has no rings / 多边形没有环"
        for ring in poly:
            problem = _ring_problem(ring)
            if problem:
                return problem
    return None


def parse_grids(text: str, name_property: str | None = None) -> list[dict[str, Any]]:
    """Each grid of a FeatureCollection as {name, geometry, properties}; every problem at once, or raises."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GeoJSONInvalid([f"not JSON (line {exc.lineno}: {exc.msg}) / 不是 JSON 文件"]) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise GeoJSONInvalid(["not a GeoJSON FeatureCollection / 不是 GeoJSON FeatureCollection"])
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: set[str] = set()
    keys = (name_property,) if name_property else NAME_KEYS
    for i, feature in enumerate(doc["features"], 1):
        props = feature.get("properties") if isinstance(feature, dict) else None
        props = props if isinstance(props, dict) else {}
        name = next((str(props[k]).strip() for k in keys if props.get(k) not in (None, "")), "")
        where = f"feature {i}" + (f" ({name})" if name else "")
        if not name:
            problems.append(f"{where}: no grid name in properties {'/'.join(keys)} / 缺少网格名称")
        elif len(name) > 64:
            problems.append(f"{where}: the name is longer than 64 characters / 网格名称过长")
        elif name in seen:
            problems.append(f"{where}: the same grid twice / 网格重复")
        seen.add(name)
        problem = _geometry_problem(feature.get("geometry") if isinstance(feature, dict) else None)
        if problem:
            problems.append(f"{where}: {problem}")
        out.append({"name": name, "geometry": feature.get("geometry") if isinstance(feature, dict) else None,
                    "properties": props})
    if not out and not problems:
        problems.append("no features / 文件中没有网格")
    if problems:
        raise GeoJSONInvalid(problems)
    return out


def import_grids(engine: Engine, path: Path, name_property: str | None = None) -> int:
    """Replace every grid with the file's, in one transaction; nothing changes when the file is bad."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise GeoJSONInvalid([f"{path} is larger than {MAX_BYTES // 2**20} MiB / 文件过大"])
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise GeoJSONInvalid([f"cannot read {path}: {exc.strerror} / 无法读取文件"]) from None
    except UnicodeDecodeError:
        raise GeoJSONInvalid([f"{path} is not UTF-8 text / 文件不是 UTF-8 文本"]) from None
    rows = parse_grids(text, name_property)
    at = now_utc()
    with engine.begin() as conn:
        conn.execute(delete(grids))
        conn.execute(insert(grids), [{**r, "imported_at": at} for r in rows])
    return len(rows)


def grids_geojson(engine: Engine) -> dict[str, Any]:
    """The stored grids as one FeatureCollection, for the map."""
    with engine.connect() as conn:
        rows = conn.execute(select(grids).order_by(grids.c.name)).all()
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": r.geometry, "properties": {**(r.properties or {}), "name": r.name}}
        for r in rows]}


def tiles(settings: Any) -> dict[str, Any] | None:
    """The base layer's URL templates for Leaflet, or None (PINGAN_MAP_TILES=none)."""
    if settings.map_tiles == "none":
        return None
    if settings.map_tiles == "tianditu":
        key = settings.map_tianditu_key
        return {"layers": [TIANDITU.replace("{layer}", layer).replace("{key}", key) for layer in ("vec", "cva")],
                "subdomains": "01234567", "max_zoom": 18, "attribution": "天地图 GS(2024)0568号"}
    return {"layers": [settings.map_tiles], "subdomains": "abc", "max_zoom": 19, "attribution": ""}


def tile_origins(settings: Any) -> list[str]:
    """The origins the console's CSP must allow images from for the base layer."""
    if settings.map_tiles == "none":
        return []
    if settings.map_tiles == "tianditu":
        return [f"https://t{i}.tianditu.gov.cn" for i in range(8)]
    out = []
    for sub in "abc" if "{s}" in settings.map_tiles else "a":
        u = urlparse(settings.map_tiles.replace("{s}", sub))
        out.append(f"{u.scheme}://{u.netloc}")
    return out
