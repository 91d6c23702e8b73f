"""Response model of hub/api/map.py: the base layer's tiles (or none) and the district's grids."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hub.api.models import ApiModel


class Tiles(ApiModel):
    layers: list[str] = Field(description="Leaflet URL templates, drawn in order (天地图: base and labels)")
    subdomains: str
    max_zoom: int
    attribution: str


class MapConfig(ApiModel):
    tiles: Tiles | None = Field(description="None: no base layer configured (the grids alone are drawn)")
    grids: dict[str, Any] = Field(description="A GeoJSON FeatureCollection (RFC 7946)")
