"""Small inline SVG charts: no script, no external assets, readable by screen readers.

Each chart is an ``<svg role="img">`` with a title and a description that
states the numbers; the page also shows the same data as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 28


def _nice_max(value: int) -> int:
    """The smallest 1-2-5 step at or above ``value`` (at least 1), for a tidy axis."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def bar_chart(*, chart_id: str, title: str, days: Sequence[date], values: Sequence[int], unit: str) -> str:
    """An SVG bar chart of one value per day (values >= 0)."""
    if len(days) != len(values) or not days:
        raise ValueError("bar_chart needs one value per day and at least one day")
    top = _nice_max(max(values))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(values)
    total = sum(values)
    busiest = max(range(len(values)), key=lambda i: values[i])
    desc = (
        f"{total} {unit} from {days[0]:%d %b} to {days[-1]:%d %b}; "
        f"busiest day {days[busiest]:%d %b} with {values[busiest]}."
        if total
        else f"No {unit} from {days[0]:%d %b} to {days[-1]:%d %b} yet."
    )
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-d">{escape(desc)}</desc>',
    ]
    # whole-number ticks only, and none above zero on an empty chart (no "1, 0, 0" axis)
    ticks = [f for f in (0.0, 0.5, 1.0) if total and float(top * f).is_integer()] or [0.0]
    for fraction in ticks:
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{int(top * fraction)}</text>'
        )
    if not total:
        parts.append(
            f'<text class="axis empty" x="{WIDTH / 2:.0f}" y="{TOP + plot_h / 2:.0f}" text-anchor="middle">'
            f"No {escape(unit)} yet</text>"
        )
    for i, (day, value) in enumerate(zip(days, values, strict=True)):
        h = plot_h * value / top
        x = LEFT + i * slot + slot * 0.15
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}">'
            f"<title>{day:%d %b}: {value} {escape(unit)}</title></rect>"
        )
    last = len(days) - 1
    for i in sorted({0, len(days) // 2, last}):
        x, anchor = (
            (LEFT + (i + 0.5) * slot, "middle")
            if i not in (0, last)
            else ((LEFT, "start") if i == 0 else (WIDTH - RIGHT, "end"))
        )
        parts.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">{days[i]:%d %b}</text>')
    parts.append("</svg>")
    return "".join(parts)


def use_bars(*, chart_id: str, title: str, rows: Sequence[tuple[str, int, int]]) -> str:
    """An SVG chart of uses and refusals per purpose: one row per ``(label, used, refused)``, two bars each."""
    if not rows:
        raise ValueError("use_bars needs at least one row")
    label_w, row_h, pad = 190, 34, 8
    height = TOP + row_h * len(rows) + pad
    top = _nice_max(max(max(used, refused) for _, used, refused in rows))
    span = WIDTH - label_w - RIGHT - 60
    used_total = sum(r[1] for r in rows)
    refused_total = sum(r[2] for r in rows)
    desc = "; ".join(f"{label}: {used} used, {refused} refused" for label, used, refused in rows)
    parts = [
        f'<svg class="chart uses" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-d">{used_total} uses and {refused_total} refusals. {escape(desc)}.</desc>',
    ]
    for i, (label, used, refused) in enumerate(rows):
        y = TOP + i * row_h
        short = label if len(label) <= 28 else label[:27].rstrip() + "…"  # the table beside it has the whole name
        parts.append(
            f'<text class="axis label" x="{label_w - 8}" y="{y + 17}" text-anchor="end">{escape(short)}</text>'
        )
        for j, (value, kind) in enumerate(((used, "used"), (refused, "refused"))):
            w = span * value / top
            bar_y = y + 4 + j * 13
            parts.append(
                f'<rect class="bar {kind}" x="{label_w}" y="{bar_y}" width="{w:.1f}" height="11">'
                f"<title>{escape(label)}: {value} {kind}</title></rect>"
                f'<text class="axis" x="{label_w + w + 4:.1f}" y="{bar_y + 10}">{value} {kind}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["bar_chart", "use_bars"]
