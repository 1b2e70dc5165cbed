"""Small line plots as inline SVG, drawn on the server (the page runs no script)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from admin.metrics_store import Point

COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563")
WIDTH, HEIGHT = 300, 90
LEFT, RIGHT, TOP, BOTTOM = 34, 4, 6, 16  # room for the axis labels
SLOTS = 120  # at most this many points per line: a day of 10 s samples is folded into slots


@dataclass(frozen=True)
class Line:
    label: str
    points: list[Point]


Fold = Callable[[Sequence[float]], float]


def fold_max(values: Sequence[float]) -> float:
    return max(values)


def fold_sum(values: Sequence[float]) -> float:
    return sum(values)


def plot(
    title: str, lines: Sequence[Line], since: float, until: float, fold: Fold = fold_max
) -> Markup:
    """An SVG plot of `lines` between `since` and `until` (epoch seconds), y from zero."""
    span = max(until - since, 1e-9)
    folded = [Line(line.label, slotted(line.points, since, span, fold)) for line in lines]
    peak = max((value for line in folded for _, value in line.points), default=0.0)
    top = nice_ceiling(peak)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: float) -> float:
        return LEFT + inner_w * (at - since) / span

    def y(value: float) -> float:
        return TOP + inner_h * (1 - value / top)

    parts = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{inner_w}" height="{inner_h}" fill="#f8fafc" '
        'stroke="#cbd5e1"/>',
        _text(LEFT - 3, TOP + 8, format_value(top), "end"),
        _text(LEFT - 3, TOP + inner_h, "0", "end"),
        _text(LEFT, HEIGHT - 3, "-" + format_span(span), "start"),
        _text(WIDTH - RIGHT, HEIGHT - 3, "now", "end"),
    ]
    if not any(line.points for line in folded):
        parts.append(_text(LEFT + inner_w / 2, TOP + inner_h / 2 + 4, "no samples yet", "middle"))
    for index, line in enumerate(folded):
        colour = COLOURS[index % len(COLOURS)]
        coords = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in line.points)
        if len(line.points) == 1:
            cx, cy = coords.split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
        elif line.points:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>'
            )
        if len(folded) > 1:
            parts.append(
                f'<text x="{LEFT + 4 + 70 * index}" y="{TOP + 10}" font-size="9" '
                f'fill="{colour}">{escape(line.label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def slotted(points: Sequence[Point], since: float, span: float, fold: Fold) -> list[Point]:
    """Points folded into at most SLOTS slots of time, each at its slot's last sample."""
    if len(points) <= SLOTS:
        return [point for point in points if point[0] >= since]
    slots: dict[int, list[Point]] = {}
    for at, value in points:
        if at >= since:
            slots.setdefault(min(int((at - since) / span * SLOTS), SLOTS - 1), []).append(
                (at, value)
            )
    return [
        (members[-1][0], fold([value for _, value in members]))
        for _, members in sorted(slots.items())
    ]


def nice_ceiling(value: float) -> float:
    """The plot's top: 1, 2 or 5 times a power of ten, at least `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    scale = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        if value <= step * scale:
            return step * scale
    return 10.0 * scale


def format_value(value: float) -> str:
    """A number as an axis label or a figure: short, no needless decimals."""
    if value >= 1000:
        return f"{value / 1000:g}k"
    if value >= 10 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


def format_span(seconds: float) -> str:
    return f"{seconds / 3600:g}h" if seconds >= 3600 else f"{seconds / 60:g}m"


def _text(x: float, y: float, content: str, anchor: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="9" fill="#475569" '
        f'text-anchor="{anchor}">{escape(content)}</text>'
    )
