"""The API's schema says what every answer holds (the rule in hub/api/models/__init__.py).

These read the hub's OpenAPI and its routes, so a router added later without response models, with
an untyped body, or reaching into ``request.app.state`` fails here with its route named.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from hub.alarms.service import OUTCOMES, STAGES
from hub.api.models import Role
from hub.api.models.reports import DoorCounts, ResponseTimes
from hub.api.models.routes import AlarmState, Outcome
from hub.app import create_app
from hub.auth.policy import walk_routes
from hub.auth.service import ROLES
from hub.config import load_settings
from hub.reports.service import DOOR_KINDS, STAGE_COLUMNS

API_DIR = Path(__file__).resolve().parents[2] / "hub" / "api"

# Open JSON in a 2xx body, each with the reason it cannot be one model. "Model.field" is a dict[str, Any]
# field; "Model" is a model with extra="allow".
UNTYPED_OK = {
    "EventOut.data": "an event's body; its model depends on the row's kind (edge/protocol.py EVENT_DATA, "
                     "published in hub/web/contract.schema.json), and a newer node may add fields the hub keeps",
    "CommandOut.args": "a command's args as stored: COMMAND_ARGS[name] in edge/protocol.py, except that secrets "
                       "are left out of the stored copy (a sealed template, an SDP), so it is not that model",
    "CommandOut.data": "a reply's data as the node sent it: REPLY_DATA[name] in edge/protocol.py, by the row's name",
    "ConfigReply.data": "the node's reply data to config.update, kept as sent (the contract declares none)",
    "AuditEntry.detail": "an event's data or a staff action's audit detail: one shape per kind/action",
    "IceServer": "WebRTC's RTCIceServer as the administrator configured it, passed to the browser verbatim",
    "SelftestCheck": "one check of a selftest.result as the node sent it: edge/protocol.py SelftestCheck, its "
                     "declared fields typed; a newer node may add more, which the contract keeps (extra allowed)",
    "MapConfig.grids": "the district's grid boundaries as a GeoJSON FeatureCollection (RFC 7946), checked at import "
                       "(pingan-hub grids import) and handed to Leaflet as it is",
    "PastEvent.data": "an event's body, as EventOut.data above",
    "StaffAction.detail": "a staff action's audit detail: one shape per action (user.add, alarm.resolve ...)",
}


@pytest.fixture(scope="module")
def app() -> Any:
    return create_app(load_settings(data_dir=Path(tempfile.mkdtemp(prefix="pingan-schema-")), mqtt_enabled=False))


@pytest.fixture(scope="module")
def spec(app: Any) -> dict[str, Any]:
    return app.openapi()  # type: ignore[no-any-return]


def _deref(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    ref = schema.get("$ref")
    if ref is None:
        return None, schema
    name = ref.rsplit("/", 1)[1]
    return name, spec["components"]["schemas"][name]


def _walk(spec: dict[str, Any], schema: Any, where: str, seen: set[str]) -> Any:
    """Yield (where, schema) for every sub-schema, ``where`` naming it as Model.field."""
    if not isinstance(schema, dict):
        return
    name, schema = _deref(spec, schema)
    if name is not None:
        if name in seen:
            return
        seen = seen | {name}
        where = name
    yield where, schema
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            yield from _walk(spec, sub, where, seen)
    if isinstance(schema.get("items"), dict):
        yield from _walk(spec, schema["items"], where, seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(spec, schema["additionalProperties"], where, seen)
    for prop, sub in schema.get("properties", {}).items():
        yield from _walk(spec, sub, f"{where}.{prop}", seen)


def _untyped(schema: dict[str, Any]) -> bool:
    """Anything goes: ``{}``, or an object that names no property and allows any (``dict[str, Any]``)."""
    if any(k in schema for k in ("type", "anyOf", "oneOf", "allOf", "enum", "const", "$ref")):
        extra = schema.get("additionalProperties", True)
        return schema.get("type") == "object" and not schema.get("properties") and extra in (True, {})
    return True


def _json_2xx(spec: dict[str, Any]) -> Any:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if status.startswith("2") and "application/json" in response.get("content", {}):
                    yield f"{method.upper()} {path}", response["content"]["application/json"].get("schema", {})


def test_no_2xx_body_is_untyped_json_unless_allowed_with_a_reason(spec: dict[str, Any]) -> None:
    found: dict[str, str] = {}
    for route, schema in _json_2xx(spec):
        for where, sub in _walk(spec, schema, route, set()):
            if _untyped(sub):
                found.setdefault(where, route)
            elif sub.get("additionalProperties") is True and sub.get("properties"):
                found.setdefault(where, route)  # a model with extra="allow"
    unexplained = {where: route for where, route in found.items() if where not in UNTYPED_OK}
    assert not unexplained, ("untyped JSON in 2xx bodies (give it a model, or a reason in UNTYPED_OK): "
                             f"{unexplained}")
    assert not set(UNTYPED_OK) - set(found), f"UNTYPED_OK names what is typed now: {set(UNTYPED_OK) - set(found)}"


def test_the_untyped_check_sees_dicts_any_and_open_models() -> None:
    assert _untyped({}) and _untyped({"type": "object"}) and _untyped({"type": "object", "additionalProperties": True})
    assert not _untyped({"type": "object", "additionalProperties": {"type": "integer"}})  # dict[str, int]
    assert not _untyped({"type": "object", "properties": {"a": {"type": "string"}}})
    assert not _untyped({"type": "string"}) and not _untyped({"anyOf": [{"type": "string"}, {"type": "null"}]})


def _routes(app: Any) -> list[APIRoute]:
    """Every API route with its full path (newer FastAPI yields route contexts around each router's routes)."""
    routes = [getattr(r, "route", r) for r in walk_routes(app.routes)]
    return [r for r in routes if isinstance(r, APIRoute) and r.include_in_schema]


def test_every_json_route_has_a_response_model_and_others_declare_their_media_type(app: Any) -> None:
    problems = []
    for route in _routes(app):
        name = f"{sorted(route.methods)} {route.path}"
        json_class = route.response_class in (JSONResponse,) or getattr(route.response_class, "value", None) \
            is JSONResponse
        if json_class and route.response_model is None:
            problems.append(f"{name}: no response_model")
        if not json_class and route.status_code != 204:  # a 204 has no body, so no media type
            code = route.status_code or 200
            content = (route.responses.get(code) or route.responses.get(str(code)) or {}).get("content", {})
            if not content:
                problems.append(f"{name}: a {route.response_class.__name__} route declares no media type")
    assert not problems, problems


def _has_optional_keys(spec: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    out = []
    for where, sub in _walk(spec, schema, "", set()):
        props = set(sub.get("properties", {}))
        if props - set(sub.get("required", [])):
            out.append(f"{where}: {sorted(props - set(sub.get('required', [])))}")
    return out


def test_a_route_whose_rows_may_lack_a_key_keeps_it_absent(app: Any, spec: dict[str, Any]) -> None:
    """A field with a default is a key a row only sometimes has: its route sets response_model_exclude_unset,
    else the answer would carry ``null`` where the service left the key out (rule 5)."""
    by_name = {}
    for route in _routes(app):
        for method in route.methods:
            by_name[f"{method} {route.path}"] = route
    problems = []
    for name, schema in _json_2xx(spec):
        optional = _has_optional_keys(spec, schema)
        if optional and not by_name[name].response_model_exclude_unset:
            problems.append(f"{name}: {optional}")
    assert not problems, f"set response_model_exclude_unset=True on: {problems}"


def test_the_closed_sets_are_the_features_own() -> None:
    assert get_args(AlarmState) == STAGES
    assert get_args(Outcome) == OUTCOMES
    assert get_args(Role) == ROLES
    assert list(DoorCounts.model_fields) == [k.split(".", 1)[1] for k in DOOR_KINDS]
    assert list(ResponseTimes.model_fields) == list(STAGE_COLUMNS)


def test_routers_take_the_hubs_parts_through_typed_dependencies() -> None:
    """Only hub/api/deps.py reads app.state; a route names what it uses (ServiceDep, UserDep ...)."""
    offenders = [f"{p.name}:{n}" for p in sorted(API_DIR.rglob("*.py")) if p.name != "deps.py"
                 for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\bapp\.state\.\w", line)]
    assert not offenders, offenders
