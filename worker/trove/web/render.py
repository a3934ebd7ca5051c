"""Turning archive rows into safe page parts: jinja2 (autoescaped everywhere), post HTML through ammonia's
sanitizer (nh3), search highlights, human numbers and dates, and the charts as SVG drawn here (nothing is
fetched from anywhere to draw them)."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import nh3
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).parent / "templates"

# What a post's HTML may keep: text structure and links, nothing that runs, loads or styles.
ALLOWED_TAGS = {"a", "p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote", "code", "pre", "span"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}


def safe_html(html: str | None) -> Markup:
    if not html:
        return Markup("")
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow ugc",
    )
    return Markup(cleaned)  # the sanitizer's output


START, STOP = "\x01", "\x02"


def highlighted(text: str) -> Markup:
    """Postgres' ts_headline output (matches between \\x01 and \\x02) as escaped text with <mark>s."""
    result: list[str] = []
    for index, piece in enumerate(text.split(START)):
        match, _, rest = piece.partition(STOP) if index else ("", "", piece)
        if match:
            result.append(f"<mark>{escape(match)}</mark>")
        result.append(str(escape(rest.replace(STOP, ""))))
    return Markup("".join(result))  # every piece escaped above


def human_bytes(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} bytes"


def day(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%-d %b %Y")


def when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(UTC).strftime("%-d %b %Y, %H:%M UTC")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'' if count == 1 else 's'}"
            break
    else:
        text = "less than a minute"
    return f"in {text}" if future else f"{text} ago"


def alt_texts(public_data: Any) -> list[str]:
    """The media descriptions a normalizer put in the post's public projection (`alt` fields), in order."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            alt = value.get("alt")
            if isinstance(alt, str):
                found.append(alt)
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(public_data)
    return found


LEVELS = ["#ebedf0", "#c6e48b", "#7bc96f", "#239a3b", "#196127"]


def heatmap_svg(per_day: dict[date, int], end: date, weeks: int = 53) -> Markup:
    """A calendar of posts per day (columns are weeks, Monday on top), as GitHub draws contributions."""
    cell, gap = 11, 2
    start = end - timedelta(days=end.weekday() + 7 * (weeks - 1))
    top = max(per_day.values(), default=0)
    rects: list[str] = []
    day = start
    while day <= end:
        count = per_day.get(day, 0)
        level = 0 if count == 0 or top == 0 else min(4, 1 + (count * 4 - 1) // top)
        column = (day - start).days // 7
        x, y = 30 + column * (cell + gap), 15 + day.weekday() * (cell + gap)
        label = f"{count} post{'' if count == 1 else 's'} on {day:%-d %b %Y}"
        rects.append(
            f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" rx="2" fill="{LEVELS[level]}"'
            f' data-day="{day.isoformat()}" data-count="{count}"><title>{escape(label)}</title></rect>'
        )
        day += timedelta(days=1)
    months: list[str] = []
    for column in range(weeks):
        first = start + timedelta(days=7 * column)
        if first.day <= 7:
            months.append(f'<text x="{30 + column * (cell + gap)}" y="10">{first:%b}</text>')
    days = "".join(
        f'<text x="0" y="{15 + row * (cell + gap) + 9}">{name}</text>'
        for row, name in ((0, "Mon"), (2, "Wed"), (4, "Fri"))
    )
    width = 30 + weeks * (cell + gap)
    height = 15 + 7 * (cell + gap)
    total = sum(per_day.values())
    title = f"Posts per day over the last year: {total} in all"
    return Markup(  # numbers and escaped labels only
        f'<svg class="heatmap" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"'
        f' xmlns="http://www.w3.org/2000/svg" font-size="9" fill="#57606a">{"".join(months)}{days}'
        f"{''.join(rects)}</svg>"
    )


PALETTE = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#0a3069"]


def line_chart_svg(series: dict[str, list[tuple[datetime, float]]], title: str) -> Markup:
    """Small multiple-line chart (engagement over time): one line per measure, its last value labelled."""
    width, height, left, right, top, bottom = 640, 220, 48, 120, 12, 28
    points = [p for values in series.values() for p in values]
    if not points:
        return Markup("")
    t0 = min(p[0] for p in points).timestamp()
    t1 = max(p[0] for p in points).timestamp()
    v1 = max(max(p[1] for p in points), 1.0)
    span = max(t1 - t0, 1.0)

    def x(moment: datetime) -> float:
        return left + (moment.timestamp() - t0) / span * (width - left - right)

    def y(value: float) -> float:
        return top + (1 - value / v1) * (height - top - bottom)

    first, last = escape(when(min(p[0] for p in points))), escape(when(max(p[0] for p in points)))
    parts = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#d0d7de"/>',
        f'<text x="{left - 6}" y="{y(v1) + 4:.1f}" text-anchor="end">{v1:.0f}</text>',
        f'<text x="{left - 6}" y="{height - bottom + 4}" text-anchor="end">0</text>',
        f'<text x="{left}" y="{height - 8}">{first}</text>',
        f'<text x="{width - right}" y="{height - 8}" text-anchor="end">{last}</text>',
    ]
    labels: list[tuple[float, str, str, float]] = []  # (y, colour, name, last value)
    for index, (name, values) in enumerate(sorted(series.items())):
        color = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in values)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        for t, v in values:
            parts.append(
                f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(name)}: {v:g} on {escape(when(t))}</title></circle>"
            )
        labels.append((y(values[-1][1]), color, name, values[-1][1]))
    # Each line's name at its last value, pushed apart where values are close so no two overlap.
    placed = -1e9
    for label_y, color, name, value in sorted(labels):
        placed = max(label_y, placed + 13)
        parts.append(
            f'<text x="{width - right + 6}" y="{placed + 4:.1f}" fill="{color}">{escape(name)} {value:g}</text>'
        )
    return Markup(  # numbers and escaped labels only
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"'
        f' xmlns="http://www.w3.org/2000/svg" font-size="11" fill="#57606a">{"".join(parts)}</svg>'
    )


PLURALS = {"reply": "replies", "kudos": "kudos", "pr": "PRs"}
SINGULARS = {"pr": "PR"}


def measure_name(key: str, value: float) -> str:
    """An engagement measure's key as words: likeCount, like_count, likes -> "likes" (or "like" for one)."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key).replace("_", " ").lower().split()
    if len(words) > 1 and words[-1] in ("count", "total"):
        words = words[:-1]
    if not words:
        return key
    last = words[-1]
    singular = last[:-1] if last.endswith("s") and last not in PLURALS and len(last) > 3 else last
    words[-1] = (
        singular if value == 1 else PLURALS.get(singular, singular if singular.endswith("s") else singular + "s")
    )
    return " ".join(words)


def numeric_stats(stats: Any) -> dict[str, float]:
    """The numeric measures of one engagement record (likes, comments, kudos...), whatever the platform."""
    if not isinstance(stats, dict):
        return {}
    found: dict[str, float] = {}
    for key, value in stats.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer no float holds: not a count anyone can read
                continue
            if math.isfinite(number):
                found[str(key)] = number
    return found


def web_url(url: Any) -> str | None:
    """A link to the outside only when it is http(s): a stored permalink or media URL never becomes a script."""
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        return url
    return None


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(human_bytes=human_bytes, when=when, day=day, ago=ago, safe_html=safe_html, web_url=web_url)
    return env
