"""Plots the kill -9 -> every subscriber notified latency per N (docs/bench/kill_latency.png).

usage: plot.py RAW_JSON OUT_PNG  (RAW_JSON is written by the scenarios benchmark)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # noqa: E402


def plain_log_axis(axis):
    """Log scale labelled 1, 2, 5, 10, 20, 50… in plain numbers."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())

raw_path, out_path = sys.argv[1], sys.argv[2]
with open(raw_path, encoding="utf-8") as f:
    raw = json.load(f)
series = {n: v for n, v in raw.get("kill_ms", {}).items() if v}  # N with samples
ns = sorted(series, key=int)
if not ns:
    sys.exit("plot.py: no kill_ms samples in " + raw_path)
m = raw.get("machine", {})

fig, (box, cdf) = plt.subplots(1, 2, figsize=(11, 4.5))
data = [sorted(series[n]) for n in ns]
labels = [f"N={int(n):,}\n({len(d)} kills)" for n, d in zip(ns, data)]
box.boxplot(data, whis=(1, 99), showfliers=True, flierprops={"markersize": 3})
box.set_xticks(range(1, len(ns) + 1), labels)
box.set_yscale("log")
plain_log_axis(box.yaxis)
box.set_ylabel("kill -9 → all subscribers notified (ms)")
box.axhline(5.0, color="tab:red", linestyle="--", linewidth=1, label="target p99 at N=1,000: 5 ms")
box.set_title("distribution (box: p25–p75, whiskers: p1–p99)")
box.legend(loc="upper left", fontsize=8)
box.grid(True, which="both", axis="y", alpha=0.3)

for n, d in zip(ns, data):
    ys = [(i + 1) / len(d) for i in range(len(d))]
    cdf.step(d, ys, where="post", label=f"N={int(n):,}")
cdf.set_xscale("log")
plain_log_axis(cdf.xaxis)
cdf.set_xlabel("latency (ms)")
cdf.set_ylabel("fraction of kills")
cdf.axvline(5.0, color="tab:red", linestyle="--", linewidth=1)
cdf.axhline(0.99, color="grey", linestyle=":", linewidth=1)
cdf.set_title("cumulative distribution")
cdf.legend(fontsize=8, loc="lower right")
cdf.grid(True, which="both", alpha=0.3)

commit = f" ({m['commit']})" if m.get("commit") else ""
fig.suptitle(
    f"gopherdiscovery {m.get('library', '')}{commit}: kill -9 of a member process, "
    f"{int(m.get('subscribers', 0))} subscribers, loopback TCP, {int(m.get('cpus', 0))} CPUs ({m.get('cpu', '')})",
    fontsize=9,
)
fig.tight_layout()
fig.savefig(out_path, dpi=110)
print(f"wrote {out_path}", file=sys.stderr)
