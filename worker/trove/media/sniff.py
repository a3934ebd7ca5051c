"""What a file really is, from its first bytes (the Content-Type header of a CDN is not trusted alone)."""

from __future__ import annotations

MAX_SNIFF = 64

# (offset, magic, content type, extension)
SIGNATURES: list[tuple[int, bytes, str, str]] = [
    (0, b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (0, b"GIF87a", "image/gif", "gif"),
    (0, b"GIF89a", "image/gif", "gif"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm", "webm"),
    (0, b"OggS", "audio/ogg", "ogg"),
    (0, b"ID3", "audio/mpeg", "mp3"),
    (0, b"\xff\xfb", "audio/mpeg", "mp3"),
    (0, b"\xff\xf3", "audio/mpeg", "mp3"),
    (0, b"\xff\xf1", "audio/aac", "aac"),
    (0, b"\xff\xf9", "audio/aac", "aac"),
]
FTYP_BRANDS: dict[bytes, tuple[str, str]] = {
    b"heic": ("image/heic", "heic"),
    b"heix": ("image/heic", "heic"),
    b"mif1": ("image/heif", "heif"),
    b"avif": ("image/avif", "avif"),
    b"qt  ": ("video/quicktime", "mov"),
    b"M4A ": ("audio/mp4", "m4a"),
}


def sniff(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) of an image, video or audio file; None for anything else."""
    for offset, magic, content_type, ext in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return content_type, ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav", "wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return FTYP_BRANDS.get(brand, ("video/mp4", "mp4"))
    return None
