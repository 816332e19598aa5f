"""Plain SVG plots for the benchmark report, with no plotting library: a bar
chart of medians and a strip plot of every sample, both on a log scale."""
import math
from xml.sax.saxutils import escape

COLOURS = {"bare": "#888888", "bubblewrap": "#b07aa1", "crun": "#9c755f", "runc": "#76b7b2",
           "runc restore": "#e15759", "thaw cold": "#4e79a7", "thaw restore": "#f28e2b",
           "thaw warm": "#59a14f"}
LABEL_W, PLOT_W, ROW_H = 330, 560, 18


def _x(ms, lo, hi):
    return LABEL_W + PLOT_W * (math.log10(ms) - lo) / (hi - lo)


def _axis(lo, hi, top, bottom):
    parts = []
    for exp in range(int(math.floor(lo)), int(math.ceil(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** exp
            if lo <= math.log10(v) <= hi:
                x = _x(v, lo, hi)
                parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>'
                             % (x, top, x, bottom))
                parts.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%g ms'
                             '</text>' % (x, bottom + 12, v))
    return parts


def _range(values):
    lo = math.log10(max(min(values), 0.05)) - 0.1
    hi = math.log10(max(values)) + 0.1
    return lo, max(hi, lo + 1)


def _write(path, width, height, parts, title):
    with open(path, "w") as f:
        f.write('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
                'font-family="sans-serif">\n' % (width, height))
        f.write('<text x="10" y="16" font-size="13" font-weight="bold">%s</text>\n'
                % escape(title))
        f.write("\n".join(parts))
        f.write("\n</svg>\n")


def medians(path, summary):
    """One bar per workload and contender: the median, log scale."""
    keys = sorted(summary)
    lo, hi = _range([summary[k]["p50"] for k in keys])
    top, parts = 30, []
    for i, k in enumerate(keys):
        y = top + i * ROW_H
        contender = k.split("|")[1]
        x = _x(summary[k]["p50"], lo, hi)
        parts.append('<text x="%d" y="%d" font-size="11" text-anchor="end">%s</text>'
                     % (LABEL_W - 6, y + 12, escape(k.replace("|", " - "))))
        parts.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>'
                     % (LABEL_W, y + 2, max(1.0, x - LABEL_W), ROW_H - 4,
                        COLOURS.get(contender, "#333")))
        parts.append('<text x="%.1f" y="%d" font-size="10">%.1f</text>'
                     % (x + 4, y + 12, summary[k]["p50"]))
    bottom = top + len(keys) * ROW_H
    parts += _axis(lo, hi, top, bottom)
    _write(path, LABEL_W + PLOT_W + 60, bottom + 30, parts, "Median start-to-answer latency")


def distributions(path, samples):
    """Every sample as a dot, one row per workload and contender, log scale."""
    keys = sorted(samples)
    lo, hi = _range([v for k in keys for v in samples[k]])
    top, parts = 30, []
    for i, k in enumerate(keys):
        y = top + i * ROW_H + ROW_H / 2
        contender = k.split("|")[1]
        parts.append('<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>'
                     % (LABEL_W - 6, y + 4, escape(k.replace("|", " - "))))
        for v in samples[k]:
            parts.append('<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s" fill-opacity="0.5"/>'
                         % (_x(max(v, 0.05), lo, hi), y, COLOURS.get(contender, "#333")))
    bottom = top + len(keys) * ROW_H
    parts += _axis(lo, hi, top, bottom)
    _write(path, LABEL_W + PLOT_W + 60, bottom + 30, parts, "Latency of every run")
