"""Rental blocks: tenants (real-name registration), their enrolments at the block's doors, remote
unlocks and the door audit log. Plain functions over the store, like hub.service; commands go out
through HubService._command (signed, recorded in the commands table, replies tracked by ingest).

Fingerprint templates: the door where a tenant enrols replies with the template sealed under the
block key (AES-GCM, a secret of the block's doors only). The hub keeps that ciphertext on the
enrolment, forwards it to the block's other doors in ``access.enrol`` (``template_enc``), and drops it
on revoke. It never stores the template in a command's arguments or reply data.
"""

from __future__ import annotations

import csv
import io
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection, Engine

from edge.protocol import AccessReplyData
from hub.alarms.service import HubService
from hub.doors.registration import FieldError, Invalid, TenantFields, check_fields, read_sheet
from hub.errors import Conflict, NotFound
from hub.store.engine import add_audit, jsonable, now_utc
from hub.store.schema import audit, blocks, commands, doors, enrolments, events, nodes, tenants, units

log = logging.getLogger(__name__)
DOOR_EVENT_KINDS = ("door.granted", "door.denied", "door.lockout", "door.forced", "door.held_open",
                    "door.fire_release", "command.refused", "node.fault")
STAFF_ACTIONS = ("tenant.", "access.", "door.", "command.door.", "command.access.")
CSV_FIELDS = ("at", "source", "door", "block", "kind", "tenant_id", "tenant", "actor", "detail")


def csv_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: = + - @ (and tab, CR) at the start are escaped with '."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _mask(id_number: str | None) -> str | None:
    return None if not id_number else "*" * max(0, len(id_number) - 4) + id_number[-4:]


class DoorService:
    def __init__(self, engine: Engine, hub: HubService) -> None:
        self.engine = engine
        self.hub = hub

    # --- blocks, units and doors ---------------------------------------------------------------
    def add_block(self, block_id: str, *, name: str = "", address: str = "", grid: str = "",
                  units_: list[str] | None = None, actor: str = "admin") -> dict[str, Any]:
        with self.hub.writing() as conn:
            if conn.execute(select(blocks.c.id).where(blocks.c.id == block_id)).first():
                raise Conflict(f"block {block_id} exists")
            conn.execute(blocks.insert().values(id=block_id, name=name, address=address, grid=grid,
                                                created=now_utc()))
            for unit in dict.fromkeys(units_ or []):  # a unit named twice is one unit
                if conn.execute(select(units.c.id).where(units.c.id == f"{block_id}-{unit}")).first():
                    raise Conflict(f"unit id {block_id}-{unit} is taken by another block; choose other names")
                conn.execute(units.insert().values(id=f"{block_id}-{unit}", block=block_id, name=unit))
            add_audit(conn, actor, "block.add", block_id, {"name": name, "units": units_ or []})
            return self._block(conn, block_id)

    def _block(self, conn: Connection, block_id: str) -> dict[str, Any]:
        row = conn.execute(select(blocks).where(blocks.c.id == block_id)).first()
        if row is None:
            raise NotFound(f"no block {block_id}: create it first (POST /api/doors/blocks)")
        out = jsonable(row)
        out["units"] = [u for (u,) in conn.execute(select(units.c.name).where(units.c.block == block_id)
                                                   .order_by(units.c.name))]
        out["doors"] = [d for (d,) in conn.execute(select(doors.c.node).where(doors.c.block == block_id)
                                                   .order_by(doors.c.node))]
        return out

    def list_blocks(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            ids = [b for (b,) in conn.execute(select(blocks.c.id).order_by(blocks.c.id))]
            return [self._block(conn, b) for b in ids]

    def add_door(self, node: str, block: str, *, name: str = "", actor: str = "installer") -> dict[str, Any]:
        """Put a registered rental_door node into a block (``pingan-hub nodes add --kind rental_door``)."""
        with self.hub.writing() as conn:
            kind = conn.execute(select(nodes.c.kind).where(nodes.c.id == node)).scalar()
            if kind is None:
                raise NotFound(f"no node {node}: register it first (pingan-hub nodes add {node} --kind rental_door)")
            if kind != "rental_door":
                raise Conflict(f"node {node} is a {kind}, not a rental_door")
            self._block(conn, block)
            if conn.execute(select(doors.c.node).where(doors.c.node == node)).first():
                conn.execute(update(doors).where(doors.c.node == node).values(block=block, name=name))
            else:
                conn.execute(doors.insert().values(node=node, block=block, name=name, created=now_utc()))
            add_audit(conn, actor, "door.add", node, {"block": block, "name": name})
        return self.get_door(node)

    def get_door(self, node: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(doors, nodes.c.state, nodes.c.place).join(
                nodes, nodes.c.id == doors.c.node, isouter=True).where(doors.c.node == node)).first()
        if row is None:
            raise NotFound(f"{node} is not a door of any block")
        return jsonable(row)

    def list_doors(self, block: str | None = None) -> list[dict[str, Any]]:
        q = select(doors, nodes.c.state, nodes.c.place).join(nodes, nodes.c.id == doors.c.node, isouter=True)
        if block:
            q = q.where(doors.c.block == block)
        with self.engine.connect() as conn:
            return [jsonable(r) for r in conn.execute(q.order_by(doors.c.node)).all()]

    # --- tenants -------------------------------------------------------------------------------
    def add_tenant(self, *, name: str, phone: str, block: str, unit: str = "", id_number: str | None = None,
                   lease_start: datetime | str, lease_end: datetime | str, actor: str = "operator",
                   tz: ZoneInfo | None = None, require_id: bool = False) -> dict[str, Any]:
        """Register one tenant (实名登记): every field checked (the ID number's GB 11643 check digit, the lease's
        order, the unit, the same person twice in a unit) before anything is stored; :class:`Invalid` lists
        every error. Dates alone are days in the district's zone ``tz``."""
        raw = {"name": name, "phone": phone, "block": block, "unit": unit, "id_number": id_number,
               "lease_start": lease_start, "lease_end": lease_end}
        fields, errors = check_fields(raw, tz or ZoneInfo("UTC"), require_id=require_id)
        with self.hub.writing() as conn:
            if fields is not None:
                errors = self._store_checks(conn, fields, {})
            if errors or fields is None:
                raise Invalid(errors)
            tenant_id = self._insert_tenant(conn, fields, actor, "form")
        return self.get_tenant(tenant_id)

    def _store_checks(self, conn: Connection, f: TenantFields, seen: dict[tuple[str, str, str], int],
                      row: int | None = None) -> list[FieldError]:
        """What needs the store: the block and unit exist, and this person is not already in the unit (also
        not earlier in the same sheet: ``seen`` maps (block, unit, person) to the row that had it)."""
        b = conn.execute(select(blocks.c.id).where(blocks.c.id == f.block)).first()
        if b is None:
            return [FieldError("block", "block_unknown", f"there is no block {f.block}", row)]
        names = [u for (u,) in conn.execute(select(units.c.name).where(units.c.block == f.block))]
        if names and f.unit not in names:
            return [FieldError("unit", "unit_unknown", f"block {f.block} has no unit {f.unit or '(none)'} "
                               f"(units: {', '.join(sorted(names)[:20])})", row)]
        person = f.id_number or f"{f.name}/{f.phone}"
        q = select(tenants.c.id).where(tenants.c.block == f.block, tenants.c.unit == f.unit,
                                       tenants.c.state == "active")
        q = q.where(tenants.c.id_number == f.id_number) if f.id_number else q.where(
            tenants.c.name == f.name, tenants.c.phone == f.phone)
        if conn.execute(q).first() is not None:
            return [FieldError("id_number" if f.id_number else "name", "duplicate",
                               f"this person is already registered in {f.block} {f.unit}", row)]
        key = (f.block, f.unit, person)
        if key in seen:
            return [FieldError("id_number" if f.id_number else "name", "duplicate_in_file",
                               f"this person is also on row {seen[key]} for the same unit", row)]
        seen[key] = row or 0
        return []

    def _insert_tenant(self, conn: Connection, f: TenantFields, actor: str, source: str) -> str:
        tenant_id = f"t-{uuid.uuid4().hex[:10]}"
        conn.execute(tenants.insert().values(
            id=tenant_id, name=f.name, id_number=f.id_number, phone=f.phone, block=f.block, unit=f.unit,
            lease_start=f.lease_start, lease_end=f.lease_end, state="active", created=now_utc(), source=source))
        add_audit(conn, actor, "tenant.add", tenant_id, {"block": f.block, "unit": f.unit, "source": source,
                                                         "lease_end": f.lease_end.isoformat()})
        return tenant_id

    def import_tenants(self, data: bytes, filename: str, actor: str, tz: ZoneInfo) -> dict[str, Any]:
        """The registration office's sheet (CSV or XLSX), all or nothing: every row checked as the form is;
        one bad row and :class:`Invalid` lists each bad row, and nothing of the file is stored."""
        rows = read_sheet(data, filename)
        checked: list[tuple[int, TenantFields]] = []
        errors: list[FieldError] = []
        for n, raw in rows:
            fields, errs = check_fields(raw, tz, row=n, require_id=True)
            errors += errs
            if fields is not None:
                checked.append((n, fields))
        source = f"import:{filename[-50:]}"
        with self.hub.writing() as conn:
            seen: dict[tuple[str, str, str], int] = {}
            for n, f in checked:
                errors += self._store_checks(conn, f, seen, n)
            if errors:
                errors.sort(key=lambda e: e.row or 0)
                raise Invalid(errors, f"{len({e.row for e in errors})} of {len(rows)} rows have errors; "
                                      "nothing was stored")
            ids = [self._insert_tenant(conn, f, actor, source) for _, f in checked]
            add_audit(conn, actor, "tenant.import", filename[-100:], {"rows": len(ids)})
        return {"imported": len(ids), "tenants": ids}

    def leases_ending(self, days: int, block: str | None = None) -> list[dict[str, Any]]:
        """Active tenants whose lease ends within ``days`` (soonest first), for renewal or move-out."""
        now = now_utc()
        q = select(tenants).where(tenants.c.state == "active", tenants.c.lease_end >= now,
                                  tenants.c.lease_end < now + timedelta(days=days))
        if block:
            q = q.where(tenants.c.block == block)
        with self.engine.connect() as conn:
            return [self._tenant_out(r) for r in conn.execute(q.order_by(tenants.c.lease_end)).all()]

    def renew(self, tenant_id: str, lease_end: datetime | str, actor: str, tz: ZoneInfo) -> dict[str, Any]:
        """A new end for an active lease; every door the tenant is enrolled at gets its list again (access.sync),
        so the new end holds at the door, offline too."""
        with self.hub.writing() as conn:
            t = self._tenant_row(conn, tenant_id)
            if t.state != "active":
                raise Invalid([FieldError("tenant", "revoked",
                                          f"tenant {tenant_id} is {t.state}: register them again")])
            fields, errors = check_fields({"name": t.name, "phone": t.phone, "block": t.block, "unit": t.unit,
                                           "lease_start": t.lease_start, "lease_end": lease_end}, tz,
                                          require_id=False)
            if fields is None:
                raise Invalid(errors)
            if fields.lease_end <= now_utc():
                raise Invalid([FieldError("lease_end", "lease_past", "the new end of the lease is in the past")])
            conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(
                lease_end=fields.lease_end, renewed_at=now_utc()))
            add_audit(conn, actor, "tenant.renew", tenant_id, {"from": t.lease_end.isoformat(),
                                                               "lease_end": fields.lease_end.isoformat()})
            doors_ = sorted({d for (d,) in conn.execute(select(enrolments.c.door).where(
                enrolments.c.tenant == tenant_id, enrolments.c.state == "enrolled"))})
        for door in doors_:
            try:
                self.sync(door, actor)
            except (Conflict, NotFound) as exc:
                log.error("renewal of %s: cannot update door %s: %s", tenant_id, door, exc)
        return self.get_tenant(tenant_id)

    def _tenant_row(self, conn: Connection, tenant_id: str) -> Any:
        row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).first()
        if row is None:
            raise NotFound(f"no tenant {tenant_id}")
        return row

    def _tenant_out(self, row: Any) -> dict[str, Any]:
        out = jsonable(row)
        out["id_number"] = _mask(row.id_number)
        return out

    def get_tenant(self, tenant_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            out = self._tenant_out(self._tenant_row(conn, tenant_id))
            out["enrolments"] = [self._enrolment_out(r) for r in conn.execute(
                select(enrolments).where(enrolments.c.tenant == tenant_id).order_by(enrolments.c.id)).all()]
        return out

    def list_tenants(self, block: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        q = select(tenants)
        if block:
            q = q.where(tenants.c.block == block)
        if state:
            q = q.where(tenants.c.state == state)
        with self.engine.connect() as conn:
            return [self._tenant_out(r) for r in conn.execute(q.order_by(tenants.c.created)).all()]

    # --- enrolments ----------------------------------------------------------------------------
    @staticmethod
    def _enrolment_out(row: Any) -> dict[str, Any]:
        out = jsonable(row)
        out["template_synced"] = out.pop("template_enc", None) is not None
        return out

    def list_enrolments(self, tenant: str | None = None, door: str | None = None) -> list[dict[str, Any]]:
        q = select(enrolments)
        if tenant:
            q = q.where(enrolments.c.tenant == tenant)
        if door:
            q = q.where(enrolments.c.door == door)
        with self.engine.connect() as conn:
            return [self._enrolment_out(r) for r in conn.execute(q.order_by(enrolments.c.id)).all()]

    def _next_version(self, conn: Connection, door: str) -> int:
        version = (conn.execute(select(doors.c.access_version).where(doors.c.node == door)).scalar() or 0) + 1
        conn.execute(update(doors).where(doors.c.node == door).values(access_version=version))
        return version

    def _send_enrol(self, conn: Connection, tenant: Any, door: str, actor: str, *, slot: int | None = None,
                    template_enc: str | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"tenant_id": tenant.id, "valid_from": tenant.lease_start.isoformat(),
                                "valid_until": tenant.lease_end.isoformat(),
                                "version": self._next_version(conn, door)}
        if slot is not None:
            args["slot"] = slot
        stored = dict(args)
        if template_enc:
            args["template_enc"] = template_enc
            stored["template_enc"] = "(sealed template, not kept here)"
        command_id = self.hub._command(conn, door, "access.enrol", args, actor, stored_args=stored)
        if command_id is None:
            raise Conflict(f"door {door} has no signing key: re-register it (pingan-hub nodes add {door} "
                           "--kind rental_door)")
        result = conn.execute(enrolments.insert().values(
            tenant=tenant.id, door=door, state="pending", command_id=command_id,
            source="sync" if template_enc else "scan", updated=now_utc()))
        row = conn.execute(select(enrolments).where(enrolments.c.id == result.inserted_primary_key[0])).first()
        return self._enrolment_out(row)

    def enrol(self, tenant_id: str, door: str, actor: str, slot: int | None = None) -> dict[str, Any]:
        """Ask a door to enrol the tenant: the tenant scans a finger twice there; the node replies."""
        with self.hub.writing() as conn:
            tenant = self._tenant_row(conn, tenant_id)
            if tenant.state != "active":
                raise Conflict(f"tenant {tenant_id} is {tenant.state}")
            door_block = conn.execute(select(doors.c.block).where(doors.c.node == door)).scalar()
            if door_block is None:
                raise NotFound(f"{door} is not a door of any block")
            if door_block != tenant.block:
                raise Conflict(f"{door} is a door of block {door_block}, the tenant lives in {tenant.block}")
            add_audit(conn, actor, "access.enrol", tenant_id, {"door": door})
            return self._send_enrol(conn, tenant, door, actor, slot=slot)

    def on_reply(self, command_id: str) -> None:
        """A door answered an access command (called after ingest's commit)."""
        with self.hub.writing() as conn:
            cmd = conn.execute(select(commands).where(commands.c.id == command_id)).first()
            row = conn.execute(select(enrolments).where(enrolments.c.command_id == command_id)).first()
            if cmd is None or row is None:
                return
            data = dict(cmd.data or {})
            sealed = data.pop("template_enc", None)
            if sealed is not None:  # keep the ciphertext on the enrolment only
                conn.execute(update(commands).where(commands.c.id == command_id).values(
                    data={**data, "template_enc": "(moved to the enrolment)"}))
            now = now_utc()
            if cmd.name == "access.revoke":
                conn.execute(update(enrolments).where(enrolments.c.id == row.id).values(
                    state="revoked" if cmd.ok else "revoke_failed", detail=cmd.detail, updated=now))
                return
            if cmd.name != "access.enrol" or row.state != "pending":
                return
            if not cmd.ok:
                conn.execute(update(enrolments).where(enrolments.c.id == row.id).values(
                    state="failed", detail=cmd.detail, updated=now))
                return
            conn.execute(update(enrolments).where(enrolments.c.id == row.id).values(
                state="enrolled", slot=AccessReplyData.model_validate(data).slot, detail=cmd.detail,
                template_enc=sealed, updated=now))
            tenant = self._tenant_row(conn, row.tenant)
            if sealed is None or tenant.state != "active":
                return
            # the block's other doors take the template instead of a scan
            block = conn.execute(select(doors.c.block).where(doors.c.node == row.door)).scalar()
            have = {d for (d,) in conn.execute(select(enrolments.c.door).where(
                enrolments.c.tenant == tenant.id, enrolments.c.state.in_(("pending", "enrolled"))))}
            for (other,) in conn.execute(select(doors.c.node).where(doors.c.block == block).order_by(doors.c.node)):
                if other not in have:
                    try:
                        self._send_enrol(conn, tenant, other, "system", template_enc=sealed)
                    except Conflict as exc:
                        log.error("cannot sync %s's template to %s: %s", tenant.id, other, exc)

    def revoke(self, tenant_id: str, actor: str) -> dict[str, Any]:
        """Tenant moved out: delete them from every door's reader and list, drop the synced template."""
        with self.hub.writing() as conn:
            tenant = self._tenant_row(conn, tenant_id)
            conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(state="revoked"))
            add_audit(conn, actor, "access.revoke", tenant_id, {})
            rows = conn.execute(select(enrolments).where(
                enrolments.c.tenant == tenant_id,
                enrolments.c.state.in_(("pending", "enrolled", "failed", "revoke_failed")))).all()
            for door in sorted({r.door for r in rows}):
                args = {"tenant_id": tenant.id, "version": self._next_version(conn, door)}
                command_id = self.hub._command(conn, door, "access.revoke", args, actor)
                conn.execute(update(enrolments).where(enrolments.c.tenant == tenant_id, enrolments.c.door == door)
                             .values(state="revoking", command_id=command_id, updated=now_utc()))
            conn.execute(update(enrolments).where(enrolments.c.tenant == tenant_id).values(template_enc=None))
        return self.get_tenant(tenant_id)

    def sync(self, door: str, actor: str) -> str | None:
        """Send a door its whole access list (``access.sync``), e.g. after it was replaced."""
        with self.hub.writing() as conn:
            if conn.execute(select(doors.c.node).where(doors.c.node == door)).first() is None:
                raise NotFound(f"{door} is not a door of any block")
            rows = conn.execute(select(enrolments.c.slot, tenants.c.id, tenants.c.lease_start, tenants.c.lease_end)
                                .join(tenants, tenants.c.id == enrolments.c.tenant)
                                .where(enrolments.c.door == door, enrolments.c.state == "enrolled",
                                       tenants.c.state == "active", enrolments.c.slot.is_not(None))).all()
            entries = [{"slot": r.slot, "tenant_id": r.id, "valid_from": r.lease_start.isoformat(),
                        "valid_until": r.lease_end.isoformat()} for r in rows]
            add_audit(conn, actor, "access.sync", door, {"entries": len(entries)})
            return self.hub._command(conn, door, "access.sync",
                                     {"version": self._next_version(conn, door), "entries": entries}, actor)

    # --- remote unlock -------------------------------------------------------------------------
    def unlock(self, door: str, operator: str, reason: str = "") -> str:
        """door.unlock, signed, living at most 10 s; the door audits it as door.granted (remote)."""
        with self.hub.writing() as conn:
            if conn.execute(select(doors.c.node).where(doors.c.node == door)).first() is None:
                raise NotFound(f"{door} is not a door of any block")
            add_audit(conn, operator, "door.unlock", door, {"reason": reason})
            command_id = self.hub._command(conn, door, "door.unlock", {"reason": reason}, operator)
        if command_id is None:
            raise Conflict(f"door {door} has no signing key")
        return command_id

    def command_status(self, command_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(commands).where(commands.c.id == command_id)).first()
        if row is None:
            raise NotFound(f"no command {command_id}")
        return jsonable(row)

    # --- the audit log -------------------------------------------------------------------------
    def audit_log(self, *, door: str | None = None, tenant: str | None = None, block: str | None = None,
                  since: datetime | None = None, until: datetime | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
        """What happened at the doors (node events) and what staff did (hub audit), newest first.

        Both sources are append-only: nothing updates or deletes their rows (retention purges, when
        they come, are audited themselves).
        """
        with self.engine.connect() as conn:
            door_blocks = dict(conn.execute(select(doors.c.node, doors.c.block)).all())
            names = dict(conn.execute(select(tenants.c.id, tenants.c.name)).all())
            q = select(events).where(events.c.kind.in_(DOOR_EVENT_KINDS),
                                     events.c.node.in_(list(door_blocks) or [""]))
            if door:
                q = q.where(events.c.node == door)
            if block:
                q = q.where(events.c.node.in_([d for d, b in door_blocks.items() if b == block] or [""]))
            if tenant:
                q = q.where(events.c.data["tenant_id"].as_string() == tenant)
            if since:
                q = q.where(events.c.ts >= since)
            if until:
                q = q.where(events.c.ts < until)
            rows: list[dict[str, Any]] = []
            for r in conn.execute(q.order_by(events.c.seq.desc()).limit(limit)).all():
                data = dict(r.data or {})
                tid = data.get("tenant_id")
                detail = {k: v for k, v in data.items() if k not in ("place", "grid", "lat", "lon", "tenant_id")}
                rows.append({"at": r.ts.isoformat(), "received_at": r.received_at.isoformat(), "source": "door",
                             "door": r.node, "block": door_blocks.get(r.node), "kind": r.kind, "tenant_id": tid,
                             "tenant": names.get(tid) if tid else None,
                             "actor": data.get("operator") or (names.get(tid) if tid else None),
                             "event_id": r.id, "detail": detail})
            sq = select(audit).where(or_(*[audit.c.action.startswith(p) for p in STAFF_ACTIONS]))
            if door:
                sq = sq.where(or_(audit.c.target == door, audit.c.detail["door"].as_string() == door))
            if tenant:
                sq = sq.where(audit.c.target == tenant)
            if since:
                sq = sq.where(audit.c.at >= since)
            if until:
                sq = sq.where(audit.c.at < until)
            for a in conn.execute(sq.order_by(audit.c.seq.desc()).limit(limit)).all():
                detail = dict(a.detail or {})
                target_door = a.target if a.target in door_blocks else detail.get("door")
                tid = a.target if a.target in names else None
                rows.append({"at": a.at.isoformat(), "received_at": a.at.isoformat(), "source": "staff",
                             "door": target_door, "block": door_blocks.get(target_door) if target_door else None,
                             "kind": a.action, "tenant_id": tid, "tenant": names.get(tid) if tid else None,
                             "actor": a.actor, "event_id": None,
                             "detail": {k: v for k, v in detail.items() if k != "template_enc"}})
        if block:  # a staff action belongs to the block of its door or of its tenant
            blocks_of = self._tenant_blocks()
            rows = [r for r in rows if r["block"] == block or (r["source"] == "staff" and r["tenant_id"]
                                                                and blocks_of.get(r["tenant_id"]) == block)]
        rows.sort(key=lambda x: x["at"], reverse=True)
        return rows[:limit]

    def _tenant_blocks(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(tenants.c.id, tenants.c.block)).all())

    def audit_csv(self, **filters: Any) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_FIELDS)
        for row in self.audit_log(**filters):
            detail = "; ".join(f"{k}={v}" for k, v in sorted((row.get("detail") or {}).items()) if v is not None)
            writer.writerow([csv_cell(row.get(f) if f != "detail" else detail) for f in CSV_FIELDS])
        return buf.getvalue()
