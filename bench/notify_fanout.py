"""One alarm to 50 responders through the webhook channels: time until every one is delivered.

The hub's Notifier (hub/notify) against a local HTTP receiver that plays the WeCom robot, the DingTalk
robot (checking its signature) and an SMS gateway, as in tests/hub/test_notify.py. Three ways the
notice can go, each timed ``--rounds`` times from ``notify()`` until the last delivery is recorded
(deliveries written to the SQLite store included):

* wecom: the WeCom group robot takes it (one message, 50 @-mentions);
* failover: WeCom refuses (rate limit), the signed DingTalk robot takes it;
* sms only: no robot configured, 50 SMS requests in parallel to the gateway;
* sms after hung robots: both robots hang, each cut off by its timeout (0.2 s here; 4 s by default,
  PINGAN_NOTIFY_TIMEOUT_S, which this path then pays twice), then 50 SMS in parallel.

The machine's load average is printed with the figures: on a shared, oversubscribed machine the
per-request figures (SMS: one request per responder) grow with it.

Target (issue 18): one alarm to 50 responders through the webhook channels <= 1 s.

    .venv/bin/python bench/notify_fanout.py [--responders 50] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.notify.channels import DingTalkRobot, SmsGateway, WeComRobot  # noqa: E402
from hub.notify.models import Notice  # noqa: E402
from hub.notify.service import Notifier  # noqa: E402
from hub.store.engine import init_db, make_engine, now_utc  # noqa: E402
from hub.store.schema import notify_contacts, users  # noqa: E402
from tests.hub.notify_peers import DINGTALK_SECRET  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class RemoteReceiver:
    """The receiver process's address; requests are counted from the deliveries instead."""

    def __init__(self, url: str) -> None:
        self.url = url

TEMPLATE = "【平安】{kind_zh} {place}（{grid}）{text} {url}"
BODY = '{"to": "{phone}", "text": "{message}"}'


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--responders", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    # the receiver runs in a process of its own: in this one its 50 handler threads would share our GIL
    peer = subprocess.Popen([sys.executable, "-m", "tests.hub.notify_peers"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = peer.stdout.readline().strip() if peer.stdout else ""
        run(args, url)
    finally:
        if peer.stdin:
            peer.stdin.close()
        peer.wait(10)


def run(args: argparse.Namespace, url: str) -> None:
    rx = RemoteReceiver(url)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'hub.db'}")
        init_db(engine)
        names = [f"resp{i:03d}" for i in range(args.responders)]
        with engine.begin() as conn:  # accounts made directly: 50 argon2 hashes would only time the hasher
            conn.execute(users.insert(), [{"username": n, "password_hash": "-", "role": "operator",
                                           "disabled": False, "created": now_utc()} for n in names])
            conn.execute(notify_contacts.insert(), [{"username": n, "phone": f"1380000{i:04d}", "updated": now_utc()}
                                                    for i, n in enumerate(names)])

        def robots(wecom: str, dingtalk: str, robot_timeout: float | None = None) -> list:  # noqa: ANN202
            out = [WeComRobot(f"{rx.url}/wecom/{wecom}?key=robot-key"),
                   DingTalkRobot(f"{rx.url}/dingtalk/{dingtalk}?access_token=robot-token", DINGTALK_SECRET)]
            for robot in out:
                robot.timeout_s = robot_timeout
            return [*out, SmsGateway(f"{rx.url}/sms/ok", "sms-token", TEMPLATE, BODY)]

        cases = [("wecom", robots("ok", "ok"), "wecom"),
                 ("failover wecom->dingtalk", robots("fail", "ok"), "dingtalk"),
                 ("sms only (no robots configured)", robots("ok", "ok")[2:], "sms"),
                 ("sms after hung robots (0.2 s timeouts)", robots("hang", "hang", 0.2), "sms")]
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"one alarm to {args.responders} responders, {args.rounds} rounds each (target <= 1 s); "
              f"{os.cpu_count()} CPUs, load average {load}")
        print(f"{'path':<40} {'p50 ms':>8} {'max ms':>8} {'requests/alarm':>15}  all delivered")
        for label, channels, via in cases:
            notifier = Notifier(engine, channels, timeout_s=4.0)
            times: list[float] = []
            requests = [0]

            async def rounds(notifier: Notifier = notifier, label: str = label, via: str = via,
                             times: list[float] = times, requests: list[int] = requests) -> bool:
                ok = True
                try:
                    for i in range(args.rounds):
                        t0 = time.perf_counter()
                        out = await notifier.notify(names, Notice(alarm=f"bench-{label[:8]}-{i}", node="pole-01",
                                                                  place="东门", grid="G01", kind="alarm.pressed",
                                                                  text="bench", url="https://hub.lan/r/x"))
                        times.append(time.perf_counter() - t0)
                        requests[0] += len({d.channel for d in out if d.channel in ("wecom", "dingtalk")}) + sum(
                            1 for d in out if d.channel == "sms" and d.status != "skipped")
                        sent = {d.recipient for d in out if d.status == "sent" and d.channel == via}
                        ok = ok and sent == set(names)
                finally:
                    await notifier.aclose()
                return ok

            ok = asyncio.run(rounds())
            per_alarm = requests[0] / args.rounds
            print(f"{label:<40} {statistics.median(times) * 1000:8.1f} {max(times) * 1000:8.1f} {per_alarm:15.0f}"
                  f"  {'yes' if ok else 'NO'}")
        engine.dispose()


if __name__ == "__main__":
    main()
