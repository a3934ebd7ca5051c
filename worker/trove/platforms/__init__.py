"""Platform connectors: one module per platform behind the protocol in `base`."""

from __future__ import annotations

import importlib
import os

from trove.connectors.base import Connector

# Built-in connectors register here as the platform issues land: {"strava": "trove.connectors.strava:..."}
BUILTIN: dict[str, str] = {"strava": "trove.connectors.strava:StravaConnector"}


def _load(path: str) -> Connector:
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"connector {path!r} must be written module:Class")
    factory = getattr(importlib.import_module(module_name), attribute)
    return factory()


def load_connectors() -> dict[str, Connector]:
    """Built-in connectors plus any named in $TROVE_CONNECTORS (`module:Class,...`), keyed by platform."""
    paths = list(BUILTIN.values())
    paths += [p.strip() for p in os.environ.get("TROVE_CONNECTORS", "").split(",") if p.strip()]
    connectors: dict[str, Connector] = {}
    for path in paths:
        connector = _load(path)
        connectors[connector.platform] = connector
    return connectors
