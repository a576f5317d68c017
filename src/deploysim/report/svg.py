"""Inline SVG plots: rates with intervals, rate ratios, and log-log scatter plots (forecast vs
realised). Plain strings, every label escaped.

SVG written by hand rather than by a plotting library: the report must open with no network and
no fonts or scripts fetched, and a dot-and-interval chart is a few dozen elements.
"""

from __future__ import annotations

import hashlib
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
    return _chart(title, points, _log_ticks(lo, hi), scale=1.0, log=True, reference=1.0)


def _log_ticks(lo: float, hi: float, most: int = 9) -> list[float]:
    """Round 1-2-5 ticks from the last one at or below ``lo`` to the first at or above ``hi``
    (the axis ends on round values, never on a data value); thinned to powers of ten, then to
    every other power, when there would be more than ``most``."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    seq = [m * 10.0**e for e in range(first, last + 1) for m in (1, 2, 5)]
    start = max(t for t in seq if t <= lo * (1 + 1e-9))
    end = min(t for t in seq if t >= hi * (1 - 1e-9))
    ticks = [t for t in seq if start <= t <= end]
    if len(ticks) > most:
        ticks = [t for t in ticks if round(math.log10(t), 9).is_integer() or t in (start, end)]
    while len(ticks) > most:
        ticks = ticks[::2] if ticks[-1] == ticks[::2][-1] else [*ticks[:-1:2], ticks[-1]]
    return ticks


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
            f'<text x="{tx:.1f}" y="{axis_y + 14}" class="tick" font-size="11" '
            f'text-anchor="middle" fill="#555">{_t(_fmt_tick(t))}</text>'
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


@dataclass(frozen=True, slots=True)
class XYPoint:
    """One point of a log-log scatter plot; ``series`` picks its colour and marker."""

    x: float
    y: float
    series: str
    tooltip: str


def loglog_scatter(
    title: str,
    points: Sequence[XYPoint],
    *,
    series: Sequence[str],
    x_label: str,
    y_label: str,
    band: Sequence[tuple[float, float, float]] = (),
    band_label: str = "",
    scale: float = 1.0,
    floor: float = 1e-7,
    ceiling: float = 1.0,
) -> str:
    """Points on log-log axes that share one range, with the diagonal y = x.

    The range spans the decades of the points' positive values, within [``floor``,
    ``ceiling``]; values outside it (zero included) sit on its edge. ``band`` holds (x, y low,
    y high) triples drawn as a shaded region clipped to the plot. Each series (in ``series``
    order) gets a colour and a marker shape, named in the legend; tick labels show values times
    ``scale``. Each point is a ``<g class=xy-pt>`` with its tooltip as ``<title>``.
    """
    lo, hi = _log_range([v for p in points for v in (p.x, p.y)], floor, ceiling)
    left, top, size, bottom, legend_w = 64, 30, 380, 46, 210
    width, height = left + size + legend_w, top + size + bottom
    span = math.log(hi) - math.log(lo)

    def frac(v: float) -> float:
        v = min(max(v, lo), hi) if math.isfinite(v) else lo
        return (math.log(v) - math.log(lo)) / span

    def px(v: float) -> float:
        return left + frac(v) * size

    def py(v: float) -> float:
        return top + size - frac(v) * size

    clip = "clip-" + hashlib.sha256(title.encode()).hexdigest()[:10]
    parts = [
        f'<svg class="chart xy" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{_a(title)}">',
        f"<title>{_t(title)}</title>",
        f'<text x="0" y="15" font-weight="600" font-size="13">{_t(title)}</text>',
        f'<clipPath id="{clip}"><rect x="{left}" y="{top}" width="{size}" height="{size}"/>'
        "</clipPath>",
    ]
    for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1):
        t = 10.0**e
        x, y = px(t), py(t)
        label = _t(_fmt_tick(t * scale))
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + size}" stroke="#e4e4e4"/>'
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + size}" y2="{y:.1f}" stroke="#e4e4e4"/>'
            f'<text x="{x:.1f}" y="{top + size + 15}" class="tick" font-size="11" '
            f'text-anchor="middle" fill="#555">{label}</text>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" font-size="11" text-anchor="end" '
            f'fill="#555">{label}</text>'
        )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#bbb"/>'
        f'<text x="{left + size / 2}" y="{top + size + 34}" font-size="12" '
        f'text-anchor="middle">{_t(x_label)}</text>'
        f'<text x="14" y="{top + size / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + size / 2})">{_t(y_label)}</text>'
    )
    edge = sorted((x, low, high) for x, low, high in band if min(x, low, high) > 0)
    if edge:
        # Not clamped: the clip path cuts the band at the plot's edges.
        def raw(v: float) -> float:
            return (math.log(v) - math.log(lo)) / span * size

        outline = [(x, high) for x, _, high in edge] + [(x, low) for x, low, _ in edge[::-1]]
        coords = " ".join(f"{left + raw(x):.1f},{top + size - raw(y):.1f}" for x, y in outline)
        parts.append(
            f'<polygon class=band points="{coords}" fill="#999" fill-opacity="0.18" '
            f'stroke="#999" stroke-dasharray="2,3" clip-path="url(#{clip})"/>'
        )
    parts.append(
        f'<line x1="{px(lo):.1f}" y1="{py(lo):.1f}" x2="{px(hi):.1f}" y2="{py(hi):.1f}" '
        'stroke="#333" stroke-dasharray="5,4"/>'
    )
    for p in points:
        i = series.index(p.series) if p.series in series else len(series)
        parts.append(
            f'<g class=xy-pt data-series="{_a(p.series)}"><title>{_t(p.tooltip)}</title>'
            f"{_marker(i, px(p.x), py(p.y))}</g>"
        )
    lx, ly = left + size + 18, top + 8
    entries = [(_marker(i, lx + 6, ly + 20 * i), name) for i, name in enumerate(series)]
    n = len(entries)
    entries.append(
        (
            f'<line x1="{lx - 2}" y1="{ly + 20 * n}" x2="{lx + 14}" y2="{ly + 20 * n}" '
            'stroke="#333" stroke-dasharray="5,4"/>',
            "forecast = realised",
        )
    )
    if edge:
        entries.append(
            (
                f'<rect x="{lx - 2}" y="{ly + 20 * (n + 1) - 6}" width="16" height="12" '
                'fill="#999" fill-opacity="0.18" stroke="#999" stroke-dasharray="2,3"/>',
                band_label,
            )
        )
    for i, (mark, name) in enumerate(entries):
        parts.append(
            f'<g class=legend>{mark}<text x="{lx + 20}" y="{ly + 20 * i + 4}" '
            f'font-size="12">{_t(_short(name, 28))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _log_range(values: Sequence[float], floor: float, ceiling: float) -> tuple[float, float]:
    """Whole decades around the positive finite ``values``, within [floor, ceiling]."""
    pos = [v for v in values if v > 0 and math.isfinite(v)]
    if not pos:
        return max(floor, ceiling / 1e4), ceiling
    lo = max(floor, 10.0 ** math.floor(math.log10(min(pos)) + 1e-9))
    hi = min(ceiling, 10.0 ** math.ceil(math.log10(max(pos)) - 1e-9))
    if hi <= lo:
        hi = min(ceiling, lo * 10)
        lo = min(lo, hi / 10)
    return lo, hi


def _marker(index: int, cx: float, cy: float) -> str:
    """Series ``index``'s marker at (cx, cy): a circle, square, triangle or diamond."""
    colour = _PALETTE[index % len(_PALETTE)]
    style = f'fill="{colour}" fill-opacity="0.85" stroke="#fff" stroke-width="0.8"'
    shape = index % 4
    if shape == 0:
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" {style}/>'
    if shape == 1:
        return f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" {style}/>'
    if shape == 2:
        pts = f"{cx:.1f},{cy - 5.5:.1f} {cx - 5:.1f},{cy + 3.5:.1f} {cx + 5:.1f},{cy + 3.5:.1f}"
    else:
        pts = (
            f"{cx:.1f},{cy - 5.5:.1f} {cx + 5:.1f},{cy:.1f} "
            f"{cx:.1f},{cy + 5.5:.1f} {cx - 5:.1f},{cy:.1f}"
        )
    return f'<polygon points="{pts}" {style}/>'


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    top = math.ceil(hi / step) * step
    count = round((top - lo) / step)
    return [lo + i * step for i in range(count + 1)]


def _fmt_tick(v: float) -> str:
    """A tick label of at most 6 characters: 0.05, 2.5, 250, 1.5k, 20k, 2M."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 1e3:
        return f"{v / 1e3:.2g}k" if len(f"{v:.4g}") > 4 else f"{v:.4g}"
    if a == 0 or a >= 1e-3:
        return f"{v:.3g}" if len(f"{v:.3g}") <= 6 else f"{v:.2g}"
    return f"{v:.0e}"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _t(text: str) -> str:
    return html.escape(text, quote=False)


def _a(text: str) -> str:
    return html.escape(text, quote=True)
