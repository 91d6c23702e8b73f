"""Hypothesis-generated payloads on every topic the hub reads: nothing crashes ingest, every
message is acknowledged, and every refusal is counted (a few thousand here; bench/fuzz_ingest.py
runs 100,000+)."""

from __future__ import annotations

import json
import os
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.protocol import Topics
from hub.ingest.writer import Incoming
from hub.runtime import metrics
from tests.hub.test_hub import hub  # noqa: F401 - the fixture

EXAMPLES = int(os.environ.get("PINGAN_FUZZ_EXAMPLES", "800"))
node_ids = st.sampled_from(["pole-01", "pole-02", "door-1a"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
event_like = st.fixed_dictionaries(
    {}, optional={"id": st.one_of(st.uuids().map(str), st.text(max_size=40), st.integers()),
                  "node": st.one_of(node_ids, st.text(max_size=20)),
                  "kind": st.one_of(st.sampled_from(["alarm.pressed", "door.forced", "x.y", "node.offline"]),
                                    st.text(max_size=20)),
                  "ts": st.one_of(st.datetimes().map(lambda d: d.isoformat()), st.text(max_size=30)),
                  "data": json_values, "snapshot": json_values, "state": json_values,
                  "command_id": json_values, "ok": json_values, "uptime_s": json_values,
                  "outbox_depth": json_values})
payloads = st.one_of(
    st.binary(max_size=300),
    event_like.map(lambda d: json.dumps(d, default=str).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b"\xff\xd8") .map(lambda b: b + os.urandom(50)),
)


@st.composite
def messages(draw) -> tuple[str, bytes]:
    node = draw(node_ids)
    channel = draw(st.sampled_from(["events", "snapshots", "clips", "status", "heartbeat", "replies",
                                    "commands", "receipts", "bogus"]))
    if channel == "snapshots":
        topic = Topics.snapshot(node, draw(st.one_of(st.uuids().map(str), st.text(alphabet="abc-", max_size=8))))
    elif channel == "clips":
        topic = Topics.clip(node, str(uuid.uuid4()), draw(st.integers(0, 5)))
    elif channel == "bogus":
        topic = f"pingan/v1/nodes/{node}/{draw(st.text(alphabet='abc/+#', max_size=12))}"
    else:
        topic = f"pingan/v1/nodes/{node}/{channel}"
    return topic, draw(payloads)


def test_fuzzed_payloads_never_crash_ingest(hub) -> None:  # noqa: F811
    ingest, fake, client = hub.ingest, hub.fake, hub.client
    before_internal = metrics.rejected.labels("internal error")._value.get()
    seen = 0

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(messages(), min_size=1, max_size=8))
    def run(batch: list[tuple[str, bytes]]) -> None:
        nonlocal seen
        acked_before = len(fake.acked)
        ingest.handle_batch([Incoming(t, p, i + 1, 1, __import__("edge.protocol").protocol.utcnow())
                             for i, (t, p) in enumerate(batch)])
        assert len(fake.acked) - acked_before == len(batch)  # every message acknowledged, none stuck
        seen += len(batch)

    run()
    assert metrics.rejected.labels("internal error")._value.get() == before_internal, "ingest hit an internal error"
    assert client.get("/api/health").json()["status"] == "ok"
    assert seen >= EXAMPLES
    print(f"\nfuzzed {seen} MQTT messages in {EXAMPLES} batches: 0 internal errors, all acknowledged, "
          f"{metrics.rejected.labels('invalid event')._value.get():.0f} invalid events refused (and more by reason)")
