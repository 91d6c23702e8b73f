"""Notify's HTTP routes: Web Push key and subscriptions, contacts, a test notice, deliveries per alarm."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field

from hub.api.deps import AuthDep, EngineDep, NotifierDep, UserDep
from hub.api.models.notify import SubscriptionOut, VapidKey
from hub.auth.policy import requires
from hub.auth.service import ROLES
from hub.notify.models import Delivery, Notice
from hub.notify.service import Subscriptions

router = APIRouter(tags=["notify"])
# Everyone logged in may register their own browser; the responders' role joins by being in ROLES
SELF_ROLES = ROLES  # everyone registers their own browser, responders too: their phone is where a task must ring
AlarmId = Annotated[str, Path(max_length=36)]


class SubscriptionKeys(BaseModel):
    p256dh: str = Field(min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_=-]+$")
    auth: str = Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_=-]+$")


class SubscriptionIn(BaseModel):
    """What ``PushSubscription.toJSON()`` gives in the browser."""

    endpoint: str = Field(min_length=10, max_length=1024, pattern=r"^https?://[^\s]+$")
    keys: SubscriptionKeys


class SubscriptionRef(BaseModel):
    endpoint: str = Field(max_length=1024)


class ContactIn(BaseModel):
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{5,20}$", description="Mobile number, digits")


class TestNotice(BaseModel):
    recipients: list[str] = Field(min_length=1, max_length=500, description="usernames, grid:ID or team:ID")
    text: str = Field(default="测试通知 / test notice", max_length=500)


@router.get("/api/notify/webpush/key", response_model=VapidKey)
@requires(*SELF_ROLES)
def webpush_key(notifier: NotifierDep) -> VapidKey:
    """The VAPID public key a browser subscribes with."""
    push = notifier.webpush
    return VapidKey(available=push is not None, public_key=push.public_key if push else None)


@router.post("/api/notify/webpush/subscriptions", status_code=201, response_model=SubscriptionOut)
@requires(*SELF_ROLES)
def webpush_subscribe(body: SubscriptionIn, request: Request, notifier: NotifierDep, engine: EngineDep,
                      user: UserDep) -> SubscriptionOut:
    """Register this browser for the logged-in user (again after a new subscription: the old one is replaced)."""
    if notifier.webpush is None:
        raise HTTPException(409, "Web Push is not among this hub's channels (PINGAN_NOTIFY_ORDER) / "
                                 "本中心未启用网页推送")
    Subscriptions(engine).add(user.username, body.endpoint, body.keys.p256dh, body.keys.auth,
                              request.headers.get("user-agent"))
    return SubscriptionOut(endpoint=body.endpoint)


@router.delete("/api/notify/webpush/subscriptions", status_code=204, response_class=Response)
@requires(*SELF_ROLES)
def webpush_unsubscribe(body: SubscriptionRef, engine: EngineDep, user: UserDep) -> Response:
    """Unregister this browser (only the user's own subscription)."""
    if not Subscriptions(engine).remove(body.endpoint, user.username):
        raise HTTPException(404, "no such subscription of yours / 没有此订阅")
    return Response(status_code=204)


@router.put("/api/notify/contacts/{username}", status_code=204, response_class=Response)
@requires("admin")
def set_contact(username: Annotated[str, Path(max_length=64)], body: ContactIn, auth: AuthDep,
                notifier: NotifierDep) -> Response:
    """The mobile number the robots @-mention and SMS goes to."""
    if username not in {u["username"] for u in auth.list_users()}:
        raise HTTPException(404, f"no user {username!r} / 没有此用户")
    notifier.set_phone(username, body.phone)
    return Response(status_code=204)


@router.post("/api/notify/test", response_model=list[Delivery], response_model_exclude_unset=True)
@requires("admin")
async def notify_test(body: TestNotice, notifier: NotifierDep) -> list[Delivery]:
    """Send a test notice now and answer with what each channel did (checks the channels' settings)."""
    return await notifier.notify(body.recipients, Notice(kind="alarm.test", text=body.text))


@router.get("/api/alarms/{alarm_id}/deliveries", response_model=list[Delivery], response_model_exclude_unset=True)
@requires("operator", "admin")
def alarm_deliveries(alarm_id: AlarmId, notifier: NotifierDep) -> list[Delivery]:
    """Every channel tried for every recipient of this alarm's notices, in order: sent, failed (why), skipped."""
    return notifier.deliveries(alarm_id)
