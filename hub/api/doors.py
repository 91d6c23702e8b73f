"""``/api/doors/...``: rental blocks, tenants (real-name registration), enrolments, remote unlock and
the door audit log (design.md "Hub HTTP"). With staff login (hub/auth/service.py) the acting user is the
logged-in one, else the operator named in the body; changes need the roles given with ``requires``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field

from hub.api.deps import DoorsDep, ZoneDep
from hub.api.models.doors import (
    AuditEntry,
    Block,
    CommandOut,
    CommandSent,
    Door,
    Enrolment,
    ImportResult,
    RegistrationRefused,
    SyncSent,
    Tenant,
    TenantDetail,
)
from hub.auth.policy import requires
from hub.doors.registration import MAX_IMPORT_BYTES, Invalid

router = APIRouter(prefix="/api/doors", tags=["doors"])
OPERATORS = ("operator", "admin")
INSTALLERS = ("installer", "admin")


T = TypeVar("T")
# a registration, renewal or import with errors: 422 listing each (hub/doors/registration.py Invalid)
REFUSED: dict[int | str, dict[str, Any]] = {422: {"model": RegistrationRefused,
                                                   "description": "Errors, nothing stored"}}


@contextmanager
def _checked() -> Iterator[None]:
    """A registration with errors is a 422 listing each (field, code, message[, row]); nothing was stored."""
    try:
        yield
    except Invalid as exc:
        raise HTTPException(422, detail=exc.as_detail()) from None


def _run(fn: Callable[[], T]) -> T:
    with _checked():
        return fn()


def _actor(request: Request, named: str) -> str:
    """The logged-in staff member; the name in the body only when the hub runs without login."""
    user = getattr(request.state, "user", None)
    return getattr(user, "username", None) or named
Operator = Annotated[str, Field(default="operator", min_length=1, max_length=64)]


class BlockBody(BaseModel):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(default="", max_length=200)
    address: str = Field(default="", max_length=200)
    grid: str = Field(default="", max_length=32)
    units: list[str] = Field(default_factory=list, max_length=2000)
    operator: Operator = "admin"


class DoorBody(BaseModel):
    node: str = Field(min_length=1, max_length=64)
    block: str = Field(min_length=1, max_length=64)
    name: str = Field(default="", max_length=200)
    operator: Operator = "installer"


class TenantBody(BaseModel):
    """Checked field by field in hub/doors/registration.py (a 422 lists each error with a code), so these
    limits are only against abuse: a blank name or a bad ID number gets the office's own error."""

    name: str = Field(max_length=100, description="Real name as on the ID (实名)")
    phone: str = Field(max_length=32)
    id_number: str | None = Field(default=None, max_length=32,
                                  description="Resident ID number (GB 11643, 18 characters); shown masked")
    block: str = Field(max_length=64)
    unit: str = Field(default="", max_length=64)
    lease_start: AwareDatetime | str = Field(description="A time with its zone, or a date (the district's day)")
    lease_end: AwareDatetime | str = Field(description="A time with its zone, or a date (through that day)")
    require_id: bool = Field(default=False, description="Refuse a registration without an ID number (the "
                             "community office's form sets it)")
    operator: Operator = "operator"


class RenewBody(BaseModel):
    lease_end: AwareDatetime | str = Field(description="The lease's new end: a time, or a date (through that day)")
    operator: Operator = "operator"


class EnrolBody(BaseModel):
    door: str = Field(min_length=1, max_length=64)
    slot: int | None = Field(default=None, ge=0, le=2999)
    operator: Operator = "operator"


class OperatorBody(BaseModel):
    operator: Operator = "operator"


class UnlockBody(BaseModel):
    operator: str = Field(min_length=1, max_length=64, description="Who opens the door remotely")
    reason: str = Field(default="", max_length=500)


@router.get("/blocks", response_model=list[Block])
def list_blocks(svc: DoorsDep) -> list[dict[str, Any]]:
    return svc.list_blocks()


@router.post("/blocks", status_code=201, response_model=Block)
@requires(*INSTALLERS)
def add_block(body: BlockBody, svc: DoorsDep, request: Request) -> dict[str, Any]:
    return svc.add_block(body.id, name=body.name, address=body.address, grid=body.grid, units_=body.units,
                         actor=_actor(request, body.operator))


@router.get("", response_model=list[Door])
def list_doors(svc: DoorsDep, block: str | None = None) -> list[dict[str, Any]]:
    return svc.list_doors(block)


@router.post("", status_code=201, response_model=Door)
@requires(*INSTALLERS)
def add_door(body: DoorBody, svc: DoorsDep, request: Request) -> dict[str, Any]:
    return svc.add_door(body.node, body.block, name=body.name, actor=_actor(request, body.operator))


@router.get("/tenants", response_model=list[Tenant])
def list_tenants(svc: DoorsDep, block: str | None = None,
                 state: Annotated[str | None, Query(pattern="^(active|revoked)$")] = None) -> list[dict[str, Any]]:
    return svc.list_tenants(block, state)


@router.post("/tenants", status_code=201, response_model=TenantDetail, responses=REFUSED)
@requires(*OPERATORS)
def add_tenant(body: TenantBody, svc: DoorsDep, request: Request, zone: ZoneDep) -> dict[str, Any]:
    return _run(lambda: svc.add_tenant(
        name=body.name, phone=body.phone, id_number=body.id_number, block=body.block, unit=body.unit,
        lease_start=body.lease_start, lease_end=body.lease_end, actor=_actor(request, body.operator),
        tz=zone, require_id=body.require_id))


@router.post("/tenants/import", status_code=201, response_model=ImportResult, responses=REFUSED)
@requires(*OPERATORS)
async def import_tenants(request: Request, svc: DoorsDep, zone: ZoneDep,
                         filename: Annotated[str, Query(min_length=1, max_length=200)],
                         operator: str = "operator") -> dict[str, Any]:
    """The registration office's sheet as the request body (the file's bytes; ``filename`` says .csv or
    .xlsx). All rows or none: a 422 lists each bad row (``row`` is the sheet's row number)."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_IMPORT_BYTES:
            raise HTTPException(413, detail={"message": "the file was not read", "errors": [
                {"field": "file", "code": "file_too_big", "message": f"the file is over "
                 f"{MAX_IMPORT_BYTES // 1048576} MB"}]})
    actor = _actor(request, operator)
    return _run(lambda: svc.import_tenants(bytes(data), filename, actor, zone))


@router.get("/leases/ending", response_model=list[Tenant])
def leases_ending(svc: DoorsDep, days: Annotated[int, Query(ge=1, le=366)] = 30,
                  block: str | None = None) -> list[dict[str, Any]]:
    """Active leases ending within ``days`` (7 or 30 on the office screen), soonest first."""
    return svc.leases_ending(days, block)


@router.post("/tenants/{tenant_id}/renew", response_model=TenantDetail, responses=REFUSED)
@requires(*OPERATORS)
def renew(tenant_id: str, body: RenewBody, svc: DoorsDep, request: Request, zone: ZoneDep) -> dict[str, Any]:
    return _run(lambda: svc.renew(tenant_id, body.lease_end, _actor(request, body.operator), zone))


@router.get("/tenants/{tenant_id}", response_model=TenantDetail)
def get_tenant(tenant_id: str, svc: DoorsDep) -> dict[str, Any]:
    return svc.get_tenant(tenant_id)


@router.post("/tenants/{tenant_id}/enrol", status_code=202, response_model=Enrolment)
@requires(*OPERATORS)
def enrol(tenant_id: str, body: EnrolBody, svc: DoorsDep, request: Request) -> dict[str, Any]:
    """Ask the door to enrol the tenant (two scans there); on success the template goes to the block's
    other doors, encrypted. Follow the enrolment's state with GET /api/doors/enrolments."""
    return svc.enrol(tenant_id, body.door, _actor(request, body.operator), body.slot)


@router.post("/tenants/{tenant_id}/revoke", status_code=202, response_model=TenantDetail)
@requires(*OPERATORS)
def revoke(tenant_id: str, body: OperatorBody, svc: DoorsDep, request: Request) -> dict[str, Any]:
    return svc.revoke(tenant_id, _actor(request, body.operator))


@router.get("/enrolments", response_model=list[Enrolment])
def list_enrolments(svc: DoorsDep, tenant: str | None = None, door: str | None = None) -> list[dict[str, Any]]:
    return svc.list_enrolments(tenant, door)


@router.get("/commands/{command_id}", response_model=CommandOut)
def command_status(command_id: str, svc: DoorsDep) -> dict[str, Any]:
    return svc.command_status(command_id)


@router.get("/audit", response_model=list[AuditEntry])
def audit_log(svc: DoorsDep, door: str | None = None, tenant: str | None = None, block: str | None = None,
              since: datetime | None = None, until: datetime | None = None,
              limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> list[dict[str, Any]]:
    return svc.audit_log(door=door, tenant=tenant, block=block, since=since, until=until, limit=limit)


@router.get("/audit.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def audit_csv(svc: DoorsDep, door: str | None = None, tenant: str | None = None, block: str | None = None,
              since: datetime | None = None, until: datetime | None = None,
              limit: Annotated[int, Query(ge=1, le=100000)] = 10000) -> Response:
    body = svc.audit_csv(door=door, tenant=tenant, block=block, since=since, until=until, limit=limit)
    return Response("\ufeff" + body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="door-audit.csv"'})


@router.post("/{node}/unlock", status_code=202, response_model=CommandSent)
@requires(*OPERATORS)
def unlock(node: str, body: UnlockBody, svc: DoorsDep, request: Request) -> dict[str, Any]:
    """Remote unlock for a named operator: signed, valid for at most 10 s, audited by the door."""
    return {"command_id": svc.unlock(node, _actor(request, body.operator), body.reason)}


@router.post("/{node}/sync", status_code=202, response_model=SyncSent)
@requires("operator", "installer", "admin")
def sync(node: str, body: OperatorBody, svc: DoorsDep, request: Request) -> dict[str, Any]:
    return {"command_id": svc.sync(node, _actor(request, body.operator))}
