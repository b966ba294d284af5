#!/usr/bin/env python3
"""Draws throughput against producer count from `cargo bench --bench compare -- producers`.

    python3 scripts/chart.py [RESULTS.json [OUT.svg]]

Defaults: target/tmp/compare-producers.json and docs/throughput-by-producers.svg. One line per
design, the median events/s of its runs at 1, 2, 8 and 32 producers, on a logarithmic scale
(the designs span three orders of magnitude). Plain SVG, written without any library, so that
the chart can be regenerated anywhere Python 3 runs.
"""

import json
import math
import sys
from pathlib import Path

COLORS = [
    "#d62728",  # auditring first, in red
    "#1f77b4",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]

WIDTH, HEIGHT = 860, 480
LEFT, RIGHT, TOP, BOTTOM = 80, 300, 50, 60


def main() -> None:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "target/tmp/compare-producers.json")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/throughput-by-producers.svg")
    rows = json.loads(src.read_text())
    designs: dict[str, dict[int, float]] = {}
    for r in rows:
        designs.setdefault(r["design"], {})[r["producers"]] = r["events_per_sec_median"]
    producers = sorted({p for d in designs.values() for p in d})
    values = [v for d in designs.values() for v in d.values() if v > 0]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))

    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + plot_w * (i / max(1, len(producers) - 1))

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="13">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="28" font-size="16" font-weight="bold">'
        "Events per second against producer threads (2 cores, ~200-byte events)</text>",
    ]
    # Grid: each power of ten, labelled.
    decade = lo
    while decade <= hi * 1.0001:
        gy = y(decade)
        label = f"{decade / 1e6:g} M" if decade >= 1e6 else f"{decade / 1e3:g} k"
        parts.append(f'<line x1="{LEFT}" y1="{gy:.1f}" x2="{LEFT + plot_w}" y2="{gy:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 8}" y="{gy + 4:.1f}" text-anchor="end">{label}</text>')
        decade *= 10
    for i, p in enumerate(producers):
        parts.append(f'<line x1="{x(i):.1f}" y1="{TOP}" x2="{x(i):.1f}" y2="{TOP + plot_h}" stroke="#eee"/>')
        parts.append(f'<text x="{x(i):.1f}" y="{TOP + plot_h + 20}" text-anchor="middle">{p}</text>')
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 15}" text-anchor="middle">producer threads</text>'
    )
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>'
    )
    for k, (name, points) in enumerate(designs.items()):
        color = COLORS[k % len(COLORS)]
        coords = [(x(i), y(points[p])) for i, p in enumerate(producers) if points.get(p, 0) > 0]
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        width = 3 if k == 0 else 1.8
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="{width}"/>')
        for cx, cy in coords:
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{color}"/>')
        ly = TOP + 10 + 22 * k
        lx = LEFT + plot_w + 20
        parts.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{color}" stroke-width="{width}"/>')
        parts.append(f'<text x="{lx + 30}" y="{ly + 4}">{escape(name)}</text>')
    parts.append("</svg>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts) + "\n")
    print(f"written: {out}")


def escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    main()
