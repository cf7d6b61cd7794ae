#!/usr/bin/env python3
"""Draws rpc-bench's throughput plot: calls per second against calls in flight, one line per
implementation measured against itself (client and server the same, e.g. KJ <-> KJ), one panel
per payload size, from target/rpc-bench/results.json; the error bars span the rounds' minimum to
maximum. The full client x server matrix is in the JSON and rpc-bench's printed table. The
calls-in-flight axis is logarithmic (1, 8, 64, 256).

    python3 scripts/plot-bench.py [RESULTS_JSON [OUTPUT_PNG]]

Needs matplotlib (`python3 -m pip install --user matplotlib`). The TCP floor has no pipelined
runs; its sequential rate is given in the panel title rather than drawn (it would flatten the
RPC lines).
"""

import json
import sys

DEFAULT_RESULTS = "target/rpc-bench/results.json"
DEFAULT_PNG = "target/rpc-bench/throughput.png"


def payload_name(payload):
    return f"{payload // 1024} KiB" if payload >= 1024 and payload % 1024 == 0 else f"{payload} B"


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_RESULTS
    png = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_PNG
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("matplotlib is not installed: python3 -m pip install --user matplotlib")

    with open(results) as f:
        runs = json.load(f)["runs"]
    payloads = sorted({r["payload"] for r in runs})
    # Each implementation against itself, and the floor (client and server are both tcp-floor).
    runs = [r for r in runs if (r["client"], r["transport"]) == (r["server"], r["server_transport"])]
    labels = []
    for r in runs:
        label = f'{r["client"]}/{r["transport"]}'
        if label not in labels:
            labels.append(label)

    fig, axes = plt.subplots(1, len(payloads), figsize=(5.2 * len(payloads), 4.2), squeeze=False)
    for ax, payload in zip(axes[0], payloads):
        title = f"params {payload_name(payload)}"
        windows = set()
        for label in labels:
            mine = [r for r in runs if f'{r["client"]}/{r["transport"]}' == label and r["payload"] == payload]
            pipe = sorted((r["window"], r["calls_per_sec"], r["range"]["calls_per_sec"]) for r in mine if r["mode"] == "pipe")
            if pipe:
                below = [c - lo for _, c, (lo, _) in pipe]
                above = [hi - c for _, c, (_, hi) in pipe]
                ax.errorbar([w for w, _, _ in pipe], [c for _, c, _ in pipe], yerr=[below, above], marker="o", capsize=3, label=f"{label} <-> itself")
                windows.update(w for w, _, _ in pipe)
            elif mine:
                title += f"\n{label} sequential: {mine[0]['calls_per_sec']:,.0f} calls/s"
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(windows), [str(w) for w in sorted(windows)])
        ax.set_xlabel("calls in flight")
        ax.set_ylabel("calls / s")
        ax.set_title(title, fontsize="medium")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0][0].legend(fontsize="small")
    fig.suptitle("rpc-bench: pipelined echo throughput, each implementation against itself")
    fig.tight_layout()
    fig.savefig(png, dpi=80)


if __name__ == "__main__":
    main()
