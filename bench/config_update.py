"""config.update round trip on real servers: mosquitto, `pingan-hub serve`, one `pingan-edge run` pole.

For each of N good updates (the place name changes) it times, from the POST to the hub:
the node's "accepted" reply, the node back with the new config (its config.applied event, minus
the ``updates.settle_s`` the node waits on purpose before confirming), and config.applied at the hub.
Then one update the node cannot come up with (a button on GPIO2, whose fixed pull-up gpiozero
refuses) is timed to
config.rolled_back: by design about max_boots × trial_s plus the restarts. Figures printed; the
only target is that every update ends in the expected state.

    .venv/bin/python bench/config_update.py [--updates 5] [--trial-s 5] [--settle-s 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.config import SITE_FIELDS  # noqa: E402
from hub.transport.broker import Broker  # noqa: E402
from tests.conftest import HubProc, NodeProc, wait_for  # noqa: E402


def _state(hub: HubProc, node: str, command_id: str) -> dict:
    for u in hub.get(f"/api/nodes/{node}/config/updates"):
        if u["command_id"] == command_id:
            return u
    return {}


def push(hub: HubProc, proc: NodeProc, final: str, **changes: dict) -> tuple[float | None, float, dict]:
    cfg = yaml.safe_load(proc.config_path.read_text())
    for section, values in changes.items():
        cfg.setdefault(section, {}).update(values)
    for field in SITE_FIELDS:  # set on site, never pushed (the hub refuses them)
        section, _, name = field.rpartition(".")
        (cfg.get(section, {}) if section else cfg).pop(name, None)
    cfg = {k: v for k, v in cfg.items() if v != {}}
    t0 = time.perf_counter()
    r = hub.post(f"/api/nodes/{proc.node}/config", {"yaml": yaml.safe_dump(cfg)})
    if r.status_code != 202:
        raise SystemExit(f"push refused: {r.status_code} {r.text}")
    cid = r.json()["command_id"]
    accepted_at = None
    while True:
        u = _state(hub, proc.node, cid)
        if accepted_at is None and u.get("reply"):
            accepted_at = time.perf_counter() - t0
        if u.get("state") in ("applied", "rolled_back", "refused", "expired"):
            done = time.perf_counter() - t0
            if u["state"] != final:
                raise SystemExit(f"update {cid} ended {u['state']} ({u.get('reason')}), expected {final}")
            return accepted_at, done, u
        if time.perf_counter() - t0 > 300:
            raise SystemExit(f"update {cid}: no outcome in 300 s (last {u.get('state')})")
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--updates", type=int, default=5)
    ap.add_argument("--trial-s", type=float, default=5)
    ap.add_argument("--settle-s", type=float, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pingan-bench-"))
    sim = Path(tempfile.mkdtemp(prefix="pingan-sim-"))
    broker = Broker(tmp / "broker").start()
    hub = HubProc(tmp, broker.url).start()
    node = None
    accepted, applied, came_up = [], [], []
    try:
        node = NodeProc(tmp, "pole-01", broker.url, sim, hub.register("pole-01"),
                        updates={"trial_s": args.trial_s, "settle_s": args.settle_s, "max_boots": 2}).start()
        wait_for(lambda: any(n["state"] == "online" for n in hub.get("/api/nodes")), 60, message="pole online")
        for i in range(args.updates):
            acc, done, _ = push(hub, node, "applied", node={"place": f"Gate {i}"})
            accepted.append(acc or done)
            applied.append(done)
            came_up.append(done - args.settle_s)
            print(f"  update {i + 1}/{args.updates}: applied in {done:.2f} s", flush=True)
        acc, rolled, u = push(hub, node, "rolled_back", pins={"alarm_button": 2, "button_pull_up": False})
    finally:
        if node is not None:
            node.stop()
        hub.stop()
        broker.stop()

    def s(v: float) -> str:
        return f"{v:6.2f} s"

    print(f"bench/config_update: {args.updates} good updates + 1 bad, trial_s {args.trial_s:g}, "
          f"settle_s {args.settle_s:g}, max_boots 2, broker {broker.kind}")
    print(f"  POST -> node's 'accepted' reply      median {s(statistics.median(accepted))}  max {s(max(accepted))}")
    print(f"  POST -> node up with the new config  median {s(statistics.median(came_up))}  max {s(max(came_up))}"
          "   (applied minus settle_s)")
    print(f"  POST -> config.applied at the hub    median {s(statistics.median(applied))}  max {s(max(applied))}")
    print(f"  POST -> config.rolled_back (bad pin)  {s(rolled)}   boots {u.get('boots')}: {u.get('reason')}")
    print("  every update ended as expected: MET")


if __name__ == "__main__":
    main()
