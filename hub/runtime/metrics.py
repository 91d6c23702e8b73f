"""Prometheus figures of the hub (ingest, rejections, live clients)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

registry = CollectorRegistry()
ingested = Counter("pingan_hub_ingested_total", "Messages stored, by channel", ["channel"], registry=registry)
duplicates = Counter("pingan_hub_duplicates_total", "Events received again and ignored", registry=registry)
rejected = Counter("pingan_hub_rejected_total", "Messages refused, by reason", ["reason"], registry=registry)
quarantined = Counter("pingan_hub_quarantined_total", "Events of unknown kinds kept aside", registry=registry)
job_runs = Counter("pingan_hub_job_runs_total", "Rounds of the periodic jobs, by job", ["job"], registry=registry)
job_failures = Counter("pingan_hub_job_failures_total", "Failed rounds of the periodic jobs, by job", ["job"],
                       registry=registry)
superseded = Counter("pingan_hub_heartbeats_superseded_total",
                     "Heartbeats replaced by a newer one from the same node before the writer took them "
                     "(the writer is behind)", registry=registry)
status_skipped = Counter("pingan_hub_status_skipped_total",
                         "Node statuses this replica heard but left to the leader (replicas store each once)",
                         registry=registry)
batch_seconds = Histogram("pingan_hub_batch_seconds", "Time to commit one ingest batch", registry=registry)
live_clients = Gauge("pingan_hub_live_clients", "WebSocket clients on /api/live", registry=registry)
events_by_kind = Counter("pingan_hub_events_total", "Events stored, by kind", ["kind"], registry=registry)
ingest_lag = Histogram("pingan_hub_ingest_lag_seconds", "Hub receive to commit", registry=registry,
                       buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
alarm_ingest_lag = Histogram("pingan_hub_alarm_ingest_lag_seconds", "Hub receive to commit, alarm-class events only",
                             registry=registry, buckets=_LAG_BUCKETS)
live_wait = Histogram("pingan_hub_live_wait_seconds", "Commit to a WebSocket send, by lane (urgent = alarms)",
                      ["lane"], registry=registry, buckets=_LAG_BUCKETS)
loop_lag = Histogram("pingan_hub_loop_lag_seconds", "How late the hub's event loop wakes (a blocked loop delays all)",
                     registry=registry, buckets=_LAG_BUCKETS)
event_age = Histogram("pingan_hub_event_age_seconds", "Node timestamp to hub receive (clock-dependent)",
                      registry=registry, buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300, 3600, 86400))
response_seconds = Histogram("pingan_hub_alarm_response_seconds", "Alarm raised to each lifecycle step",
                             ["stage"], registry=registry,
                             buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200))

# city networking (GB/T 28181, hub/gb28181): the registration's state and what went up
gb_state = Gauge("pingan_hub_gb28181_state", "1 for the registration's current state with the city platform",
                 ["state"], registry=registry)
gb_registrations = Counter("pingan_hub_gb28181_registrations_total", "Successful REGISTERs (refreshes included)",
                           registry=registry)
gb_failures = Counter("pingan_hub_gb28181_failures_total",
                      "Failures by step (register, keepalive, alarm: refused or unanswered after retries)",
                      ["step"], registry=registry)
gb_messages = Counter("pingan_hub_gb28181_messages_total", "Requests sent to the city platform, by kind",
                      ["kind"], registry=registry)
gb_requests = Counter("pingan_hub_gb28181_requests_total", "Requests from the city platform, by method and answer",
                      ["method", "status"], registry=registry)
gb_alarm_seconds = Histogram("pingan_hub_gb28181_alarm_seconds", "Hub commit to the city platform's 200 for an alarm",
                             registry=registry, buckets=_LAG_BUCKETS)


class StoreCollector:
    """Figures read from the store at scrape time: nodes by state, open alarms, outbox depths."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from hub.store.schema import alarms, nodes

        states = GaugeMetricFamily("pingan_hub_nodes", "Nodes by state", labels=["state"])
        depth = GaugeMetricFamily("pingan_node_outbox_depth", "Outbox depth from each node's last heartbeat",
                                  labels=["node"])
        open_ = GaugeMetricFamily("pingan_hub_alarms_open", "Alarms not yet resolved", labels=["kind"])
        with self.engine.connect() as conn:
            for state, n in conn.execute(select(nodes.c.state, func.count()).group_by(nodes.c.state)):
                states.add_metric([state], n)
            for node, hb in conn.execute(select(nodes.c.id, nodes.c.heartbeat).where(nodes.c.heartbeat.is_not(None))):
                if isinstance(hb, dict) and "outbox_depth" in hb:
                    depth.add_metric([node], hb["outbox_depth"])
            for kind, n in conn.execute(select(alarms.c.kind, func.count()).where(alarms.c.state != "resolved")
                                        .group_by(alarms.c.kind)):
                open_.add_metric([kind], n)
        yield states
        yield depth
        yield open_


def register_store(engine: Any) -> None:
    global _store_collector
    if _store_collector is not None:
        registry.unregister(_store_collector)
    _store_collector = StoreCollector(engine)
    registry.register(_store_collector)


_store_collector: StoreCollector | None = None
