"""The benchmark report's plots, drawn with matplotlib as SVG: a bar chart of
the medians and a strip plot of every sample, one row per workload and
contender, on a log scale (restores and cold starts differ a hundredfold).
  /usr/bin/python3 bench/plots.py OUT   (reads OUT/samples.json)"""
import json
import os
import sys

import matplotlib

matplotlib.use("svg")  # no display here, and the report links SVG files
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

COLOURS = {"bare": "#888888", "bubblewrap": "#b07aa1", "crun": "#9c755f", "runc": "#76b7b2",
           "runc restore": "#e15759", "thaw cold": "#4e79a7", "thaw restore": "#f28e2b",
           "thaw warm": "#59a14f"}
ROW_INCHES = 0.25


def _rows(keys):
    """Row labels and colours for "workload|contender" keys, first at the top."""
    labels = [k.replace("|", " - ") for k in keys]
    colours = [COLOURS.get(k.split("|")[1], "#333333") for k in keys]
    return labels, colours


def _figure(rows, title):
    fig, ax = plt.subplots(figsize=(10, 1.2 + ROW_INCHES * rows))
    ax.set_title(title, loc="left", fontweight="bold")
    ax.set_xscale("log")
    ax.set_xlabel("ms")
    ax.grid(axis="x", which="both", color="#dddddd")
    ax.set_axisbelow(True)
    ax.invert_yaxis()
    return fig, ax


def medians(path, summary):
    """One bar per workload and contender: the median."""
    keys = sorted(summary)
    labels, colours = _rows(keys)
    values = [max(summary[k]["p50"], 0.05) for k in keys]
    fig, ax = _figure(len(keys), "Median start-to-answer latency")
    bars = ax.barh(range(len(keys)), values, color=colours)
    ax.bar_label(bars, labels=["%.1f" % v for v in values], padding=3, fontsize=8)
    ax.set_yticks(range(len(keys)), labels, fontsize=8)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def distributions(path, samples):
    """Every sample as a dot."""
    keys = sorted(samples)
    labels, colours = _rows(keys)
    fig, ax = _figure(len(keys), "Latency of every run")
    for row, (k, colour) in enumerate(zip(keys, colours)):
        values = [max(v, 0.05) for v in samples[k]]
        ax.scatter(values, [row] * len(values), s=8, color=colour, alpha=0.5)
    ax.set_yticks(range(len(keys)), labels, fontsize=8)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "samples.json")) as f:
        report = json.load(f)
    medians(os.path.join(out, "medians.svg"), report["summary"])
    distributions(os.path.join(out, "distributions.svg"), report["samples_ms"])


if __name__ == "__main__":
    main()
