"""Alarms with their whole lifecycle: raised, acknowledged, dispatched, escalated, resolved, mirrored."""
