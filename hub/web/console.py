"""The monitoring-centre console: login and access policy, escalation, reports and the web page.

``setup_console(app, state)`` is called once from ``create_app``; it wraps the whole application in
:class:`hub.auth.policy.AuthMiddleware`, so routers added by anyone, before or after, are protected
(see hub/auth/policy.py for the rules and :func:`hub.auth.policy.requires` for per-route roles).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

from hub.alarms.escalation import Escalator
from hub.api.auth import router as auth_router
from hub.api.fleet import router as fleet_router
from hub.api.history import router as history_router
from hub.api.map import router as map_router
from hub.api.reports import router as reports_router
from hub.api.staff import router as staff_router
from hub.auth import service as auth
from hub.auth.policy import AuthMiddleware

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent
STATIC_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")  # no folders, no dot files
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html",
                ".png": "image/png"}
STATIC_DIRS = ("screens", "vendor")  # the console's modules and the vendored libraries (hub/web/vendor/README.md)


def setup_console(app: FastAPI, state: Any) -> None:
    settings = state.settings
    state.auth = auth.Auth(state.engine, session_ttl_s=settings.session_ttl_s,
                           max_failures=settings.login_max_failures, window_s=settings.login_window_s,
                           max_ip_failures=settings.login_max_failures_per_ip,
                           hash_concurrency=settings.login_hash_concurrency, hash_queue=settings.login_hash_queue,
                           metrics_token=settings.metrics_token)
    state.escalator = Escalator(state.engine, after_s=settings.escalate_after_s,
                                webhook=settings.escalation_webhook, publish=state.live.publish_threadsafe)
    app.add_middleware(AuthMiddleware, auth=state.auth)
    app.include_router(auth_router)
    app.include_router(reports_router)
    app.include_router(map_router)
    app.include_router(history_router)
    app.include_router(staff_router)
    app.include_router(fleet_router)

    @app.get("/static/{name:path}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        # anything but plain names is a 404 before it reaches the file system: a NUL byte
        # (/static/console.js%00.css) made resolve() raise, an unauthenticated 500 and traceback per request;
        # folders only under screens/ and vendor/, each part a plain name (no "..", no dot files)
        parts = name.split("/")
        if not all(STATIC_NAME.fullmatch(p) for p in parts) or (len(parts) > 1 and parts[0] not in STATIC_DIRS) \
                or len(parts) > 4:
            raise HTTPException(404, "no such file")
        path = WEB_DIR.joinpath(*parts)
        if path.suffix not in STATIC_TYPES or not path.is_file():
            raise HTTPException(404, "no such file")
        return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})
