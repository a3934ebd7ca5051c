"""An export format that exists only in the tests, for the fake platform (tests.support.fake_connector):
a ZIP with fake-export/owner.json, fake-export/items.json (items shaped like the fake API's) and the photos
under fake-export/media/. It exercises the import engine without any real platform's format."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from tests.support.fake_connector import FakeConnector

from trove.platforms.base import (
    ExportArchiveView,
    ExportFile,
    ExportMatch,
    ExportOwner,
    ExportRecord,
    ExportUnreadable,
)

# A tiny valid JPEG header, enough for the sniffer.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64


class FakeExportReader:
    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at  # raise once the record of this number is reached (a crash mid-import)

    def recognizes(self, archive: ExportArchiveView) -> bool:
        return "fake-export/items.json" in archive.names()

    def owner(self, archive: ExportArchiveView) -> ExportOwner:
        try:
            data = json.loads(archive.read("fake-export/owner.json"))
        except (ValueError, ExportUnreadable) as error:
            raise ExportUnreadable(f"fake-export/owner.json: unreadable ({error})") from error
        return ExportOwner(data.get("id"), data["username"])

    async def prepare(self, http: httpx.AsyncClient, owner: ExportOwner) -> dict[str, Any]:
        return {}

    def records(
        self, archive: ExportArchiveView, owner: ExportOwner, context: dict[str, Any]
    ) -> Iterator[ExportRecord]:
        items = json.loads(archive.read("fake-export/items.json"))
        normalize = FakeConnector.normalize
        for number, item in enumerate(items, start=1):
            if self.fail_at is not None and number == self.fail_at:
                self.fail_at = None
                raise RuntimeError("killed mid-import")
            if item.get("broken"):
                yield ExportRecord(f"item:{item['id']}", "export.item", item, problem=f"item {item['id']}: broken")
                continue
            data = {**item, "photo": {"id": item["photo"]["id"], "url": ""}, "trove_export": {"file": "items.json"}}
            post = normalize(None, data)  # type: ignore[arg-type]
            match = None
            if item.get("match"):
                post = type(post)(**{**post.__dict__, "platform_post_id": f"export:{item['id']}"})
                match = ExportMatch(datetime.fromisoformat(item["created_at"]), frozenset({"post"}))
            files = (ExportFile(item["photo"]["id"], item["photo"]["entry"]),) if item["photo"].get("entry") else ()
            yield ExportRecord(f"item:{item['id']}", "export.item", item, post, files, match)


@dataclass
class FakeExportPlatform:
    """What ImportRunner needs of a platform: its name, the connector (normalize) and the export reader."""

    export: FakeExportReader = field(default_factory=FakeExportReader)
    connector: Any = field(default_factory=lambda: FakeConnector.__new__(FakeConnector))
    name: str = "bluesky"


def item(n: int, text: str | None = None, **extra: Any) -> dict[str, Any]:
    from tests.support.fake_platform import PlatformState

    data = PlatformState().item(n)
    data["text"] = text or data["text"]
    data["photo"] = {"id": f"photo-{n}", "entry": f"fake-export/media/{n}.jpg"}
    data.update(extra)
    return data


def build_fake_export(
    path: Path,
    items: list[dict[str, Any]],
    owner: str | None = "alice-owner",
    username: str = "alice",
    missing_photos: tuple[int, ...] = (),
) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fake-export/owner.json", json.dumps({"id": owner, "username": username}))
        archive.writestr("fake-export/items.json", json.dumps(items))
        for it in items:
            entry = it.get("photo", {}).get("entry")
            if entry and it["id"] not in missing_photos:
                archive.writestr(entry, JPEG + str(it["id"]).encode())
    return path
