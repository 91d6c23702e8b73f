"""The MQTT contract: topics round-trip, commands sign and verify, events validate."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.protocol import Command, Event, Topics


def test_topics_build_and_parse() -> None:
    assert Topics.events("pole-07") == "pingan/v1/nodes/pole-07/events"
    p = Topics.parse(Topics.snapshot("pole-07", "abc"))
    assert (p.node, p.channel, p.rest) == ("pole-07", "snapshots", ("abc",))
    for bad in ("pingan/v1/nodes/POLE/events", "pingan/v2/nodes/a/events", "pingan/v1/nodes/a/events/x",
                "pingan/v1/nodes/a/unknown", "pingan/v1/nodes/a"):
        assert Topics.parse(bad) is None
    with pytest.raises(ValueError):
        Topics.events("../other")


def test_command_signature_covers_every_field() -> None:
    cmd = Command.make("pole-07", "door.unlock", {"seconds": 5}, operator="wang").signed(b"k1")
    assert cmd.signature_ok(b"k1") and not cmd.signature_ok(b"k2")
    assert (cmd.expires_at - cmd.issued_at).total_seconds() == 10  # unlocks live 10 s at most
    tampered = cmd.model_copy(update={"args": {"seconds": 500}})
    assert not tampered.signature_ok(b"k1")
    again = Command.model_validate_json(cmd.to_bytes())
    assert again.signature_ok(b"k1")


def test_event_validation() -> None:
    ev = Event.make("pole-07", "alarm.pressed", {"count": 1})
    assert Event.model_validate_json(ev.to_bytes()) == ev
    with pytest.raises(ValidationError):
        Event.model_validate({"id": "x", "node": "pole-07", "kind": "alarm.pressed", "ts": "2026-01-01T00:00:00"})
