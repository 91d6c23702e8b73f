"""The fault scenarios at full size (issue 7), on real processes; CI runs short versions in
tests/e2e/test_faults.py. Each prints what was made, what the hub stored, lost and duplicated.

1. broker stopped for --outage seconds in the middle of a 1,000-event burst from 20 nodes
2. a node agent SIGKILLed --node-kills times while it sends, restarted each time
3. the hub SIGKILLed --hub-kills times during a steady stream, restarted each time

    .venv/bin/python bench/faults.py [--outage 60] [--node-kills 100] [--hub-kills 20] [--only 1,2,3]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.transport.broker import Broker  # noqa: E402
from tests.conftest import HubProc, NodeProc, wait_for  # noqa: E402


def stored_ids(hub: HubProc) -> list[str]:
    return hub.event_ids(kind="detection.person")


def report(name: str, made: set[str], stored: list[str], extra: str = "") -> bool:
    lost = len(made - set(stored))
    dup = len(stored) - len(set(stored))
    ok = lost == 0 and dup == 0 and set(stored) == made
    print(f"  {name:<44} made {len(made):6d}  stored {len(set(stored)):6d}  lost {lost}  duplicated {dup}"
          f"  {extra}  {'OK' if ok else 'FAILED'}", flush=True)
    return ok


def broker_outage(tmp: Path, sim: Path, outage: float) -> bool:
    broker = Broker(tmp / "broker").start()
    hub = HubProc(tmp, broker.url).start()
    nodes = [NodeProc(tmp, f"pole-{i:02d}", broker.url, sim, hub.register(f"pole-{i:02d}"),
                      outbox={"resend_after_s": 5}).start() for i in range(20)]
    made: set[str] = set()
    lock = threading.Lock()
    try:
        def burst(node: NodeProc) -> None:
            for _ in range(10):  # 50 events per node, 10 at a time, spread over the outage
                ids = node.control(cmd="emit", n=5)["ids"]
                with lock:
                    made.update(ids)
                time.sleep(outage / 20)

        threads = [threading.Thread(target=burst, args=(n,)) for n in nodes]
        for t in threads:
            t.start()
        time.sleep(outage / 4)
        broker.stop()
        t_down = time.monotonic()
        time.sleep(outage)
        broker.start()
        for t in threads:
            t.join()
        t0 = time.monotonic()
        wait_for(lambda: set(stored_ids(hub)) >= made, timeout=300, interval=0.5, message="all events stored")
        caught_up = time.monotonic() - t0
        return report(f"1. broker down {outage:.0f} s mid-burst, 20 nodes", made, stored_ids(hub),
                      f"(outage {time.monotonic() - t_down - caught_up:.0f} s, caught up in {caught_up:.1f} s)")
    finally:
        for n in nodes:
            n.stop()
        hub.stop()
        broker.stop()


def node_kills(tmp: Path, sim: Path, kills: int) -> bool:
    broker = Broker(tmp / "broker2").start()
    (tmp / "h2").mkdir(exist_ok=True)
    hub = HubProc(tmp / "h2", broker.url).start()
    node = NodeProc(tmp, "pole-50", broker.url, sim, hub.register("pole-50"), outbox={"resend_after_s": 2}).start()
    made: set[str] = set()
    try:
        for _ in range(kills):
            made |= set(node.control(cmd="emit", n=random.randint(5, 40))["ids"])
            time.sleep(random.uniform(0, 0.05))  # somewhere between enqueue, PUBACK and receipt
            node.kill()
            node.start()
        wait_for(lambda: set(stored_ids(hub)) >= made, timeout=300, interval=0.5, message="all events stored")
        return report(f"2. node SIGKILLed {kills} times while sending", made, stored_ids(hub))
    finally:
        node.stop()
        hub.stop()
        broker.stop()


def hub_kills(tmp: Path, sim: Path, kills: int) -> bool:
    broker = Broker(tmp / "broker3").start()
    (tmp / "h3").mkdir(exist_ok=True)
    hub = HubProc(tmp / "h3", broker.url).start()
    node = NodeProc(tmp, "pole-60", broker.url, sim, hub.register("pole-60"), outbox={"resend_after_s": 3}).start()
    made: set[str] = set()
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            made.update(node.control(cmd="emit", n=10)["ids"])
            time.sleep(0.05)

    streamer = threading.Thread(target=stream)
    streamer.start()
    try:
        for _ in range(kills):
            time.sleep(random.uniform(0.3, 1.0))
            hub.kill()
            hub.start()
        stop.set()
        streamer.join()
        wait_for(lambda: set(stored_ids(hub)) >= made, timeout=300, interval=0.5, message="all events stored")
        return report(f"3. hub SIGKILLed {kills} times mid-stream", made, stored_ids(hub))
    finally:
        stop.set()
        node.stop()
        hub.stop()
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outage", type=float, default=60)
    ap.add_argument("--node-kills", type=int, default=100)
    ap.add_argument("--hub-kills", type=int, default=20)
    ap.add_argument("--only", default="1,2,3")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pingan-faults-"))
    sim = Path(tempfile.mkdtemp(prefix="pingan-sim-"))
    print("bench/faults: real mosquitto, hub and node processes on loopback", flush=True)
    results = []
    if "1" in args.only:
        results.append(broker_outage(tmp, sim, args.outage))
    if "2" in args.only:
        results.append(node_kills(tmp, sim, args.node_kills))
    if "3" in args.only:
        results.append(hub_kills(tmp, sim, args.hub_kills))
    print(f"  all scenarios: {'OK' if all(results) else 'FAILED'}")


if __name__ == "__main__":
    main()
