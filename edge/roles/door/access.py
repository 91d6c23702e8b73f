"""Who may open the door, as the centre manages it: ``access.enrol``, ``access.revoke``, ``access.sync``.

Kept apart from the lock (edge/roles/door/lock.py) because it changes for other reasons: tenancy,
template syncing between a block's doors, the reader's library. The lock only reads the list.

Each command works the reader (seconds, in a worker thread), so they are coroutines, one at a time;
while one enrols, the door does not scan. A template enrolled here is sealed with the block key
(edge/roles/door/template_crypto.py) for the block's other doors; one sealed elsewhere is opened and uploaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from edge.errors import HardwareError, PinganError
from edge.hw.fingerprint import EnrolmentError, FingerprintReader
from edge.protocol import AccessEnrolArgs, AccessRevokeArgs, AccessSyncArgs, Command, Reply
from edge.roles.door.access_list import AccessEntry, AccessList, parse_time
from edge.roles.door.template_crypto import TemplateKeyError, open_template, seal_template

if TYPE_CHECKING:
    from edge.roles.door.lock import Door

log = logging.getLogger(__name__)


class AccessManager:
    COMMANDS = ("access.enrol", "access.revoke", "access.sync")

    def __init__(self, door: Door, access: AccessList, block_key: bytes | None) -> None:
        self.door = door
        self.access = access
        self.block_key = block_key
        self.enrol_prompt: str | None = None  # what the reader asks of the tenant now ("place", "lift")
        self.enrol_steps = 0
        self._one_at_a_time = asyncio.Lock()

    async def obey(self, cmd: Command) -> Reply:
        async with self._one_at_a_time:
            try:
                if cmd.name == "access.enrol":
                    return await self._enrol(cmd)
                if cmd.name == "access.revoke":
                    return await self._revoke(cmd)
                return await self._sync(cmd)
            except (ValueError, KeyError, TypeError, PinganError) as exc:
                detail = str(exc) if not isinstance(exc, KeyError) else f"missing argument {exc}"
                log.warning("%s %s failed: %s", cmd.name, cmd.id, detail)
                data = {"reason": exc.reason} if isinstance(exc, EnrolmentError) else {}
                if isinstance(exc, HardwareError) and not isinstance(exc, EnrolmentError):
                    self.door.reader_failed(str(exc))
                return Reply(command_id=cmd.id, ok=False, detail=detail[:500], data=data)

    def _need_reader(self) -> FingerprintReader:
        if self.door.reader is None:
            raise HardwareError("the fingerprint reader is not available at this door")
        return self.door.reader

    async def _enrol(self, cmd: Command) -> Reply:
        args = cmd.args_as(AccessEnrolArgs)
        tenant_id = args.tenant_id
        valid_from, valid_until = parse_time(args.valid_from), parse_time(args.valid_until)
        if valid_from and valid_until and valid_until <= valid_from:
            raise ValueError("valid_until must be after valid_from")
        version = args.version
        sealed = args.template_enc
        template = None
        if sealed:
            if self.block_key is None:
                raise TemplateKeyError("this door has no block key (PINGAN_BLOCK_KEY): cannot take a synced "
                                       "template; enrol the tenant here with the reader instead")
            template = open_template(self.block_key, str(sealed), tenant_id)
        reader = self._need_reader()
        self.door.busy = "enrol"
        try:
            slot = args.slot
            if slot is None:
                used = await asyncio.to_thread(reader.used_slots)
                capacity = (await asyncio.to_thread(reader.parameters)).capacity
                slot = self.access.free_slot(capacity, used)
                if slot is None:
                    raise HardwareError("the reader's library is full: revoke tenants who left")
            slot = int(slot)
            holder = self.access.get(slot)
            if holder is not None and holder.tenant_id != tenant_id:
                raise ValueError(f"slot {slot} belongs to tenant {holder.tenant_id}: revoke them first")
            if template is not None:
                await asyncio.to_thread(reader.upload_template, slot, template)
            else:
                self.enrol_steps = 0
                loop = asyncio.get_running_loop()
                scans = 2
                placed = 0

                def on_step(step: str) -> None:  # worker thread: attribute writes, the event goes to the loop
                    nonlocal placed
                    self.enrol_steps += 1
                    self.enrol_prompt = step
                    placed += step == "place"
                    extra = {"n": placed, "scans": scans} if step == "place" else {}
                    loop.call_soon_threadsafe(self._progress, cmd.id, tenant_id, step, extra)

                try:
                    await asyncio.to_thread(reader.enrol, slot, scans, self.door.reader_cfg.enrol_wait_s, on_step,
                                            True)
                    template = await asyncio.to_thread(reader.download_template, slot)
                except (ValueError, PinganError) as exc:
                    reason = exc.reason if isinstance(exc, EnrolmentError) else (
                        "hardware" if isinstance(exc, HardwareError) else "refused")
                    self._progress(cmd.id, tenant_id, "error", {"reason": reason, "detail": str(exc)[:300]})
                    raise
        finally:
            self.door.busy = None
            self.enrol_prompt = None
            if not sealed:
                self.door.wait_for_lift()  # the enrolling finger is still on the glass
        self.access.put(AccessEntry(slot, tenant_id, valid_from, valid_until, version))
        if not sealed:
            self._progress(cmd.id, tenant_id, "done", {"slot": slot})
        data: dict[str, Any] = {"slot": slot, "tenant_id": tenant_id, "synced": bool(sealed)}
        detail = f"tenant {tenant_id} enrolled in slot {slot}"
        if not sealed:
            if self.block_key is not None:
                data["template_enc"] = seal_template(self.block_key, template, tenant_id)
            else:
                detail += "; no block key, so the template cannot be synced to the block's other doors"
        log.info("%s", detail)
        return Reply(command_id=cmd.id, ok=True, detail=detail, data=data)

    def _progress(self, command_id: str, tenant_id: str, step: str, extra: dict[str, Any]) -> None:
        """One ``access.enrol_progress`` event (on the loop): the office screen shows the reader's prompt
        live. Sent like any audit event (outbox, never evicted); the command's reply still decides."""
        self.door.emit("access.enrol_progress", {"command_id": command_id, "tenant_id": tenant_id, "step": step,
                                                 **extra})

    async def _revoke(self, cmd: Command) -> Reply:
        args = cmd.args_as(AccessRevokeArgs)
        slots: set[int] = set()
        if args.tenant_id:
            slots.update(self.access.slots_of(args.tenant_id))
        if args.slot is not None:
            slots.add(args.slot)
        version = args.version
        deleted_on_reader = await self._delete_templates(sorted(slots))
        for slot in slots:
            self.access.remove(slot, version)
        detail = f"revoked slot(s) {sorted(slots)}" if slots else "nothing to revoke at this door"
        if set(deleted_on_reader) != slots:
            detail += "; the reader is unavailable, its templates will be removed by the next access.sync"
        return Reply(command_id=cmd.id, ok=True, detail=detail,
                     data={"slots": sorted(slots), "reader_deleted": deleted_on_reader})

    async def _delete_templates(self, slots: list[int]) -> list[int]:
        reader = self.door.reader
        if reader is None:
            return []
        deleted = []
        with contextlib.suppress(HardwareError):
            for slot in slots:
                await asyncio.to_thread(reader.delete, slot)
                deleted.append(slot)
        return deleted

    async def _sync(self, cmd: Command) -> Reply:
        args = cmd.args_as(AccessSyncArgs)
        version = args.version
        entries = [AccessEntry(e.slot, e.tenant_id, parse_time(e.valid_from), parse_time(e.valid_until), version)
                   for e in args.entries]
        wanted = {e.slot for e in entries}
        if len(wanted) != len(entries):
            raise ValueError("access.sync lists a slot twice")
        on_reader: set[int] | None = None
        reader = self.door.reader
        if reader is not None:
            with contextlib.suppress(HardwareError):
                on_reader = await asyncio.to_thread(reader.used_slots)
        stale = sorted((on_reader or set()) - wanted) + sorted(
            {e.slot for e in self.access.entries()} - wanted - (on_reader or set()))
        deleted = await self._delete_templates(sorted((on_reader or set()) - wanted))
        self.access.replace_all(entries, version)
        missing = sorted(wanted - on_reader) if on_reader is not None else []
        return Reply(command_id=cmd.id, ok=True, detail=f"access list at version {version}: {len(entries)} entries",
                     data={"version": version, "removed": stale, "reader_deleted": deleted,
                           "missing_templates": missing})
