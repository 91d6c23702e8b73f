"""Prometheus figures of the hub (ingest, rejections, live clients)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

registry = CollectorRegistry()
ingested = Counter("pingan_hub_ingested_total", "Messages stored, by channel", ["channel"], registry=registry)
duplicates = Counter("pingan_hub_duplicates_total", "Events received again and ignored", registry=registry)
rejected = Counter("pingan_hub_rejected_total", "Messages refused, by reason", ["reason"], registry=registry)
quarantined = Counter("pingan_hub_quarantined_total", "Events of unknown kinds kept aside", registry=registry)
batch_seconds = Histogram("pingan_hub_batch_seconds", "Time to commit one ingest batch", registry=registry)
live_clients = Gauge("pingan_hub_live_clients", "WebSocket clients on /api/live", registry=registry)
open_alarms = Gauge("pingan_hub_open_alarms", "Alarms not yet resolved", registry=registry)
