"""The running node: one process that wires hardware, role and link together and keeps itself healthy.

``node`` wires a node and runs its loop; ``updates`` restarts it with a config pushed by the centre and
rolls back by itself; ``sdnotify`` tells systemd it is alive only while the loop makes progress.
"""
