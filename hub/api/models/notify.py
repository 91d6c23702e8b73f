"""Response models of hub/api/notify.py (the rule: hub/api/models/__init__.py). A delivery row is
``hub.notify.models.Delivery``, the feature's own model, used as it is."""

from __future__ import annotations

from pydantic import Field

from hub.api.models import ApiModel


class VapidKey(ApiModel):
    available: bool = Field(description="Whether Web Push is among the hub's channels")
    public_key: str | None = Field(description="applicationServerKey for PushManager.subscribe (base64url)")


class SubscriptionOut(ApiModel):
    endpoint: str = Field(max_length=1024)
