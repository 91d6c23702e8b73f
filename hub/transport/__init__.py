"""MQTT in and out: the hub's one broker connection, and the local broker the demo and tests start."""
