"""Several simulated nodes in one process, for the demo and load tests (design.md "The demo").

Each node is a full ``NodeAgent`` (its own MQTT client, outbox, command guard, mock pins, simulated
reader and control socket) sharing one asyncio loop; only the process is shared. A Python process
costs ~50 MB before it does anything, so a demo block of 10 doors in one process instead of ten
saves about half a gigabyte. Real nodes run one agent per Pi with ``pingan-edge run``.

    python -m edge.sim.multi CONFIG.yaml [CONFIG.yaml ...]

Each config names its own secrets' variables (``key_env``, ``door.block_key_env``), since the
environment is shared. SIGINT/SIGTERM stop every node (relays de-energised, outboxes closed).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from edge.config import load_node_config
from edge.errors import PinganError


async def run_many(paths: list[str]) -> None:
    from edge.agent.node import NodeAgent

    configs = [load_node_config(p) for p in paths]
    agents = [NodeAgent(cfg) for cfg in configs]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: [a.stop() for a in agents])
    await asyncio.gather(*(a.run(handle_signals=False) for a in agents))


def main(argv: list[str] | None = None) -> None:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m edge.sim.multi CONFIG.yaml [CONFIG.yaml ...]", file=sys.stderr)
        raise SystemExit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        asyncio.run(run_many(paths))
    except PinganError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
