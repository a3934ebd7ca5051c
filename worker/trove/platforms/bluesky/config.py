"""Bluesky settings, read from the environment in one place.

- TROVE_BLUESKY_PLC_URL        the PLC directory (did:plc documents), default https://plc.directory
- TROVE_BLUESKY_APPVIEW_URL    the AppView (app.bsky.* XRPC), default https://public.api.bsky.app
- TROVE_BLUESKY_JETSTREAM_URL  Jetstream, default wss://jetstream2.us-east.bsky.network
- TROVE_BLUESKY_DNS            optional "ip:port" nameserver for `_atproto.<handle>` TXT lookups (the simulator
                               runs one); unset: the system resolver
- TROVE_BLUESKY_CLIENT_KEY     our OAuth client's ES256 private key (PEM); connecting is configured when set
- TROVE_BLUESKY_INSECURE_HTTP  "1" allows http:// PDS, issuer and well-known URLs (the simulator). Honoured on
                               the local stack only (trove.config.local_stack()): elsewhere it is ignored.
- TROVE_PUBLIC_URL             (trove.config.public_url()) the base of our client id and redirect URI
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trove.config import ConfigError, local_stack, public_url

DEFAULT_PLC_URL = "https://plc.directory"
DEFAULT_APPVIEW_URL = "https://public.api.bsky.app"
DEFAULT_JETSTREAM_URL = "wss://jetstream2.us-east.bsky.network"
OAUTH_PATH = "/functions/v1/oauth-bluesky"


def parse_nameserver(value: str) -> tuple[str, int]:
    """ "127.0.0.1:5353", "[::1]:53" or a bare address (port 53): dnspython wants an IP address, not a name."""
    host, port = value.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif host.count(":") == 1:
        host, port = host.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError as bad:
        raise ConfigError(f"TROVE_BLUESKY_DNS must be an IP address with an optional port, not {value!r}") from bad
    if not 0 < number < 65536:
        raise ConfigError(f"TROVE_BLUESKY_DNS has no valid port: {value!r}")
    return host, number


@dataclass(frozen=True)
class BlueskyConfig:
    plc_url: str = DEFAULT_PLC_URL
    appview_url: str = DEFAULT_APPVIEW_URL
    jetstream_url: str = DEFAULT_JETSTREAM_URL
    dns: tuple[str, int] | None = None  # nameserver for handle TXT lookups; None: the system's
    client_key_pem: str = field(default="", repr=False)  # secret: never in a repr or a log
    insecure_http: bool = False

    @classmethod
    def from_env(cls) -> BlueskyConfig:
        dns = os.environ.get("TROVE_BLUESKY_DNS", "").strip()
        return cls(
            plc_url=(os.environ.get("TROVE_BLUESKY_PLC_URL") or DEFAULT_PLC_URL).rstrip("/"),
            appview_url=(os.environ.get("TROVE_BLUESKY_APPVIEW_URL") or DEFAULT_APPVIEW_URL).rstrip("/"),
            jetstream_url=(os.environ.get("TROVE_BLUESKY_JETSTREAM_URL") or DEFAULT_JETSTREAM_URL).rstrip("/"),
            dns=parse_nameserver(dns) if dns else None,
            client_key_pem=os.environ.get("TROVE_BLUESKY_CLIENT_KEY", "").strip(),
            # Plain HTTP identity and OAuth endpoints are only for the simulator on this machine.
            insecure_http=os.environ.get("TROVE_BLUESKY_INSECURE_HTTP") == "1" and local_stack(),
        )

    # --- our OAuth client ------------------------------------------------------------------------------
    @property
    def oauth_base(self) -> str:
        # Read each time (not at import): tests and `trove run` set TROVE_PUBLIC_URL after the import.
        return f"{public_url()}{OAUTH_PATH}"

    @property
    def client_id(self) -> str:
        return f"{self.oauth_base}/client-metadata.json"

    @property
    def jwks_uri(self) -> str:
        return f"{self.oauth_base}/jwks.json"

    @property
    def redirect_uri(self) -> str:
        return f"{self.oauth_base}/callback"

    def configured(self) -> bool:
        return bool(self.client_key_pem)

    @cached_property
    def client_key(self) -> ec.EllipticCurvePrivateKey:
        """The client's signing key; ConfigError when the PEM is not an EC P-256 private key."""
        if not self.client_key_pem:
            raise ConfigError("TROVE_BLUESKY_CLIENT_KEY is not set")
        try:
            key = serialization.load_pem_private_key(self.client_key_pem.encode(), password=None)
        except (ValueError, TypeError) as bad:  # never echo the PEM: it is the secret
            raise ConfigError("TROVE_BLUESKY_CLIENT_KEY is not an unencrypted PEM private key") from bad
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError("TROVE_BLUESKY_CLIENT_KEY must be an EC P-256 (ES256) private key")
        return key
