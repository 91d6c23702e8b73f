"""The detection profile of a sensitive period, and what it does to one pole's config.

Why a YAML-to-YAML function: config.update carries the pole's whole config (hub/nodes/config_push.py), and the
hub knows a pole's config only from the pushes the pole applied. So the profile is applied to that text (the
"base"), and the revert at the end pushes the base text back unchanged: the pole returns to exactly what it
had, comments included, through the same validated, signed, trial-and-rollback path.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


class DetectionProfile(BaseModel):
    """What the poles in scope run during the period (none of the fields set: no push at all)."""

    model_config = ConfigDict(extra="forbid")
    loiter_s: float | None = Field(default=None, gt=0, le=3600, description=(
        "Loitering is reported after this many seconds in every person zone (lower than the pole's own "
        "setting only: a profile never makes a pole less alert)"))
    night_schedule: list[str] | None = Field(default=None, max_length=4, description=(
        "Windows 'HH:MM-HH:MM' that replace the schedule of zones that have one (a longer night); zones "
        "without a schedule are active all day already and stay so"))

    @field_validator("night_schedule")
    @classmethod
    def _windows(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = [w.strip() for w in value]
        for w in out:
            if not _WINDOW.match(w):
                raise ValueError(f"night schedule window {w!r} is not 'HH:MM-HH:MM' (e.g. 18:00-07:00) / "
                                 f"夜间时段 {w!r} 不是 HH:MM-HH:MM 格式（例如 18:00-07:00）")
        if not out:
            raise ValueError("night_schedule needs at least one window, or leave it out / 夜间时段至少一个，或不填")
        return out

    def is_empty(self) -> bool:
        return self.loiter_s is None and self.night_schedule is None


def apply_profile(base_yaml: str, profile: DetectionProfile) -> tuple[str | None, str]:
    """The pole's config with the profile applied, or None and why nothing changes (no zones, already as strict)."""
    tree: Any = yaml.safe_load(base_yaml)
    if not isinstance(tree, dict):
        return None, "the pole's config is not a mapping"
    vision = tree.get("vision")
    zones = vision.get("zones") if isinstance(vision, dict) else None
    if not isinstance(zones, list) or not zones:
        return None, "the pole has no detection zones (vision.zones) to make stricter"
    changed = []
    for zone in zones:
        if not isinstance(zone, dict):
            continue
        name = zone.get("name", "?")
        if profile.loiter_s is not None and "person" in (zone.get("classes") or ["person"]):
            old = zone.get("loiter_s")
            if old is None or float(old) > profile.loiter_s:
                zone["loiter_s"] = profile.loiter_s
                changed.append(f"{name}.loiter_s {old} → {profile.loiter_s:g}")
        if profile.night_schedule is not None and zone.get("schedule"):
            if list(zone["schedule"]) != profile.night_schedule:
                changed.append(f"{name}.schedule {zone['schedule']} → {profile.night_schedule}")
                zone["schedule"] = list(profile.night_schedule)
    if not changed:
        return None, "the pole's zones are already as strict as the profile"
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True), "; ".join(changed)
