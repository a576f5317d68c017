"""Inline SVG plots: rates with intervals, and rate ratios. Plain strings, every label escaped.

SVG written by hand rather than by a plotting library: the report must open with no network and
no fonts or scripts fetched, and a dot-and-interval chart is a few dozen elements.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from deploysim.stats import PER_100K

_LOGGED_COLOUR = "#777"
_PALETTE = ("#2f6fbf", "#c4512b", "#2f9a5a", "#8a4fbf", "#b8860b", "#1a9aa0", "#c23b7a")
_WORSE, _BETTER, _NEUTRAL = "#c0392b", "#2e8b57", "#777"


@dataclass(frozen=True, slots=True)
class Point:
    """One row of a dot-and-interval chart."""

    label: str
    value: float
    low: float
    high: float
    colour: str
    tooltip: str


def colour_for(model: str, models: Sequence[str]) -> str:
    """A stable colour per model; the logged responses are grey."""
    if model == "logged":
        return _LOGGED_COLOUR
    others = [m for m in models if m != "logged"]
    index = others.index(model) if model in others else len(others)
    return _PALETTE[index % len(_PALETTE)]


def rate_chart(title: str, points: Sequence[Point]) -> str:
    """Rates per 100k on a linear axis from 0, one row per point (dot = rate, bar = interval)."""
    top = max((p.high for p in points), default=0.0) * PER_100K
    ticks = _nice_ticks(0.0, top if top > 0 else 1.0)
    return _chart(title, points, ticks, scale=PER_100K, log=False, reference=None)


def ratio_chart(title: str, points: Sequence[Point]) -> str:
    """Rate ratios on a log axis with a line at 1 (no change)."""
    finite = [v for p in points for v in (p.low, p.high) if v > 0 and math.isfinite(v)]
    lo = min([*finite, 0.5])
    hi = max([*finite, 2.0])
    ticks = [t for t in (0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if lo <= t <= hi]
    ticks = sorted({*ticks, lo, hi})
    return _chart(title, points, ticks, scale=1.0, log=True, reference=1.0)


def ratio_colour(ratio: float, significant: bool) -> str:
    """Red for a significant rise of an undesired behaviour, green for a fall, else grey."""
    if not significant:
        return _NEUTRAL
    return _WORSE if ratio > 1 else _BETTER


def _chart(
    title: str,
    points: Sequence[Point],
    ticks: Sequence[float],
    *,
    scale: float,
    log: bool,
    reference: float | None,
) -> str:
    label_w, plot_w, row_h, pad_top, pad_bottom = 230, 420, 22, 26, 30
    width = label_w + plot_w + 20
    height = pad_top + row_h * max(1, len(points)) + pad_bottom
    x0, x1 = ticks[0], ticks[-1]

    def x(v: float) -> float:
        v = min(max(v, x0), x1)
        if log:
            span = math.log(x1) - math.log(x0)
            frac = (math.log(max(v, x0)) - math.log(x0)) / span if span else 0.5
        else:
            frac = (v - x0) / (x1 - x0) if x1 > x0 else 0.0
        return label_w + frac * plot_w

    parts = [
        f'<svg class=chart xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_a(title)}">',
        f"<title>{_t(title)}</title>",
        f'<text x="0" y="15" font-weight="600" font-size="13">{_t(title)}</text>',
    ]
    axis_y = pad_top + row_h * max(1, len(points)) + 4
    for t in ticks:
        tx = x(t)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{pad_top - 4}" x2="{tx:.1f}" y2="{axis_y}" stroke="#e4e4e4"/>'
        )
        parts.append(
            f'<text x="{tx:.1f}" y="{axis_y + 14}" font-size="11" text-anchor="middle" '
            f'fill="#555">{_t(_fmt_tick(t))}</text>'
        )
    if reference is not None:
        rx = x(reference)
        parts.append(
            f'<line x1="{rx:.1f}" y1="{pad_top - 4}" x2="{rx:.1f}" y2="{axis_y}" '
            'stroke="#333" stroke-dasharray="3,3"/>'
        )
    for i, p in enumerate(points):
        cy = pad_top + row_h * i + row_h / 2
        lo, hi, v = x(p.low * scale), x(p.high * scale), x(p.value * scale)
        parts.append(
            f"<g class=pt><title>{_t(p.tooltip)}</title>"
            f'<text x="{label_w - 8}" y="{cy + 4:.1f}" font-size="12" text-anchor="end">'
            f"{_t(_short(p.label, 34))}</text>"
            f'<line x1="{lo:.1f}" y1="{cy:.1f}" x2="{hi:.1f}" y2="{cy:.1f}" '
            f'stroke="{p.colour}" stroke-width="2.5"/>'
            f'<circle cx="{v:.1f}" cy="{cy:.1f}" r="4.5" fill="{p.colour}"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    top = math.ceil(hi / step) * step
    count = round((top - lo) / step)
    return [lo + i * step for i in range(count + 1)]


def _fmt_tick(v: float) -> str:
    if v >= 100 or v == int(v):
        return f"{v:,.0f}"
    return f"{v:g}"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _t(text: str) -> str:
    return html.escape(text, quote=False)


def _a(text: str) -> str:
    return html.escape(text, quote=True)
