"""The HTTP API's response models: what each JSON route returns, declared field by field.

They make the OpenAPI schema (``/openapi.json``, ``/docs``) say what every body holds, let
schemathesis check each answer against it (tests/hub/test_openapi_fuzz.py), and make drift fail: a key a
service starts returning without its model declaring it is a server error in the tests, never a
field that silently vanishes or appears in the console.

THE RULE, for every router in ``hub/api/`` (today's and those added later):

1. Where: the response models of ``hub/api/<router>.py`` live in ``hub/api/models/<router>.py`` (same
   name). Request bodies stay in the router beside their route. Shared pieces (this module's
   :class:`ApiModel`, the closed sets below) are imported from here.
2. How: every JSON route names its model with ``response_model=`` in its decorator. Services keep
   returning plain dicts (the store's rows through ``jsonable``) and the function's return annotation
   says so (``-> dict[str, Any]``); FastAPI validates the dict against the model on the way out.
3. Strict: models derive from :class:`ApiModel` (``extra="forbid"``), so an undeclared key fails
   (a 500 ResponseValidationError: the route's tests fail, rather than the key silently vanishing).
   ``extra="allow"`` only where a row legitimately carries open-ended data, with the reason in the
   model's docstring; a ``dict[str, Any]`` field (open JSON, e.g. an event's ``data``) likewise, and
   both need an entry with its reason in ``UNTYPED_OK`` in tests/hub/test_api_schema.py, which fails
   on any untyped object in a 2xx body's schema.
4. Types as the wire carries them: times are ``str`` (ISO 8601 text, as ``jsonable`` writes them),
   ``X | None`` wherever null happens, ``Literal[...]`` for states and other closed sets (spelled once,
   below or in the feature, and checked against the feature's own tuple by the tests).
5. A key a row has only sometimes gets a default, and its route sets
   ``response_model_exclude_unset=True``: the key stays absent as the service made it (not ``null``),
   and the schema shows it as not required. tests/hub/test_api_schema.py checks the pairing.
6. Error bodies: FastAPI documents a 422 for every route with parameters (its own list of
   problems). A route that answers 422 in another shape declares it, e.g.
   ``responses={422: {"model": Refused}}`` (a sentence or FastAPI's list); schemathesis checks
   every documented status, errors included. Undocumented statuses (401, 403, 404, 409) are
   ``{"detail": "<why>"}`` from HTTPException, hub.errors and the policy middleware.
7. Non-JSON routes (JPEG, CSV, MJPEG) set ``response_class=`` and declare their media type in
   ``responses={200: {"content": {"image/jpeg": {}}}}``; they have no response model.
8. Routes take what they need through the typed dependencies of ``hub/api/deps.py`` (``ServiceDep``,
   ``DoorsDep``, ``UserDep`` ...; a new part of the hub gets its provider there), never
   ``request.app.state`` (tests/hub/test_api_schema.py checks).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ApiModel(BaseModel):
    """A response body (or a part of one): every key declared, no other key allowed."""

    model_config = ConfigDict(extra="forbid")


Role = Literal["operator", "installer", "admin", "responder"]  # hub.auth.service.ROLES
NodeStateName = Literal["unknown", "online", "offline", "removed"]  # registered, status or heartbeat, removed


class Problem(BaseModel):
    """One problem with a request, as FastAPI lists them (``extra="allow"``: pydantic adds ``input``,
    ``ctx`` and ``url`` as it sees fit; the hub adds a YAML ``line`` for a config)."""

    model_config = ConfigDict(extra="allow")
    loc: list[str | int]
    msg: str
    type: str


class Refused(ApiModel):
    """A 422 that is a sentence (the hub's own check) or FastAPI's list of problems (a malformed request)."""

    detail: str | list[Problem]


class ConfigRefused(ApiModel):
    """A config push refused before anything was sent: each problem with its field and YAML line."""

    detail: list[Problem]
    message: str | None = Field(default=None, description="All problems in one sentence (absent: malformed request)")
