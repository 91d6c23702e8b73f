"""``/api/map``: what the console's map draws besides the nodes: the base layer's tiles (or none) and the
district's grid boundaries (hub/map/grids.py). Any staff role."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from hub.api.deps import engine_of, settings_of
from hub.auth.policy import requires
from hub.auth.service import ALL_STAFF
from hub.map.grids import grids_geojson, tiles

router = APIRouter(tags=["map"])


class Tiles(BaseModel):
    layers: list[str]
    subdomains: str
    max_zoom: int
    attribution: str


class MapConfig(BaseModel):
    tiles: Tiles | None
    grids: dict[str, Any]


@router.get("/api/map", response_model=MapConfig)
@requires(*ALL_STAFF)
def map_config(request: Request) -> dict[str, Any]:
    return {"tiles": tiles(settings_of(request)), "grids": grids_geojson(engine_of(request))}
