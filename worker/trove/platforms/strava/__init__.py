"""Strava (API v3): everything Trove knows of Strava lives in this package.

- `client`: configuration, error mapping, the app-wide rate-limit headers
- `oauth`: authorize URL, code exchange, refresh (rotating refresh tokens)
- `sync`: the connector (list pages, details, photos, push events, confirmations)
- `normalize`: activities as posts
- `webhooks`: the push-event door (secret callback URL, handshake, validation)
- `subscriptions`: `trove strava subscribe|unsubscribe|status`
- `export`: its own export file read for `trove import` (the simulator's builder: simulators/strava_export)
- `demo`: `trove simulate strava` and what `trove run` does with the simulator (trove.simulators.strava)
"""

from __future__ import annotations

from trove.platforms.strava.client import StravaConfig
from trove.platforms.strava.demo import StravaDemo, StravaSimulatorCommand
from trove.platforms.strava.export import StravaExportReader
from trove.platforms.strava.oauth import StravaOAuth
from trove.platforms.strava.subscriptions import StravaSubscriptions
from trove.platforms.strava.sync import StravaConnector
from trove.platforms.strava.webhooks import StravaWebhooks


class StravaPlatform:
    name = "strava"

    def __init__(self, config: StravaConfig | None = None) -> None:
        config = config or StravaConfig.from_environment()
        self.connector = StravaConnector(config)
        self.oauth = StravaOAuth(config)
        self.webhooks = StravaWebhooks()
        self.subscriptions = StravaSubscriptions(config)
        self.simulator = StravaSimulatorCommand()
        self.demo = StravaDemo()
        self.stream = None  # Strava has no event stream: webhooks and polling
        self.export = StravaExportReader()
