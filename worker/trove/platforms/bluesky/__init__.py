"""Bluesky (AT Protocol): everything Trove knows of Bluesky lives in this package.

- `export`: reading the platform's own export file (`trove import`)
- `config`: settings (PLC directory, AppView, Jetstream, DNS, the OAuth client key)
- `identity`: handle -> DID -> DID document -> PDS -> authorization server, bounded fetches
- `dpop`, `oauth`: atproto OAuth as a confidential client (PAR, PKCE, DPoP, private_key_jwt, refresh)
- `client`: XRPC calls, errors and rate-limit headers
- `sync`: the connector (the repo as the source of truth, AppView hydration, Jetstream events, confirmations)
- `normalize`: records and views as posts (facets to HTML, embeds, blobs by CID, the public allow-list)
- `stream`: the Jetstream consumer the worker runs
- `demo`: `trove simulate bluesky` and what `trove run` does with the simulator (trove.simulators.bluesky)
"""

from __future__ import annotations

from trove.platforms.bluesky.config import BlueskyConfig
from trove.platforms.bluesky.demo import BlueskyDemo, BlueskySimulatorCommand
from trove.platforms.bluesky.export import BlueskyExportReader
from trove.platforms.bluesky.oauth import BlueskyOAuth
from trove.platforms.bluesky.stream import JetstreamConsumer
from trove.platforms.bluesky.sync import BlueskyConnector


class BlueskyPlatform:
    name = "bluesky"

    def __init__(self, config: BlueskyConfig | None = None) -> None:
        config = config or BlueskyConfig.from_env()
        self.connector = BlueskyConnector(config)
        self.oauth = BlueskyOAuth(config)
        self.webhooks = None  # real time comes from Jetstream, not webhooks
        self.subscriptions = None
        self.simulator = BlueskySimulatorCommand()
        self.demo = BlueskyDemo()
        self.stream = JetstreamConsumer(config)
        self.export = BlueskyExportReader(config)
