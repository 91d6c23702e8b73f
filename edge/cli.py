"""``pingan-edge``: run a node, and act on simulated nodes. Errors are one clear line, exit 2."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from edge.config import load_node_config, sim_socket_path
from edge.errors import ConfigError, PinganError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Pingan node agent: alarm poles and rental-block doors.")
sim_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                      help="Act on a node running with simulated (mock) hardware.")
app.add_typer(sim_app, name="sim")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@app.command()
def run(config: Annotated[Path, typer.Argument(help="The node's YAML config")],
        verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Run the node agent until stopped (SIGINT/SIGTERM); a config.update from the hub restarts it."""
    _setup_logging(verbose)
    try:
        load_node_config(config)
    except ConfigError as exc:
        _fail(str(exc))
    from edge.agent.updates import run_node_with_updates

    try:
        run_node_with_updates(config)
    except ConfigError as exc:
        _fail(str(exc))
    except PinganError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        pass


@app.command()
def check(config: Annotated[Path, typer.Argument(help="The node's YAML config")]) -> None:
    """Validate a node config and print it with defaults filled in."""
    try:
        cfg = load_node_config(config)
    except ConfigError as exc:
        _fail(str(exc))
    typer.echo(cfg.model_dump_json(indent=2))


def _control(node: str, request: dict, socket: Path | None) -> dict:
    from edge.sim.control import send_control

    try:
        answer = send_control(socket or sim_socket_path(node), request)
    except PinganError as exc:
        _fail(str(exc), 1)
    if not answer.get("ok"):
        _fail(answer.get("error", "the node refused the request"), 1)
    return answer


SocketOpt = Annotated[Path | None, typer.Option("--socket", help="Control socket (default from node id)")]


@sim_app.command()
def press(node: Annotated[str, typer.Argument(help="Node id, e.g. pole-07")],
          times: Annotated[int, typer.Option(help="Press this many times")] = 1,
          hold: Annotated[float, typer.Option(help="Seconds to hold each press")] = 0.2,
          socket: SocketOpt = None) -> None:
    """Press a simulated pole's one-key alarm button."""
    answer = _control(node, {"cmd": "press", "times": times, "hold_s": hold}, socket)
    state = answer["state"]
    alarm = state.get("alarm") or {}
    typer.echo(f"{node}: pressed; alarm {alarm.get('id', '-')} (presses {alarm.get('count', 0)}), "
               f"LED {state['led']}")


@sim_app.command()
def tamper(node: Annotated[str, typer.Argument(help="Node id")],
           close: Annotated[bool, typer.Option("--close", help="Shut the enclosure again")] = False,
           socket: SocketOpt = None) -> None:
    """Open (or with --close, shut) a simulated node's enclosure."""
    answer = _control(node, {"cmd": "tamper", "open": not close}, socket)
    typer.echo(f"{node}: enclosure {answer['state']['enclosure']}")


@sim_app.command()
def state(node: Annotated[str, typer.Argument(help="Node id")], socket: SocketOpt = None) -> None:
    """Print a simulated node's LED, siren, alarm and outbox state as JSON."""
    typer.echo(json.dumps(_control(node, {"cmd": "state"}, socket)["state"], indent=2))


@sim_app.command()
def finger(node: Annotated[str, typer.Argument(help="Door node id, e.g. door-b01-01")],
           which: Annotated[str, typer.Argument(
               help="Simulated finger number (with reader.sim_enrolled N, finger K sits in slot K), "
                    "'unknown' for a finger nobody enrolled, or 'none' to lift it")],
           hold: Annotated[bool, typer.Option("--hold", help="Leave the finger on the glass")] = False,
           hold_s: Annotated[float, typer.Option(help="Seconds on the glass for a touch")] = 0.6,
           socket: SocketOpt = None) -> None:
    """Touch a simulated door's fingerprint reader with a finger."""
    if which not in ("unknown", "none") and not which.isdigit():
        _fail("the finger is a number, 'unknown' or 'none'")
    answer = _control(node, {"cmd": "finger", "finger": which, "hold": hold, "hold_s": hold_s}, socket)
    s = answer["state"]
    typer.echo(f"{node}: finger {which}; lock {s['lock']}, grants {s['grants']}, denials {s['denials']}"
               + (f", locked out {s['lockout_s']} s" if s["lockout_s"] else ""))


@sim_app.command()
def door(node: Annotated[str, typer.Argument(help="Door node id")],
         action: Annotated[str, typer.Argument(help="open or close")],
         socket: SocketOpt = None) -> None:
    """Open or close a simulated door leaf (its door contact)."""
    if action not in ("open", "close"):
        _fail("say open or close")
    answer = _control(node, {"cmd": "door", "state": "open" if action == "open" else "shut"}, socket)
    typer.echo(f"{node}: door {answer['state']['door']}, lock {answer['state']['lock']}")


@sim_app.command()
def fire(node: Annotated[str, typer.Argument(help="Door node id")],
         action: Annotated[str, typer.Argument(help="on or off")],
         socket: SocketOpt = None) -> None:
    """Switch a simulated door's fire-alarm input on or off."""
    if action not in ("on", "off"):
        _fail("say on or off")
    answer = _control(node, {"cmd": "fire", "state": action}, socket)
    typer.echo(f"{node}: fire input {action}, lock {answer['state']['lock']}")


@sim_app.command("exit")
def exit_button(node: Annotated[str, typer.Argument(help="Door node id")], socket: SocketOpt = None) -> None:
    """Press a simulated door's exit button."""
    answer = _control(node, {"cmd": "exit"}, socket)
    typer.echo(f"{node}: exit pressed, lock {answer['state']['lock']}")


@sim_app.command()
def reader(enrolled: Annotated[int, typer.Option(min=0, max=1000, help="Fingers enrolled at start")] = 0) -> None:
    """Run a simulated R30x fingerprint reader on a new pty; prints the pty path first."""
    from edge.sim.reader import serve

    serve(enrolled=enrolled)


def config_schema_text() -> str:
    from edge.config import NodeConfig

    return json.dumps(NodeConfig.model_json_schema(), indent=2, ensure_ascii=False) + "\n"


@app.command()
def schema() -> None:
    """Print the JSON schema of the node config (firmware_config/node-config.schema.json)."""
    typer.echo(config_schema_text(), nl=False)


@app.command()
def detect(source: Annotated[str, typer.Argument(help="Video file, image, /dev/videoN, rtsp:// URL or 'synthetic'")],
           config: Annotated[Path | None, typer.Option(help="YAML with a vision: section (zones, masks ...)")] = None,
           all_frames: Annotated[bool, typer.Option("--all-frames", help="Run the detector on every frame")]
           = False,
           max_frames: Annotated[int | None, typer.Option(help="Stop after this many frames")] = None) -> None:
    """Run the vision pipeline on footage; one JSON object per line (detections and events)."""
    from edge.vision.cli import run_detect

    try:
        code = run_detect(source, config, all_frames, max_frames)
    except ConfigError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


@app.command()
def doctor(config: Annotated[Path, typer.Argument(help="The node's YAML config")] = Path("/etc/pingan/node.yaml"),
           confirm: Annotated[bool, typer.Option("--confirm", help="Ask whether the lock clicked")] = False,
           ) -> None:
    """Check config, secrets, pins, reader, camera, broker, disk, clock and watchdog; a fix for each failure."""
    from edge.installer.doctor import Doctor

    ask = (lambda question: typer.confirm(question, default=False)) if confirm else None
    findings = Doctor(config, confirm=ask).run()
    for finding in findings:
        for line in finding.lines():
            typer.echo(line)
    failed = [f.name for f in findings if f.status == "fail"]
    typer.echo(f"\n{len(findings) - len(failed)} of {len(findings)} checks passed"
               + (f"; failed: {', '.join(failed)}" if failed else ""))
    raise typer.Exit(1 if failed else 0)


@app.command()
def wiring(config: Annotated[Path, typer.Argument(help="The node's YAML config")],
           svg: Annotated[Path | None, typer.Option("--svg", help="Also draw the header into this SVG file")] = None,
           ) -> None:
    """The Pi's 40-pin header with every configured connection, checked (docs/selftest.md "Wiring")."""
    from edge.config import load_node_config
    from edge.shared.wiring import wiring as draw

    try:
        text, picture = draw(load_node_config(config))
    except PinganError as exc:
        _fail(str(exc))
    typer.echo(text)
    if svg is not None:
        svg.write_text(picture, encoding="utf-8")
        typer.echo(f"wrote {svg}")


@app.command()
def install(bundle: Annotated[Path, typer.Argument(help="The node bundle from pingan-hub nodes add")],
            root: Annotated[Path, typer.Option(help="Install under this root (for images)")] = Path("/")) -> None:
    """Put a node bundle's config, credentials and systemd unit in place."""
    from edge.installer.bundle import install_bundle

    try:
        written = install_bundle(bundle, root)
    except PinganError as exc:
        _fail(str(exc))
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo("next: systemctl daemon-reload && systemctl enable --now pingan-edge; then pingan-edge doctor")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
