"""A short district run in CI (bench/district_load.py runs the seeds' full 2,000 nodes):
many virtual nodes in one process against the real broker and hub; nothing may be lost and
every alarm must reach the live stream. Timing figures belong to the bench."""

from __future__ import annotations

from bench.district_load import run


def test_small_district_loses_nothing(mosquitto_exe: str) -> None:
    r = run(poles=20, doors=80, seconds=10, procs=1, press_every=3)
    assert r["nodes_seen"] == 100
    assert r["made"] > 0 and r["lost"] == 0, r
    assert r["alarms"] > 0 and r["alarms_seen_live"] == r["alarms"], r


def test_short_soak_with_broker_restarts_loses_nothing(mosquitto_exe: str) -> None:
    """The soak's CI cut: the broker goes down twice mid-run; every event and every alarm still arrives."""
    r = run(poles=20, doors=80, seconds=60, procs=1, press_every=3, restart_broker_every=12)
    assert r["restarts"] >= 2, r
    assert r["made"] > 0 and r["lost"] == 0, r
    assert r["alarms"] > 0 and r["alarms_seen_live"] == r["alarms"], r
