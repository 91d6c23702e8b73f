"""The monitoring-centre console's page and static files (the staff's browser screen).

Only serving lives here: the app (hub/app.py) wires login, access policy and every router; the
page talks to the hub through the JSON API (hub/api) and the live stream (/api/live).
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).resolve().parent
STATIC_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")  # no folders, no dot files
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html",
                ".png": "image/png"}
STATIC_DIRS = ("screens", "vendor")  # the console's modules and the vendored libraries (hub/web/vendor/README.md)

router = APIRouter()


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html")


@router.get("/static/{name:path}", include_in_schema=False)
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
