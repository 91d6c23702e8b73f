"""Power loss on a node, played as SIGKILL in the middle of writes: what was written stays,
nothing is half-written (issue 7, item 4). The outbox's own case is in test_outbox.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from edge.roles.door.access_list import AccessList


def _run_until_killed(code: str, marker: Path) -> int:
    """Run code that appends a line to ``marker`` after each durable write and SIGKILLs itself."""
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=False, timeout=120)
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def test_access_list_survives_a_kill_during_writes(tmp_path: Path) -> None:
    db, marker = tmp_path / "access.db", tmp_path / "done.txt"
    confirmed = _run_until_killed(f"""
        import os, random
        from edge.roles.door.access_list import AccessList, AccessEntry
        acl = AccessList({str(db)!r})
        with open({str(marker)!r}, "a") as log:
            for slot in range(400):
                acl.put(AccessEntry(slot=slot, tenant_id=f"t{{slot}}", valid_from=None, valid_until=None, version=slot))
                log.write(f"{{slot}}\\n"); log.flush()
                if slot == 250 + random.randint(0, 100):
                    os.kill(os.getpid(), 9)
        os.kill(os.getpid(), 9)
        """, marker)
    assert confirmed > 200
    acl = AccessList(db)
    assert acl._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    slots = {e.slot for e in acl.entries()}
    assert set(range(confirmed)) <= slots  # every write that returned survived the kill
    acl.close()


def test_config_files_are_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    target, marker = tmp_path / "node.yaml", tmp_path / "done.txt"
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text("node: {id: pole-01}\n" + "#" * 200_000)
    new.write_text("node: {id: pole-02}\n" + "#" * 300_000)
    target.write_bytes(old.read_bytes())
    writes = _run_until_killed(f"""
        import os, threading
        from pathlib import Path
        from edge.shared.yamlconfig import atomic_write
        versions = [Path({str(old)!r}).read_bytes(), Path({str(new)!r}).read_bytes()]
        threading.Timer(0.05, lambda: os.kill(os.getpid(), 9)).start()  # somewhere inside the writes
        with open({str(marker)!r}, "a") as log:
            for i in range(100_000):
                atomic_write({str(target)!r}, versions[(i + 1) % 2])
                log.write("w\\n"); log.flush()
        """, marker)
    assert writes > 0  # the kill came while it was writing
    assert target.read_bytes() in (old.read_bytes(), new.read_bytes())  # never a torn file
