"""``pingan-hub``: serve the hub, run the demo street, register nodes. Errors: one line, exit 2."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from edge.errors import PinganError
from edge.shared.securefs import private_dir

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Pingan monitoring-centre hub.")
nodes_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Node identities and keys.")
app.add_typer(nodes_app, name="nodes")
app.add_typer(__import__("hub.cli.db", fromlist=["db_app"]).db_app, name="db")
app.add_typer(__import__("hub.cli.sensitive", fromlist=["sensitive_app"]).sensitive_app, name="sensitive")


SYSTEMD_DEFAULT_NOFILE = 1024  # the soft limit a unit without LimitNOFILE= gets


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _settings(**overrides: object):  # noqa: ANN202 - HubSettings, imported lazily
    from hub.config import load_settings

    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except PinganError as exc:
        _fail(str(exc))


def pick_port(host: str, port: int, tries: int = 50) -> int:
    """The requested port, or the next free one (the demo must start even if 8000 is taken)."""
    import socket

    for candidate in range(port, port + tries):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, candidate))
            except OSError:
                continue
            return candidate
    _fail(f"no free port between {port} and {port + tries - 1} on {host}")
    return port


@app.command()
def serve(port: Annotated[int | None, typer.Option(help="HTTP port (PINGAN_HTTP_PORT)")] = None,
          host: Annotated[str | None, typer.Option(help="HTTP host (PINGAN_HTTP_HOST)")] = None,
          exact_port: Annotated[bool, typer.Option(help="Fail instead of taking the next free port")] = False,
          cert: Annotated[Path | None, typer.Option(help="HTTPS: the server certificate (PEM, with its chain)")] = None,
          key: Annotated[Path | None, typer.Option(help="HTTPS: the certificate's private key (PEM)")] = None,
          tls_name: Annotated[list[str] | None, typer.Option(help=(
              "HTTPS with a certificate from the hub's CA for this LAN name or address (repeat), e.g. "
              "--tls-name hub.lan --tls-name 192.168.1.10; phones trust the CA once (docs/responders.md)"))] = None,
          ca_dir: Annotated[Path | None, typer.Option(help=(
              "The CA folder for --tls-name (default PINGAN_DATA_DIR/pki; the broker's, from `broker config "
              "--out`, to use one CA for both)"))] = None,
          verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Run the hub: MQTT ingest, REST API, live WebSocket and dashboard (HTTPS with --cert/--key or --tls-name:
    phones need it for the responder app's location, camera and service worker)."""
    _logging(verbose)
    settings = _settings(http_port=port, http_host=host)
    certfile, keyfile = _https_files(settings, cert, key, tls_name, ca_dir)
    import uvicorn

    from hub.app import create_app

    chosen = settings.http_port if exact_port else pick_port(settings.http_host, settings.http_port)
    if chosen != settings.http_port:
        typer.echo(f"port {settings.http_port} is taken; using {chosen}")
    try:
        application = create_app(settings)
    except PinganError as exc:
        _fail(str(exc))
    scheme = "https" if certfile else "http"
    typer.echo(f"Pingan hub on {scheme}://{settings.http_host}:{chosen}  (API docs: /docs; responders' app: /r/)",
               err=True)
    if settings.http_host not in ("127.0.0.1", "localhost", "::1") and not certfile:
        typer.echo("serving beyond loopback: staff log in (pingan-hub users add); use HTTPS in the field "
                   "(--tls-name or --cert/--key, docs/responders.md)", err=True)
    # proxy_headers off: uvicorn would believe X-Forwarded-For from loopback; the app believes it only from
    # PINGAN_TRUSTED_PROXIES (hub/app.py)
    uvicorn.run(application, host=settings.http_host, port=chosen, log_level="warning", proxy_headers=False,
                ssl_certfile=certfile, ssl_keyfile=keyfile)


def _https_files(settings: Any, cert: Path | None, key: Path | None, names: list[str] | None,
                 ca_dir: Path | None) -> tuple[str | None, str | None]:
    """uvicorn's ssl_certfile/ssl_keyfile from --cert/--key, or issued by the hub's CA for --tls-name; None for HTTP."""
    if (cert is None) != (key is None):
        _fail("HTTPS needs both --cert and --key")
    if cert is not None and names:
        _fail("give either --cert/--key or --tls-name, not both")
    if cert is not None and key is not None:
        for p in (cert, key):
            if not p.is_file():
                _fail(f"{p}: no such file")
        try:
            import ssl as _ssl

            _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        except (OSError, ValueError) as exc:
            _fail(f"{cert} / {key}: not a usable certificate and key ({exc})")
        return str(cert), str(key)
    if not names:
        return None, None
    from hub.nodes.pki import https_cert

    folder = ca_dir or settings.data_dir / "pki"
    try:
        key_path, crt_path, ca_crt = https_cert(folder, list(names))
    except (OSError, ValueError) as exc:
        _fail(f"could not issue the HTTPS certificate in {folder}: {exc}")
    typer.echo(f"HTTPS certificate for {', '.join(names)} from the CA {ca_crt}: install that file on the phones "
               "once (docs/responders.md)", err=True)
    return str(crt_path), str(key_path)


@app.command()
def demo(poles: Annotated[int, typer.Option(min=1, max=200, help="Simulated alarm poles")] = 20,
         doors: Annotated[int | None, typer.Option(min=0, max=1600, help="Simulated rental doors (default 100)")]
         = None,
         blocks: Annotated[int | None, typer.Option(min=1, max=200, help="Rental blocks the doors are in")] = None,
         port: Annotated[int, typer.Option(help="Preferred HTTP port")] = 8000,
         workdir: Annotated[Path, typer.Option(help="Where the demo keeps its state")] = Path(".pingan-demo"),
         keep: Annotated[bool, typer.Option(help="Keep the previous demo's data")] = False) -> None:
    """A street on this machine: a broker, the hub and simulated alarm poles. Ctrl-C stops all."""
    _logging(False)
    from hub.cli.demo import run_demo

    try:
        run_demo(poles=poles, port=pick_port("127.0.0.1", port), workdir=workdir, keep=keep, doors=doors,
                 blocks=blocks)
    except PinganError as exc:
        _fail(str(exc), 1)


@nodes_app.command("add")
def nodes_add(node_id: Annotated[str, typer.Argument(help="e.g. pole-21")],
              kind: Annotated[str, typer.Option(help="alarm_post or rental_door")] = "alarm_post",
              grid: Annotated[str, typer.Option(help="Grid (网格) id")] = "",
              place: Annotated[str, typer.Option(help="Where it stands")] = "",
              at: Annotated[str | None, typer.Option(help="LAT,LON")] = None,
              broker_url: Annotated[str, typer.Option(help=(
                  "Broker address the node will use: mqtts:// (the TLS listener of broker config)"))]
              = "mqtts://hub.district.lan:8883",
              out: Annotated[Path, typer.Option(help="Folder for the node bundle")] = Path("bundles"),
              ca: Annotated[Path | None, typer.Option(help="The broker's ca.crt, for mqtts:// nodes")] = None,
              auth: Annotated[str, typer.Option(help=(
                  "password (an MQTT user and password) or cert (a client certificate from the hub's CA "
                  "next to --ca; the node dials the broker's --cert-port listener)"))] = "password",
              block_key_file: Annotated[Path | None, typer.Option(
                  help="Doors: the block's template key file (made if missing; keep it for the block's "
                       "other doors, the hub never stores it)")] = None,
              insecure_plain: Annotated[bool, typer.Option(
                  "--insecure-plain", help=("Allow an mqtt:// broker url beyond loopback: the node's password "
                                            "and its commands cross the network in clear"))] = False,
              gb_id: Annotated[str | None, typer.Option(
                  "--gb-id", help=("City networking (GB/T 28181): the node's 20-digit ID as the city assigned it "
                                   "(a pole's camera, type 132; a door's, 134); default: made from "
                                   "PINGAN_GB_CIVIL_CODE (docs/gb28181.md)"))] = None) -> None:
    """Create a node's identity (signing key, MQTT user) and write its bundle for the installer."""
    from urllib.parse import urlparse

    from edge.protocol import check_node_id
    from hub.app import HubState
    from hub.nodes.fleet import Fleet, ensure_block_key, is_loopback, node_config_for, write_bundle

    try:
        check_node_id(node_id)
    except ValueError as exc:
        _fail(str(exc))
    if kind not in ("alarm_post", "rental_door"):
        _fail("--kind must be alarm_post or rental_door")
    if auth not in ("password", "cert"):
        _fail("--auth must be password or cert")
    url = urlparse(broker_url)
    if url.scheme == "mqtt" and not is_loopback(url.hostname or "") and not insecure_plain:
        _fail(f"--broker-url {broker_url} is plain MQTT: the node's password and commands would cross the "
              "network in clear. Use mqtts://HOST:8883 with --ca (the TLS listener of `pingan-hub broker "
              "config`), or add --insecure-plain for a closed test network")
    if url.scheme == "mqtts" and ca is None and auth == "password":
        typer.secho("note: no --ca: the node will check the broker's certificate against its system CAs; give "
                    "--ca BROKER_DIR/ca.crt for the hub's own CA", fg=typer.colors.YELLOW, err=True)
    if auth == "cert" and (ca is None or not broker_url.startswith("mqtts://")):
        _fail("--auth cert needs --ca DIR/ca.crt (the broker folder, which holds ca.key) and an mqtts:// "
              "--broker-url (the broker's --cert-port listener)")
    lat = lon = None
    if at:
        try:
            lat, lon = (float(x) for x in at.split(","))
        except ValueError:
            _fail("--at must be LAT,LON, e.g. 24.4872,118.1121")
    state = HubState(_settings(mqtt_enabled=False))
    fleet = Fleet(state.engine, state.service)
    if gb_id is not None:
        from hub.gb28181 import catalog, ids

        try:
            ids.check_gb_id(gb_id, kind=kind)
            catalog.check_free(state.engine, gb_id, node_id)
        except PinganError as exc:
            _fail(str(exc))
    try:
        if ca is not None and not ca.is_file():
            _fail(f"--ca {ca}: no such file (pingan-hub broker config --tls-port writes ca.crt)")
        made = fleet.add(node_id, kind=kind, grid=grid, place=place, lat=lat, lon=lon,
                         ca_dir=ca.parent if auth == "cert" and ca is not None else None)
        if gb_id is not None:
            from hub.gb28181 import catalog

            catalog.set_gb_id(state.engine, node_id, gb_id)
        config = node_config_for(node_id, kind, grid, place, lat, lon, broker_url)
        if ca is not None:
            config["mqtt"]["ca_file"] = "/etc/pingan/ca.crt"
        if auth == "cert":
            config["mqtt"]["client_cert"] = "/etc/pingan/mqtt-client.crt"
        block_key = None
        if kind == "rental_door":
            if block_key_file is None:
                _fail("a door needs --block-key-file (one file per block, shared by its doors)")
            block_key = ensure_block_key(block_key_file)
        bundle = write_bundle(made, config, out, ca_crt=ca, block_key=block_key)
    except PinganError as exc:
        _fail(str(exc))
    if bundle:
        typer.echo(f"bundle: {bundle}  (copy it to the node: pingan-edge install {bundle.name})")
    typer.echo("run `pingan-hub broker config --out DIR --reload` so the broker knows the new user")
    typer.echo(f"registered {node_id}; its command-signing key (also in the bundle):\n{made.signing_key}")


@nodes_app.command("remove")
def nodes_remove(node_id: Annotated[str, typer.Argument(help="Node id")]) -> None:
    """Revoke a node: its MQTT user and signing key are dropped (reload the broker afterwards)."""
    from hub.app import HubState
    from hub.nodes.fleet import Fleet

    state = HubState(_settings(mqtt_enabled=False))
    try:
        Fleet(state.engine, state.service).remove(node_id)
    except PinganError as exc:
        _fail(str(exc))
    typer.echo(f"removed {node_id}; run `pingan-hub broker config --out DIR --reload` to lock it out")


@nodes_app.command("renew-cert")
def nodes_renew_cert(node_id: Annotated[str, typer.Argument(help="Node id (one added with --auth cert)")],
                     ca: Annotated[Path, typer.Option(help="The broker folder's ca.crt (ca.key next to it), "
                                                           "as given to `nodes add --ca`")],
                     out: Annotated[Path, typer.Option(help="Folder for the new certificate and key")]
                     = Path("bundles"),
                     days: Annotated[int, typer.Option(min=1, max=3650, help="Validity in days")] = 825,
                     revoke_old: Annotated[bool, typer.Option(
                         "--revoke-old", help="Revoke the node's earlier certificates now (a lost or stolen "
                                              "key); it is offline until the new one is installed")] = False,
                     ) -> None:
    """Issue a node a fresh client certificate and key from the hub's CA (same CN, the node id)."""
    import datetime as dt

    from cryptography import x509

    from edge.shared.yamlconfig import atomic_write
    from hub.app import HubState
    from hub.nodes.fleet import Fleet

    if not ca.is_file():
        _fail(f"--ca {ca}: no such file (the broker folder of `pingan-hub broker config` holds ca.crt)")
    state = HubState(_settings(mqtt_enabled=False))
    try:
        key_pem, cert_pem, serial = Fleet(state.engine, state.service).renew_cert(
            node_id, ca.parent, days=days, revoke_old=revoke_old)
    except PinganError as exc:
        _fail(str(exc))
    folder = out / f"{node_id}.client-cert"
    for private in (folder, folder / "credentials"):  # the key's folders are the installer's alone
        private.mkdir(mode=0o700, parents=True, exist_ok=True)
        private.chmod(0o700)
    atomic_write(folder / "mqtt-client.crt", cert_pem, mode=0o644)
    atomic_write(folder / "credentials" / "mqtt-client-key", key_pem, mode=0o600)
    until = x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
    typer.echo(f"renewed the client certificate of {node_id} (CN {node_id}, serial {serial:x}), valid until "
               f"{until:%Y-%m-%d} ({round((until - dt.datetime.now(dt.UTC)).total_seconds() / 86400)} days)")
    typer.echo(f"wrote {folder}/mqtt-client.crt and {folder}/credentials/mqtt-client-key (secret: carry it "
               "to the node, then delete it)")
    typer.echo(f"""on {node_id} (as root), with the paths of its /etc/pingan/node.yaml:
  install -m 0644 mqtt-client.crt /etc/pingan/mqtt-client.crt
      # the file named by mqtt.client_cert (a bundle from `nodes add --auth cert` uses this path)
  install -m 0600 credentials/mqtt-client-key /etc/pingan/credentials/mqtt-client-key
      # systemd's LoadCredential hands it to the agent in $CREDENTIALS_DIRECTORY under the name in
      # mqtt.client_key_env (default PINGAN_MQTT_CLIENT_KEY)
  systemctl restart pingan-edge && pingan-edge doctor /etc/pingan/node.yaml""")
    if revoke_old:
        typer.echo("its earlier certificates are revoked: run `pingan-hub broker config --out DIR --cert-port N "
                   "--reload` so the broker's CRL refuses them")
    else:
        typer.echo("its earlier certificate stays valid until it expires; if its key may be lost or stolen, "
                   "renew with --revoke-old instead")


@nodes_app.command("rotate-key")
def nodes_rotate_key(node_id: Annotated[str, typer.Argument(help="Node id")],
                     out: Annotated[Path, typer.Option(help="Folder for the new key file")] = Path("bundles"),
                     ) -> None:
    """Give a node a new command-signing key (the old one stops working for commands at once)."""
    from edge.shared.yamlconfig import atomic_write
    from hub.app import HubState
    from hub.nodes.fleet import Fleet

    state = HubState(_settings(mqtt_enabled=False))
    try:
        key = Fleet(state.engine, state.service).rotate_signing_key(node_id)
    except PinganError as exc:
        _fail(str(exc))
    folder = out / f"{node_id}.node-key"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    atomic_write(folder / "node-key", key.encode(), mode=0o600)
    typer.echo(f"new command-signing key for {node_id} in {folder}/node-key; the hub signs with it from now on, "
               "so the node refuses commands until it has it. On the node (as root):\n"
               "  install -m 0600 node-key /etc/pingan/credentials/node-key   # loaded as key_env "
               "(default PINGAN_NODE_KEY)\n  systemctl restart pingan-edge")


@nodes_app.command("qr")
def nodes_qr(node_id: Annotated[str, typer.Argument(help="Pole id, e.g. pole-21")],
             svg: Annotated[Path | None, typer.Option(help="Write the printable sticker (SVG, with labels) here")]
             = None,
             png: Annotated[Path | None, typer.Option(help="Write the QR code alone (PNG) here")] = None,
             url: Annotated[str | None, typer.Option(help="The hub's address for phones (PINGAN_PUBLIC_URL)")] = None,
             revoke_older: Annotated[bool, typer.Option(help="Earlier stickers of this pole stop working")] = False,
             ) -> None:
    """A pole's patrol QR sticker: a signed token a patrol scans to check in (docs/notify.md, Patrols)."""
    from hub.app import HubState
    from hub.patrols.sticker import checkin_url, sticker_png, sticker_svg
    from hub.patrols.tokens import PatrolKeys

    if not svg and not png:
        _fail("say where to write the sticker: --svg FILE or --png FILE")
    settings = _settings(mqtt_enabled=False, **({"public_url": url} if url else {}))
    if not settings.public_url:
        _fail("the sticker needs the hub's address as phones reach it: --url https://hub.lan:8443 or "
              "PINGAN_PUBLIC_URL")
    if not settings.public_url.startswith("https://"):
        typer.secho("warning: phones give their position only to https:// pages", fg=typer.colors.YELLOW, err=True)
    state = HubState(settings)
    node = next((n for n in state.service.list_nodes() if n["id"] == node_id), None)
    if node is None:
        _fail(f"no node {node_id!r} (pingan-hub nodes list)")
        return
    if node["kind"] != "alarm_post":
        typer.secho(f"warning: {node_id} is a {node['kind']}, not a pole; patrol reports count poles only",
                    fg=typer.colors.YELLOW, err=True)
    keys = PatrolKeys(settings.data_dir)
    token = keys.sign(node_id, revoke_older=revoke_older)
    link = checkin_url(settings.public_url, token)
    for path in (svg, png):
        if path and not path.parent.is_dir():
            _fail(f"{path.parent} is not a folder")
    if svg:
        svg.write_text(sticker_svg(link, node_id, node.get("place") or "", node.get("grid") or "",
                                   token.split(".")[1]), encoding="utf-8")
        typer.echo(f"sticker for {node_id}: {svg}")
    if png:
        sticker_png(link, png)
        typer.echo(f"QR for {node_id}: {png}")
    if revoke_older:
        typer.echo(f"earlier stickers of {node_id} are refused from now on")


@nodes_app.command("qr-key")
def nodes_qr_key(rotate: Annotated[bool, typer.Option(help="New stickers get a new key; old ones stay valid")]
                 = False,
                 retire: Annotated[str | None, typer.Option(help="Refuse every sticker of this key (e.g. k1)")]
                 = None) -> None:
    """The patrol stickers' signing keys: list, rotate, retire."""
    from hub.errors import HubError
    from hub.patrols.tokens import PatrolKeys

    keys = PatrolKeys(_settings(mqtt_enabled=False).data_dir)
    try:
        if rotate:
            typer.echo(f"new sticker key {keys.rotate()}: print new stickers, then retire the old key")
        if retire:
            keys.retire(retire)
            typer.echo(f"stickers signed with {retire} are refused from now on")
    except HubError as exc:
        _fail(str(exc))
    for k in keys.list():
        state = "current" if k["current"] else "retired " + k["retired"][:10] if k["retired"] else "valid"
        typer.echo(f"{k['id']:<6} {state:<20} created {k['created'][:10]}")


@nodes_app.command("list")
def nodes_list() -> None:
    """Nodes known to the hub, with their state."""
    from hub.app import HubState

    state = HubState(_settings(mqtt_enabled=False))
    for n in state.service.list_nodes():
        typer.echo(f"{n['id']:<16} {n['kind']:<12} {n['state']:<8} grid={n['grid'] or '-':<6} "
                   f"last_seen={n['last_seen'] or '-'}")


@nodes_app.command("config")
def nodes_config(node_id: Annotated[str, typer.Argument(help="Node id, e.g. pole-21")],
                 file: Annotated[Path, typer.Argument(help="The node's new config (YAML, as node.yaml)")],
                 hub: Annotated[str, typer.Option(envvar="PINGAN_HUB_URL", help="The hub's address")]
                 = "http://127.0.0.1:8000",
                 user: Annotated[str | None, typer.Option(help="Log in as this installer/admin")] = None,
                 password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
                 check: Annotated[bool, typer.Option("--check", help="Only validate here; send nothing")] = False,
                 wait: Annotated[float, typer.Option(help="Seconds to wait for applied/rolled_back (0: don't)")]
                 = 0) -> None:
    """Push a config to a node (config.update): validated here and by the hub, tried by the node, which
    confirms it or rolls back by itself. Log in with --user, or set PINGAN_TOKEN to a bearer token."""
    import os

    from hub.nodes.config_push import ConfigInvalid, validate_for

    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"{file}: cannot read it: {exc}")
    try:
        validate_for(node_id, None, text)
    except ConfigInvalid as exc:
        _fail(str(exc))
    if check:
        typer.echo(f"{file}: a valid config for {node_id}")
        return
    token = os.environ.get("PINGAN_TOKEN")
    if user:
        password = sys.stdin.readline().rstrip("\r\n") if password_stdin else typer.prompt("Password", hide_input=True)
        token = _http(hub, "POST", "/api/login", None, {"username": user, "password": password})[1]["token"]
    if not token:
        _fail("log in with --user NAME (installer or admin), or set PINGAN_TOKEN")
    status, body = _http(hub, "POST", f"/api/nodes/{node_id}/config", token, {"yaml": text})
    if status == 422:
        _fail(body.get("message") or str(body.get("detail")))
    if status != 202:
        _fail(f"the hub answered {status}: {body.get('detail', body)}", 1)
    command_id = body["command_id"]
    typer.echo(f"sent config.update {command_id} to {node_id} (sha256 {body['sha256'][:12]})")
    if wait <= 0:
        typer.echo(f"follow it: GET {hub}/api/nodes/{node_id}/config/updates")
        return
    import time

    deadline, last = time.monotonic() + wait, None
    while time.monotonic() < deadline:
        found = [u for u in _http(hub, "GET", f"/api/nodes/{node_id}/config/updates", token)[1]
                 if u["command_id"] == command_id]
        state = found[0]["state"] if found else None
        if state != last and state is not None:
            reason = found[0].get("reason")
            typer.echo(f"{node_id}: {state}" + (f": {reason}" if reason else ""))
            last = state
        if state in ("applied", "rolled_back", "refused", "expired"):
            raise typer.Exit(0 if state == "applied" else 1)
        time.sleep(1)
    _fail(f"no outcome within {wait:g} s (last state: {last}); the node may still be trying it", 1)


def _http(hub: str, method: str, path: str, token: str | None, body: object = None) -> tuple[int, dict]:
    """A JSON request to the hub (stdlib only: the CLI must not need the dev extras)."""
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(hub.rstrip("/") + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            payload = json.loads(exc.read() or b"{}")
        except ValueError:
            payload = {"detail": exc.reason}
        if exc.code in (401, 403):
            _fail(f"the hub refused: {payload.get('detail', exc.reason)} (an installer or admin login is needed)", 1)
        return exc.code, payload if isinstance(payload, dict) else {"detail": payload}
    except (urllib.error.URLError, OSError) as exc:
        _fail(f"cannot reach the hub at {hub}: {exc}", 1)
    raise AssertionError("unreachable")


users_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                        help="Staff accounts of the console (operator, installer, admin).")
app.add_typer(users_app, name="users")


def _auth():  # noqa: ANN202 - hub.auth.Auth, imported lazily
    from hub.auth.service import Auth
    from hub.store.engine import init_db, make_engine

    settings = _settings(mqtt_enabled=False)
    private_dir(settings.data_dir)
    engine = make_engine(settings.db_url)
    try:
        init_db(engine)
    except PinganError as exc:
        _fail(str(exc))
    return Auth(engine)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def users_add(name: Annotated[str, typer.Argument(help="Login name, e.g. wang.li")],
              role: Annotated[str, typer.Option(
                  help="operator, installer, admin or responder (a phone login, docs/responders.md)")] = "operator",
              password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                           help="Read the password from stdin's first line")] = False,
              replace: Annotated[bool, typer.Option(help="Change an existing user's password and role")] = False,
              ) -> None:
    """Create a staff account (the first one: `pingan-hub users add NAME --role admin`)."""
    from hub.auth.service import AuthError

    auth = _auth()
    try:
        auth.add_user(name, _read_password(password_stdin), role, actor="cli", replace=replace)
    except AuthError as exc:
        _fail(str(exc))
    typer.echo(f"{'updated' if replace else 'added'} {name} ({role})")


@users_app.command("passwd")
def users_passwd(name: Annotated[str, typer.Argument(help="Login name")],
                 password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False) -> None:
    """Set a new password (ends the user's sessions)."""
    from hub.auth.service import AuthError

    auth = _auth()
    found = [u for u in auth.list_users() if u["username"] == name]
    if not found:
        _fail(f"no user {name}")
    try:
        auth.add_user(name, _read_password(password_stdin), found[0]["role"], actor="cli", replace=True)
    except AuthError as exc:
        _fail(str(exc))
    typer.echo(f"password of {name} changed")


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="Login name")],
                  enable: Annotated[bool, typer.Option("--enable", help="Enable again instead")] = False) -> None:
    """Disable (or --enable) an account; a disabled user's sessions end at once."""
    from hub.auth.service import AuthError

    try:
        _auth().set_disabled(name, not enable)
    except AuthError as exc:
        _fail(str(exc))
    typer.echo(f"{name} {'enabled' if enable else 'disabled'}")


@users_app.command("list")
def users_list() -> None:
    """Staff accounts."""
    for u in _auth().list_users():
        typer.echo(f"{u['username']:<20} {u['role']:<10} {'disabled' if u['disabled'] else 'active'}")


grids_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                        help="The district's grid boundaries on the console's map.")
app.add_typer(grids_app, name="grids")


@grids_app.command("import")
def grids_import(file: Annotated[Path, typer.Argument(help="The district's grids: a GeoJSON FeatureCollection of "
                                                           "Polygons/MultiPolygons in WGS84 lon/lat")],
                 name_property: Annotated[str | None, typer.Option(
                     help="The property that names each grid (default: name, grid or code)")] = None) -> None:
    """Replace the grids with the file's (all or nothing: a file with one bad feature stores nothing)."""
    from hub.map.grids import import_grids
    from hub.store.engine import init_db, make_engine

    settings = _settings(mqtt_enabled=False)
    private_dir(settings.data_dir)
    engine = make_engine(settings.db_url)
    try:
        init_db(engine)
        n = import_grids(engine, file, name_property)
    except PinganError as exc:
        _fail(str(exc))
    finally:
        engine.dispose()
    typer.echo(f"imported {n} grids from {file} / 已导入 {n} 个网格")


broker_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                         help="The MQTT broker's users and ACL for the fleet.")
app.add_typer(broker_app, name="broker")


@broker_app.command("config")
def broker_config(out: Annotated[Path, typer.Option(help="Folder for mosquitto.conf, passwords, acl")],
                  port: Annotated[int, typer.Option(help=(
                      "Plain listener for the hub on this box, on 127.0.0.1 only (0: none)"))] = 1883,
                  bind: Annotated[str, typer.Option(help="Address of the node listeners (TLS)")] = "0.0.0.0",
                  reload: Annotated[bool, typer.Option(help="SIGHUP the broker running from this folder")]
                  = False,
                  tls_port: Annotated[int, typer.Option(help="TLS listener for nodes with passwords (0: none)")]
                  = 8883,
                  hostname: Annotated[list[str] | None, typer.Option(
                      help="Names/addresses nodes dial, for the broker's certificate (repeat)")] = None,
                  cert_port: Annotated[int | None, typer.Option(
                      help="TLS listener for nodes with client certificates (nodes add --auth cert), e.g. 8884")]
                  = None,
                  insecure_plain_lan: Annotated[bool, typer.Option(
                      "--insecure-plain-lan", help=(
                          "Also open the plain port on --bind: node passwords and commands cross the network "
                          "in clear. Only for a closed test network"))] = False,
                  replica: Annotated[list[str] | None, typer.Option(
                      help="Hub replicas to make broker users for (repeat: --replica a --replica b); "
                           "default PINGAN_REPLICA")] = None) -> None:
    """Write mosquitto.conf, the password file and the ACL for the current fleet. Nodes get a TLS listener
    (8883); plain MQTT stays on loopback for the hub on this box. Run it as root: the broker drops to the
    user mosquitto, and the files it reads are made readable by that user's group."""
    from hub.app import HubState
    from hub.nodes.fleet import BROKER_USER, Fleet, is_loopback, unreachable_by_broker

    if insecure_plain_lan and not port:
        _fail("--insecure-plain-lan needs a plain --port")
    if not (tls_port or cert_port or (insecure_plain_lan and port) or is_loopback(bind)):
        _fail("no listener for nodes: give --tls-port or --cert-port")
    state = HubState(_settings(mqtt_enabled=False))
    fleet = Fleet(state.engine, state.service)
    names = tuple(hostname or ["localhost", "127.0.0.1"])
    try:
        conf = fleet.write_broker_config(out, port=port, bind=bind,
                                         replicas=tuple(replica or [state.settings.replica]),
                                         tls_port=tls_port or None, tls_hostnames=names, cert_port=cert_port,
                                         plain_lan=insecure_plain_lan)
    except PinganError as exc:
        _fail(str(exc))
    if cert_port:
        typer.echo(f"client-certificate listener on {cert_port}: nodes add --auth cert --ca {out / 'ca.crt'} "
                   f"--broker-url mqtts://HOST:{cert_port}")
    if tls_port:
        typer.echo(f"TLS listener for nodes on {bind}:{tls_port}; give nodes {out / 'ca.crt'} "
                   f"(pingan-hub nodes add --ca ... --broker-url mqtts://HOST:{tls_port})")
        if not hostname:
            typer.secho("warning: the broker's certificate names only localhost and 127.0.0.1: give --hostname "
                        "with the name or address nodes dial", fg=typer.colors.YELLOW, err=True)
    if port:
        where = bind if insecure_plain_lan else "127.0.0.1"
        typer.echo(f"plain listener on {where}:{port} (the hub: PINGAN_MQTT_URL=mqtt://127.0.0.1:{port})")
    if insecure_plain_lan and not is_loopback(bind):
        typer.secho(f"warning: --insecure-plain-lan: port {port} on {bind} is not encrypted; node passwords and "
                    "commands cross the network in clear", fg=typer.colors.YELLOW, err=True)
    problem = unreachable_by_broker(out, BROKER_USER)
    if problem:
        typer.secho(f"warning: {problem}: mosquitto started as root will fail to read its files; choose a "
                    "folder it can reach, e.g. /etc/pingan/broker", fg=typer.colors.YELLOW, err=True)
    users = len(fleet.active_users())
    typer.echo(f"wrote {conf} ({users} node users); start it with: mosquitto -c {conf}")
    for name in replica or [state.settings.replica]:
        typer.echo(f"hub replica {name}: broker user pingan-hub-{name}, password in "
                   f"{out / f'pingan-hub-{name}.password'} (set PINGAN_MQTT_USERNAME/PINGAN_MQTT_PASSWORD)")
    if reload:
        typer.echo("broker reloaded" if Fleet.reload_broker(out) else "no running broker found to reload")
    _check_open_files(state.engine, out)


def _check_open_files(engine: Any, out: Path) -> None:
    """One open file per connected node: say so before the broker refuses nodes silently (docs/scale.md 7.7)."""
    from hub.nodes import broker_headroom as room

    count = room.registered_nodes(engine)
    pid = room.pid_from_file(out)
    limit = None if pid is None else room.open_files_limit(pid)
    if limit is not None:
        problem = room.Headroom(limit, count).problem()
        if problem:
            typer.secho(f"warning: {problem}", fg=typer.colors.YELLOW, err=True)
        else:
            typer.echo(f"the running broker may open {limit} files: enough for {count} nodes")
    elif room.needed(count) > SYSTEMD_DEFAULT_NOFILE:
        typer.secho(f"note: {count} nodes need about {room.needed(count)} open files in the broker; under systemd "
                    f"it gets {SYSTEMD_DEFAULT_NOFILE} unless told: {room.FIX}", fg=typer.colors.YELLOW, err=True)


def main() -> None:
    try:
        app()
    except PinganError as exc:  # e.g. an outdated PostgreSQL schema met by any command: one line, exit 2
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
