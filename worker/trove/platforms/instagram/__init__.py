"""Instagram (the Instagram API with Instagram Login, graph.instagram.com): everything Trove knows of
Instagram lives in this package.

- `client`: configuration, Meta's error codes, the usage headers (X-App-Usage, X-Business-Use-Case-Usage)
- `oauth`: Instagram Login, the short- to long-lived token exchange, refreshing the token itself
- `sync`: the connector (/me/media, /me/stories, media by id, fresh CDN URLs)
- `normalize`: media as posts (posts, carousels, reels, stories) and the public projection
- `webhooks` / `events`: signed deliveries (X-Hub-Signature-256) and what they ask for
- `subscriptions`: `trove instagram subscribe|unsubscribe|status`
- `export`: its own export file read for `trove import` (the simulator's builder: simulators/instagram_export)
- `demo`: `trove simulate instagram` and what `trove run` does with the simulator
"""

from __future__ import annotations

from trove.platforms.instagram.client import InstagramConfig
from trove.platforms.instagram.demo import InstagramDemo, InstagramSimulatorCommand
from trove.platforms.instagram.export import InstagramExportReader
from trove.platforms.instagram.oauth import InstagramOAuth
from trove.platforms.instagram.subscriptions import InstagramSubscriptions
from trove.platforms.instagram.sync import InstagramConnector
from trove.platforms.instagram.webhooks import InstagramWebhooks


class InstagramPlatform:
    name = "instagram"

    def __init__(self, config: InstagramConfig | None = None) -> None:
        config = config or InstagramConfig.from_environment()
        self.connector = InstagramConnector(config)
        self.oauth = InstagramOAuth(config)
        # Read at each delivery: the secret is configuration, the same one the OAuth client uses.
        self.webhooks = InstagramWebhooks(lambda: config.app_secret)
        self.subscriptions = InstagramSubscriptions(config)
        self.simulator = InstagramSimulatorCommand()
        self.demo = InstagramDemo()
        self.stream = None  # Instagram has no event stream: polling and webhooks
        self.export = InstagramExportReader()
