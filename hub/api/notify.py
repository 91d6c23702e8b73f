"""Notify's HTTP routes: Web Push key and subscriptions, contacts, a test notice, deliveries per alarm."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field

from hub.api.auth import current_user
from hub.auth.policy import requires
from hub.auth.service import ALL_STAFF, ROLES
from hub.notify.models import Delivery, Notice
from hub.notify.service import Notifier, Subscriptions

router = APIRouter(tags=["notify"])
# Everyone logged in may register their own browser; the responders' role joins by being in ROLES
SELF_ROLES = tuple(r for r in (*ROLES, "responder") if r in ALL_STAFF)
AlarmId = Annotated[str, Path(max_length=36)]


def _notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.hub.notifier
    return notifier


class VapidKey(BaseModel):
    available: bool = Field(description="Whether Web Push is among the hub's channels")
    public_key: str | None = Field(description="applicationServerKey for PushManager.subscribe (base64url)")


class SubscriptionKeys(BaseModel):
    p256dh: str = Field(min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_=-]+$")
    auth: str = Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_=-]+$")


class SubscriptionIn(BaseModel):
    """What ``PushSubscription.toJSON()`` gives in the browser."""

    endpoint: str = Field(min_length=10, max_length=1024, pattern=r"^https?://[^\s]+$")
    keys: SubscriptionKeys


class SubscriptionOut(BaseModel):
    endpoint: str = Field(max_length=1024)


class ContactIn(BaseModel):
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{5,20}$", description="Mobile number, digits")


class TestNotice(BaseModel):
    recipients: list[str] = Field(min_length=1, max_length=500, description="usernames, grid:ID or team:ID")
    text: str = Field(default="测试通知 / test notice", max_length=500)


@router.get("/api/notify/webpush/key", response_model=VapidKey)
@requires(*SELF_ROLES)
def webpush_key(request: Request) -> VapidKey:
    """The VAPID public key a browser subscribes with."""
    push = _notifier(request).webpush
    return VapidKey(available=push is not None, public_key=push.public_key if push else None)


@router.post("/api/notify/webpush/subscriptions", status_code=201, response_model=SubscriptionOut)
@requires(*SELF_ROLES)
def webpush_subscribe(body: SubscriptionIn, request: Request) -> SubscriptionOut:
    """Register this browser for the logged-in user (again after a new subscription: the old one is replaced)."""
    if _notifier(request).webpush is None:
        raise HTTPException(409, "Web Push is not among this hub's channels (PINGAN_NOTIFY_ORDER) / "
                                 "本中心未启用网页推送")
    Subscriptions(request.app.state.hub.engine).add(current_user(request).username, body.endpoint, body.keys.p256dh,
                                                    body.keys.auth, request.headers.get("user-agent"))
    return SubscriptionOut(endpoint=body.endpoint)


@router.delete("/api/notify/webpush/subscriptions", status_code=204, response_class=Response)
@requires(*SELF_ROLES)
def webpush_unsubscribe(body: SubscriptionOut, request: Request) -> Response:
    """Unregister this browser (only the user's own subscription)."""
    if not Subscriptions(request.app.state.hub.engine).remove(body.endpoint, current_user(request).username):
        raise HTTPException(404, "no such subscription of yours / 没有此订阅")
    return Response(status_code=204)


@router.put("/api/notify/contacts/{username}", status_code=204, response_class=Response)
@requires("admin")
def set_contact(username: Annotated[str, Path(max_length=64)], body: ContactIn, request: Request) -> Response:
    """The mobile number the robots @-mention and SMS goes to."""
    if username not in {u["username"] for u in request.app.state.hub.auth.list_users()}:
        raise HTTPException(404, f"no user {username!r} / 没有此用户")
    _notifier(request).set_phone(username, body.phone)
    return Response(status_code=204)


@router.post("/api/notify/test", response_model=list[Delivery])
@requires("admin")
async def notify_test(body: TestNotice, request: Request) -> list[Delivery]:
    """Send a test notice now and answer with what each channel did (checks the channels' settings)."""
    return await _notifier(request).notify(body.recipients, Notice(kind="alarm.test", text=body.text))


@router.get("/api/alarms/{alarm_id}/deliveries", response_model=list[Delivery])
@requires("operator", "admin")
def alarm_deliveries(alarm_id: AlarmId, request: Request) -> list[Delivery]:
    """Every channel tried for every recipient of this alarm's notices, in order: sent, failed (why), skipped."""
    return _notifier(request).deliveries(alarm_id)
