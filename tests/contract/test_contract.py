"""The contract, typed end to end: golden fixtures both ways, the typed bodies, where they are enforced,
the /api/live models and their published schema, and no topic spelled outside edge/protocol.py."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from edge.link.commands import CommandRefused
from edge.link.dispatch import CommandDispatcher
from edge.protocol import (
    COMMAND_ARGS,
    COMMAND_NAMES,
    EVENT_DATA,
    EVENT_KINDS,
    REPLY_DATA,
    AlarmAckArgs,
    AlarmPressedData,
    AlarmRepeatData,
    Command,
    Event,
    Heartbeat,
    HubStatus,
    NodeStatus,
    Receipt,
    Reply,
    SirenSetArgs,
    Topics,
)
from hub.config import HubSettings
from hub.ingest.writer import Incoming, Processor, Rejected
from hub.live.messages import LIVE_MESSAGE, LIVE_MESSAGE_MODELS, schema_text

ROOT_DIR = Path(__file__).resolve().parents[2]
FIXTURES = ROOT_DIR / "tests" / "fixtures" / "contract"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _roundtrip(model: type[BaseModel], path: Path) -> BaseModel:
    """Parse the fixture, dump it back: equal as JSON both ways (text → model → text → model)."""
    raw = path.read_text(encoding="utf-8")
    parsed = model.model_validate_json(raw)
    dumped = parsed.model_dump(mode="json", exclude_none=True)
    assert dumped == json.loads(raw), path.name
    assert model.model_validate_json(json.dumps(dumped)) == parsed
    return parsed


def test_every_event_kind_has_a_fixture_that_round_trips() -> None:
    files = sorted(FIXTURES.glob("event.*.json"))
    assert {p.name[len("event."):-len(".json")] for p in files} == set(EVENT_KINDS) == set(EVENT_DATA)
    for path in files:
        event = _roundtrip(Event, path)
        assert isinstance(event, Event) and event.known_kind
        typed = event.typed_data()
        assert typed is not None and typed.dump() == event.data, path.name


def test_every_command_has_a_fixture_that_round_trips() -> None:
    files = sorted(FIXTURES.glob("command.*.json"))
    assert {p.name[len("command."):-len(".json")] for p in files} == set(COMMAND_NAMES) == set(COMMAND_ARGS)
    key = b"k" * 32
    for path in files:
        cmd = _roundtrip(Command, path)
        assert isinstance(cmd, Command)
        assert cmd.typed_args().dump() == cmd.args, path.name
        signed = cmd.signed(key)  # the typed args never change what is signed
        assert Command.model_validate_json(signed.to_bytes()).signature_ok(key)


@pytest.mark.parametrize(("name", "model"), [
    ("reply", Reply), ("reply.live.keepalive", Reply), ("reply.live.start", Reply), ("reply.config.update", Reply),
    ("reply.access.enrol", Reply),
    ("reply.refused", Reply), ("receipt", Receipt), ("status", NodeStatus), ("status.offline", NodeStatus),
    ("hub_status", HubStatus), ("heartbeat", Heartbeat),
])
def test_other_messages_round_trip(name: str, model: type[BaseModel]) -> None:
    parsed = _roundtrip(model, FIXTURES / f"{name}.json")
    if isinstance(parsed, Reply) and name.startswith("reply.") and name != "reply.refused":
        command = name[len("reply."):]
        assert REPLY_DATA[command].model_validate(parsed.data).dump() == parsed.data  # type: ignore[index]


def test_unknown_fields_are_allowed_and_kept_in_bodies() -> None:
    data = {"place": "x", "count": 2, "added_by_a_newer_node": [1, 2]}
    assert EVENT_DATA["alarm.pressed"].model_validate(data).dump() == data
    with pytest.raises(ValidationError):
        EVENT_DATA["alarm.repeat"].model_validate({"count": 2})  # alarm_id is required
    with pytest.raises(ValidationError):
        COMMAND_ARGS["alarm.ack"].model_validate({"stage": "lost"})


def test_heartbeat_declares_what_the_node_sends_and_drops_the_rest() -> None:
    hb = Heartbeat.model_validate({"ts": "2026-12-04T08:30:00Z", "uptime_s": 1, "outbox_depth": 0, "dropped": 2,
                                   "undeclared": 1})
    assert hb.dropped == 2 and "undeclared" not in hb.model_dump()


# --- where the contract is enforced -----------------------------------------------------------
class _Guard:
    node_id = "pole-07"

    def check(self, payload: bytes) -> Command:
        try:
            return Command.model_validate_json(payload)
        except ValidationError as exc:
            raise CommandRefused(str(exc)) from None


def test_the_node_refuses_a_command_whose_args_do_not_fit() -> None:
    audits: list[tuple[str, dict[str, Any]]] = []
    dispatcher = CommandDispatcher(_Guard(), audit=lambda kind, data: audits.append((kind, data)))  # type: ignore[arg-type]
    dispatcher.register(lambda cmd: Reply(command_id=cmd.id, ok=True), "alarm.ack", "access.sync")
    ok = dispatcher.dispatch(Command.make("pole-07", "alarm.ack", {"stage": "dispatched"}).to_bytes())
    assert ok is not None and ok.ok
    bad = Command.make("pole-07", "access.sync", {"entries": []})  # version missing
    reply = dispatcher.dispatch(bad.to_bytes())
    assert reply is not None and not reply.ok and "version" in reply.detail
    assert audits and audits[-1][0] == "command.refused" and audits[-1][1]["command_id"] == bad.id


def test_handlers_read_args_and_data_as_their_registered_models() -> None:
    """``args_as``/``data_as`` give a handler its typed body, and refuse a model that is not the one the contract
    registers for that name (a handler reading the wrong model would silently get defaults)."""
    cmd = Command.make("pole-07", "alarm.ack", {"stage": "dispatched", "alarm_id": "a1"})
    ack = cmd.args_as(AlarmAckArgs)
    assert (ack.stage, ack.alarm_id) == ("dispatched", "a1")
    with pytest.raises(TypeError, match="alarm.ack carries"):
        cmd.args_as(SirenSetArgs)
    event = Event.make("pole-07", "alarm.repeat", {"alarm_id": "a1", "count": 3})
    assert event.data_as(AlarmRepeatData).count == 3
    with pytest.raises(TypeError, match="alarm.repeat carries"):
        event.data_as(AlarmPressedData)
    with pytest.raises(ValidationError):
        Event.make("pole-07", "alarm.repeat", {"alarm_id": "a1", "count": "three"}).data_as(AlarmRepeatData)


def _incoming(event: dict[str, Any]) -> Incoming:
    return Incoming(topic=Topics.events(event["node"]), payload=json.dumps(event).encode(), mid=1, qos=1,
                    received_at=datetime.now(UTC))


def test_the_hub_rejects_known_kinds_whose_data_do_not_fit_and_keeps_unknown_kinds(tmp_path: Path) -> None:
    processor = Processor(HubSettings(data_dir=tmp_path))
    for path in FIXTURES.glob("event.*.json"):
        event = _load(path)
        if event["kind"] in ("node.offline", "nodes.offline"):
            continue
        processor.validate_event(event["node"], _incoming(event))  # everything nodes send today passes
    bad = _load(FIXTURES / "event.alarm.repeat.json")
    bad["data"]["count"] = "many"
    with pytest.raises(Rejected, match="invalid alarm.repeat data: count"):
        processor.validate_event(bad["node"], _incoming(bad))
    newer = {**bad, "kind": "battery.report", "data": {"anything": True}}
    assert not processor.validate_event(newer["node"], _incoming(newer)).known_kind  # → quarantine


# --- the hub→browser stream -------------------------------------------------------------------
def test_live_messages_parse_by_type() -> None:
    for msg in ({"type": "hello", "version": "1"}, {"type": "node", "node": "pole-07", "state": "offline"},
                {"type": "events", "node": "pole-07", "count": 3, "cursor": 9},
                {"type": "alarm", "alarm": {"id": "a", "state": "resolved"}},
                {"type": "reply", "node": "pole-07", "command_id": "c", "name": "siren.set", "ok": True, "detail": ""}):
        assert LIVE_MESSAGE.validate_python(msg).out() == msg
    with pytest.raises(ValidationError):
        LIVE_MESSAGE.validate_python({"type": "nod", "node": "pole-07"})


def test_the_published_schema_is_in_sync() -> None:
    committed = (ROOT_DIR / "hub" / "web" / "contract.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), "run: python -m hub.live.messages > hub/web/contract.schema.json"


# --- nothing spells the contract outside it ---------------------------------------------------
_CHANNEL_SUFFIXES = ("/status", "/events", "/heartbeat", "/commands", "/replies", "/receipts")
_OUTBOX_PREFIXES = ("e:", "s:", "c:")


def _offending(text: str) -> str | None:
    if "pingan/v1" in text or "$share" in text or text.startswith("homeassistant/"):
        return "topic root or share group"
    if text in _CHANNEL_SUFFIXES or text.startswith(("snapshots/", "clips/", "nodes/")):
        return "topic channel"
    return None


def _strings(tree: ast.AST, skip: set[int]) -> list[tuple[int, str, bool]]:
    """Every string constant but prose (with its line), and whether it starts an f-string."""
    out: list[tuple[int, str, bool]] = []
    in_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            in_fstring.add(id(node.values[0]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            out.append((node.lineno, node.value, id(node) in in_fstring))
    return out


def test_no_topic_share_group_or_outbox_key_is_spelled_outside_the_contract() -> None:
    allowed_keys = {Path("edge/link/outbox.py")}
    problems = []
    for top in ("edge", "hub"):
        for path in sorted((ROOT_DIR / top).rglob("*.py")):
            rel = path.relative_to(ROOT_DIR)
            if rel == Path("edge/protocol.py"):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {id(n.body[0].value) for n in ast.walk(tree)  # type: ignore[attr-defined]
                          if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                          and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
            for node in ast.walk(tree):
                if isinstance(node, ast.keyword) and node.arg == "description":
                    docstrings.add(id(node.value))  # settings' help texts may name the feature
            for lineno, text, starts_fstring in _strings(tree, docstrings):
                why = _offending(text)
                if why is None and starts_fstring and rel not in allowed_keys and text in _OUTBOX_PREFIXES:
                    why = "outbox key (edge/link/outbox.py spells them)"
                if why:
                    problems.append(f"{rel}:{lineno}: {text!r} ({why})")
    assert not problems, "spelled outside edge/protocol.py:\n" + "\n".join(problems)


def test_no_live_message_is_built_from_a_dict_literal() -> None:
    """Every /api/live message is made through its model in hub/live/messages.py (``AlarmChanged(...).out()``),
    so a misspelt key fails where it is made; a ``{"type": "alarm", ...}`` literal elsewhere in hub/ would not."""
    live_types = {m.model_fields["type"].default for m in LIVE_MESSAGE_MODELS}
    problems = []
    for path in sorted((ROOT_DIR / "hub").rglob("*.py")):
        rel = path.relative_to(ROOT_DIR)
        if rel == Path("hub/live/messages.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict):
                pairs = zip(node.keys, node.values, strict=True)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
                pairs = ((ast.Constant(k.arg), k.value) for k in node.keywords)  # type: ignore[assignment]
            else:
                continue
            for key, value in pairs:
                if (isinstance(key, ast.Constant) and key.value == "type" and isinstance(value, ast.Constant)
                        and value.value in live_types):
                    problems.append(f"{rel}:{node.lineno}: a {value.value!r} message built from a dict")
    assert live_types >= {"alarm", "event", "node", "reply"}
    assert not problems, "\n".join(problems)
