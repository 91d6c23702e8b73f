"""schemathesis against the hub's own OpenAPI: whatever a client sends that fits (or nearly fits)
the schema, the hub answers without a server error. Authenticated as an admin, so the requests
reach the handlers rather than stopping at the login check."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from starlette.testclient import TestClient

from edge.protocol import Event, Topics, utcnow
from hub.app import create_app
from hub.config import load_settings
from hub.ingest.writer import Incoming

_tmp = Path(tempfile.mkdtemp(prefix="pingan-openapi-"))
app = create_app(load_settings(data_dir=_tmp, mqtt_enabled=False, metrics_token="t"))
_state = app.state.hub
_state.auth.add_user("fuzz", "fuzz password 123", "admin")
_state.service.register_node("pole-01", grid="G01")
_event = Event.make("pole-01", "alarm.pressed")
if _state.ingest is None:  # store one real alarm so id routes have something to find
    from hub.ingest.writer import BatchResult, Processor

    with _state.engine.begin() as conn:
        Processor(_state.settings).store_events(
            conn, [(_event, Incoming(Topics.events("pole-01"), _event.to_bytes(), 1, 1, utcnow()))], BatchResult())
TOKEN = TestClient(app).post("/api/login", json={"username": "fuzz", "password": "fuzz password 123"}).json()["token"]
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
EXAMPLES = int(os.environ.get("PINGAN_OPENAPI_EXAMPLES", "25"))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case) -> None:
    if case.path in ("/api/logout",):
        return  # would end the fuzzer's own session
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}"
