"""``/api/map``: what the console's map draws besides the nodes: the base layer's tiles (or none) and the
district's grid boundaries (hub/map/grids.py). Any staff role."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hub.api.deps import EngineDep, SettingsDep
from hub.api.models.map import MapConfig
from hub.auth.policy import requires
from hub.auth.service import ALL_STAFF
from hub.map.grids import grids_geojson, tiles

router = APIRouter(tags=["map"])


@router.get("/api/map", response_model=MapConfig)
@requires(*ALL_STAFF)
def map_config(settings: SettingsDep, engine: EngineDep) -> dict[str, Any]:
    return {"tiles": tiles(settings), "grids": grids_geojson(engine)}
