"""Response models of hub/api/doors.py: blocks, doors, tenants, enrolments, commands, the door audit log.

Rows of hub/doors/service.py as it returns them. A tenant's ID number is only ever masked here, an
enrolment says whether a sealed template is kept (``template_synced``), never the template.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from hub.api.models import ApiModel, NodeStateName

TenantState = Literal["active", "revoked"]
# pending → enrolled | failed; revoking → revoked | revoke_failed (hub.doors.service)
EnrolmentState = Literal["pending", "enrolled", "failed", "revoking", "revoked", "revoke_failed"]


class Block(ApiModel):
    id: str
    name: str
    address: str
    grid: str
    created: str
    units: list[str]
    doors: list[str] = Field(description="The node ids of its doors")


class Door(ApiModel):
    node: str
    block: str
    name: str
    access_version: int = Field(description="Bumped with each access change sent to the door")
    created: str
    state: NodeStateName | None = Field(description="Its node's state; None if the node is gone")
    place: str | None


class Enrolment(ApiModel):
    id: int
    tenant: str
    door: str
    slot: int | None = Field(description="The reader's slot, once the door enrolled the finger")
    state: EnrolmentState
    command_id: str | None
    source: Literal["scan", "sync"] = Field(description="Scanned at this door, or a template from another door")
    detail: str | None
    updated: str
    template_synced: bool = Field(description="Whether the hub keeps the sealed template (for the block's doors)")


class Tenant(ApiModel):
    """A tenant as registered (实名登记); ``id_number`` masked to its last four characters."""

    id: str
    name: str
    id_number: str | None
    phone: str
    block: str
    unit: str
    lease_start: str
    lease_end: str
    state: TenantState
    created: str
    source: str | None = Field(description="form, or import:<file> (the registration office's sheet)")
    renewed_at: str | None = Field(description="When the lease was last renewed")


class TenantDetail(Tenant):
    enrolments: list[Enrolment]


class CommandOut(ApiModel):
    """One signed command sent to a node, and the node's reply once it came."""

    id: str
    delivery: str = Field(description="The logical command its resent attempts share")
    node: str
    name: str
    args: dict[str, Any] = Field(description="As stored: edge/protocol.py COMMAND_ARGS[name], secrets left out")
    operator: str | None
    issued_at: str
    expires_at: str
    replied_at: str | None
    ok: bool | None
    detail: str | None
    data: dict[str, Any] | None = Field(description="The reply's data (edge/protocol.py REPLY_DATA[name])")


class AuditEntry(ApiModel):
    """What happened at a door (``source`` door: the node's event) or what staff did (``staff``: the hub's audit)."""

    at: str
    received_at: str
    source: Literal["door", "staff"]
    door: str | None
    block: str | None
    kind: str = Field(description="The event kind (door.granted ...) or the staff action (tenant.add ...)")
    tenant_id: str | None
    tenant: str | None = Field(description="The tenant's name")
    actor: str | None
    event_id: str | None
    detail: dict[str, Any] = Field(description="The event's data or the action's detail, minus what other keys say")


class CommandSent(ApiModel):
    command_id: str = Field(description="Follow it with GET /api/doors/commands/{command_id}")


class SyncSent(ApiModel):
    command_id: str | None = Field(description="Follow it with GET /api/doors/commands/{command_id}; None: not "
                                               "sent (the door has no command-signing key)")


class ImportResult(ApiModel):
    imported: int = Field(description="Tenants registered from the sheet (all its rows: it is all or none)")
    tenants: list[str] = Field(description="Their ids, in the sheet's order")


class RegistrationError(ApiModel):
    field: str
    code: str = Field(description="A stable code the console translates, e.g. id_checksum, lease_order")
    message: str
    row: int | None = Field(default=None, description="The sheet's row number (1 = the headings), on an import")


class RegistrationProblems(ApiModel):
    message: str
    errors: list[RegistrationError]


class RegistrationRefused(ApiModel):
    """A registration, renewal or import with errors: each listed, nothing stored (or FastAPI's own list)."""

    detail: RegistrationProblems | list[dict[str, Any]]
