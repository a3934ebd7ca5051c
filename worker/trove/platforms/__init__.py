"""The platform registry: every platform Trove knows, each one package behind `base.Platform`.

The HTTP routes, the worker, the CLI and `trove run` dispatch through `load_platforms()` and never name a
platform. Extra platforms (tests, plugins) load from $TROVE_PLATFORMS=`module:Factory,...`; a factory may
make a whole `Platform` or just a sync `Connector` (a platform with nothing else)."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from trove.platforms.base import (
    Connector,
    Demo,
    ExportReader,
    OAuth,
    Platform,
    Simulator,
    Stream,
    Subscriptions,
    Webhooks,
)

BUILTIN: dict[str, str] = {
    "bluesky": "trove.platforms.bluesky:BlueskyPlatform",
    "instagram": "trove.platforms.instagram:InstagramPlatform",
    "strava": "trove.platforms.strava:StravaPlatform",
}


@dataclass
class ConnectorOnly:
    """A platform that only syncs: no OAuth connect, webhooks, subscriptions or simulator."""

    connector: Connector
    oauth: OAuth | None = None
    webhooks: Webhooks | None = None
    subscriptions: Subscriptions | None = None
    simulator: Simulator | None = None
    demo: Demo | None = None
    stream: Stream | None = None
    export: ExportReader | None = None

    @property
    def name(self) -> str:
        return self.connector.platform


def _load(path: str) -> Platform:
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"platform {path!r} must be written module:Factory")
    made: Any = getattr(importlib.import_module(module_name), attribute)()
    return made if hasattr(made, "connector") else ConnectorOnly(made)


def load_platforms() -> dict[str, Platform]:
    """Built-in platforms plus any named in $TROVE_PLATFORMS, keyed by name (a later one replaces)."""
    paths = list(BUILTIN.values())
    paths += [p.strip() for p in os.environ.get("TROVE_PLATFORMS", "").split(",") if p.strip()]
    platforms: dict[str, Platform] = {}
    for path in paths:
        platform = _load(path)
        platforms[platform.name] = platform
    return platforms


def load_connectors() -> dict[str, Connector]:
    """The sync connector of every platform, keyed by platform."""
    return {name: platform.connector for name, platform in load_platforms().items()}
