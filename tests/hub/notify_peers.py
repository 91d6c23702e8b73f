"""Real HTTP peers for the notify tests and bench: robot/SMS receivers that check what they are sent,
and the npm ``web-push-testing`` push service (it checks the VAPID JWT and decrypts the payload)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlparse

import httpx

ROOT = Path(__file__).resolve().parents[2]
WEBPUSH_DIR = ROOT / "tests" / "peers" / "webpush"
WEBPUSH_SERVER = WEBPUSH_DIR / "node_modules" / "web-push-testing" / "src" / "bin" / "server.js"
DINGTALK_SECRET = "SECtest0123456789abcdef"


class Receiver:
    """One local HTTP server playing the WeCom robot, the DingTalk robot and an SMS gateway.

    Paths: /wecom/<mode>, /dingtalk/<mode>, /sms/<mode>; mode ``ok``, ``fail`` (the service refuses) or
    ``hang`` (accepts the request and never answers until the test ends). Each checks the request's format
    the way the real service documents it and refuses (with the service's own error shape) what is wrong."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                u = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                service, _, mode = u.path.strip("/").partition("/")
                try:
                    data = json.loads(body)
                except ValueError:
                    data = None
                query = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
                receiver.requests.append({"service": service, "mode": mode, "query": query, "body": data,
                                          "headers": dict(self.headers), "at": time.time()})
                if mode == "hang":
                    receiver.release.wait(30)
                    return
                status, answer = receiver.check(service, mode, query, data, self.headers, u.query)
                out = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the stdlib's 5 resets a fan-out of 50 parallel connects
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (its timeout) resets the connection: expected here

        self.server = Server(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def of(self, service: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["service"] == service]

    def check(self, service: str, mode: str, query: dict[str, str], data: Any, headers: Any,
              raw_query: str) -> tuple[int, dict[str, Any]]:
        if service == "wecom":
            # https://developer.work.weixin.qq.com/document/path/91770
            if query.get("key") != "robot-key":
                return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
            text = (data or {}).get("text") if isinstance(data, dict) else None
            if (data or {}).get("msgtype") != "text" or not isinstance(text, dict) \
                    or not isinstance(text.get("content"), str) or not text["content"] \
                    or len(text["content"].encode()) > 2048 \
                    or not all(isinstance(m, str) for m in text.get("mentioned_mobile_list", [])):
                self.problems.append(f"wecom format: {data}")
                return 200, {"errcode": 40008, "errmsg": "invalid message type"}
            if mode == "fail":
                return 200, {"errcode": 45009, "errmsg": "api freq out of limit"}
            return 200, {"errcode": 0, "errmsg": "ok"}
        if service == "dingtalk":
            # https://open.dingtalk.com/document/robots/custom-robot-access (sign: timestamp + "\n" + secret)
            if query.get("access_token") != "robot-token":
                return 200, {"errcode": 300001, "errmsg": "token is not exist"}
            ts, sign = query.get("timestamp", ""), query.get("sign", "")
            want = base64.b64encode(hmac.new(DINGTALK_SECRET.encode(), f"{ts}\n{DINGTALK_SECRET}".encode(),
                                             hashlib.sha256).digest()).decode()
            # the sign must arrive URL-encoded (base64 has + and /): decoded once it must equal the digest
            raw_sign = next((p.split("=", 1)[1] for p in raw_query.split("&") if p.startswith("sign=")), "")
            if not ts.isdigit() or abs(int(ts) / 1000 - time.time()) > 3600 or sign != want \
                    or unquote_plus(raw_sign) != want:
                self.problems.append(f"dingtalk sign: {query}")
                return 200, {"errcode": 310000, "errmsg": "sign not match"}
            at = (data or {}).get("at", {}) if isinstance(data, dict) else {}
            text = (data or {}).get("text") if isinstance(data, dict) else None
            if (data or {}).get("msgtype") != "text" or not isinstance(text, dict) or not text.get("content") \
                    or not isinstance(at.get("atMobiles", []), list) \
                    or any(f"@{m}" not in text["content"] for m in at.get("atMobiles", [])):
                self.problems.append(f"dingtalk format: {data}")
                return 200, {"errcode": 40035, "errmsg": "缺少参数 json"}
            if mode == "fail":
                return 200, {"errcode": 410100, "errmsg": "send too fast, exceed 20 times per minute"}
            return 200, {"errcode": 0, "errmsg": "ok"}
        if service == "sms":
            if headers.get("authorization") != "Bearer sms-token":
                return 401, {"error": "bad token"}
            if not isinstance(data, dict) or not str(data.get("to", "")).isdigit() or not data.get("text"):
                self.problems.append(f"sms format: {data}")
                return 422, {"error": "to and text required"}
            if mode == "fail":
                return 503, {"error": "gateway down"}
            return 200, {"id": "m-1"}
        return 404, {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def webpush_available() -> bool:
    return WEBPUSH_SERVER.is_file() and shutil.which("node") is not None


class PushService:
    """web-push-testing on a free port, in the foreground (its CLI would daemonise)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PushService:
        self.proc = subprocess.Popen(["node", str(WEBPUSH_SERVER), str(self.port)], cwd=WEBPUSH_DIR,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if httpx.post(f"{self.url}/status", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("web-push-testing did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            if self.proc.stdout:
                self.proc.stdout.close()

    def subscribe(self, application_server_key: str) -> dict[str, Any]:
        """What a browser's PushManager.subscribe gives (the service plays the browser's side too)."""
        r = httpx.post(f"{self.url}/subscribe", json={"userVisibleOnly": "true",
                                                      "applicationServerKey": application_server_key}, timeout=5)
        r.raise_for_status()
        data: dict[str, Any] = r.json()["data"]
        # the endpoint it hands out names localhost; keep it on the address we listen on
        data["endpoint"] = data["endpoint"].replace("http://localhost:", "http://127.0.0.1:")
        return data

    def messages(self, client_hash: str) -> list[Any]:
        r = httpx.post(f"{self.url}/get-notifications", json={"clientHash": client_hash}, timeout=5)
        r.raise_for_status()
        return [json.loads(m) for m in r.json()["data"]["messages"]]


def serve_forever(port: int) -> None:
    """The receiver in a process of its own (bench/notify_fanout.py: not sharing the sender's GIL)."""
    import sys

    with Receiver(port) as rx:
        print(rx.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


if __name__ == "__main__":
    import sys

    serve_forever(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
