"""docs/BENCHMARKS.md and its charts, from one results file of benchmarks/run.py.

    python -m benchmarks.report benchmarks/results/2026-12-02-amd-epyc-2core-24gb.json [--docs /tmp/docs]

Everything here is rendering: the figures, ratios, verdicts and their texts come from the results file (computed
in the run that measured them); the wording from benchmarks/report_text.md ("@@ name" lines, each followed by
its text).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import GB, MB, ROOT, fmt_bytes, fmt_seconds, row_of  # noqa: E402

COLORS = {"bfa": "#d62728", "pickle": "#1f77b4", "msgspec": "#ff7f0e", "pyarrow": "#2ca02c", "safetensors": "#9467bd",
          "h5py": "#8c564b", "npy": "#e377c2", "orjson": "#7f7f7f", "msgpack": "#bcbd22", "joblib": "#17becf",
          "bfast-py": "#393b79"}
PEER_LABELS = {"bfa": "bfast_archive", "pickle": "pickle (protocol 5)", "msgspec": "msgspec (msgpack)",
               "pyarrow": "pyarrow IPC, memory-mapped", "safetensors": "safetensors", "h5py": "h5py",
               "npy": 'np.load(mmap_mode="r")', "orjson": "orjson", "msgpack": "msgpack", "joblib": "joblib",
               "bfast-py": "bfast-py (B-FAST)", "dict": "in-memory dict"}
WORKLOADS = ("records", "arrays", "mixed", "arrays-big")
TEXT = dict(re.findall(r"^@@ (\w+)\n(.*?)\n+(?=@@ |\Z)", (ROOT / "benchmarks" / "report_text.md").read_text(),
                      re.S | re.M))


def label(peer: str) -> str:
    return PEER_LABELS.get(peer, peer)


def part_report(results: dict, name: str) -> dict | None:
    part = results["parts"].get(name)
    return part.get("report") if part and part.get("status") == "ok" else None


def fmt(value: float | None, unit: str) -> str:
    return "–" if value is None else fmt_bytes(value) if unit == "B" else fmt_seconds(value)


def fmt_ratio(v: float) -> str:
    return f"{v:.0f}x" if v >= 100 else f"{v:.1f}x" if v >= 10 else f"{v:.2f}x"


def cell(r: dict | None, spread: bool = True, after: str = "") -> str:
    """median (then ``after``), and the min–max range under it when there was more than one sample."""
    if r is None:
        return "–"
    text = fmt(r["median"], r["unit"]) + after
    if spread and r.get("n", 1) > 1:
        text += f"<br><sub>{fmt(r['min'], r['unit'])} – {fmt(r['max'], r['unit'])}</sub>"
    return text


def md_table(header: list, rows: list, align: str | None = None) -> str:
    """``align``: "l" or "r" per column (default: the first left, the others right)."""
    sep = ["---:" if a == "r" else "---" for a in align or "l" + "r" * (len(header) - 1)]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def vs(r: dict | None, b: dict | None) -> str:
    """`` (Nx)``: r's median over b's (bfast_archive's); nothing for b itself or a missing row."""
    return f" ({fmt_ratio(r['median'] / b['median'])})" if r and b and r is not b and b["median"] else ""


def last_line(e: dict) -> str:
    return e["error"].strip().splitlines()[-1]


def code_block(text: str) -> str:
    """Printed output, without the tracker issue numbers that older results files printed."""
    return "```text\n" + re.sub(r" \(issue \d+\)", "", text.rstrip()) + "\n```"


WRITE_METRICS = (("write", "write + fsync"), ("dumps", "serialise to bytes"), ("size", "file size"),
                 ("load", "full load"))
READ_METRICS = (("warm_read", "open + read, warm"), ("cold_total", "cold: spawn → value"),
                ("cold_import", "cold: imports"), ("cold_open_read", "cold: open + read"),
                ("cold_rss_peak", "cold: peak RSS growth"), ("nocache_total", "cache dropped: spawn → value"),
                ("nocache_open_read", "cache dropped: open + read"))


def core_section(core: dict, stdout: str) -> str:
    rows, peers, out = core["results"], core.get("peers") or sorted({r["peer"] for r in core["results"]}), []
    desc = dict(re.findall(r"^== ([\w-]+): (.*)$", stdout, re.M))  # the '== name: description' lines it printed
    for wl in core.get("workloads") or WORKLOADS:
        wl_rows = [r for r in rows if r["workload"] == wl]
        if not wl_rows:
            continue
        out.append(f"### {wl}\n\n{desc.get(wl, '')}\n")
        present = [p for p in peers if any(r["peer"] == p for r in wl_rows)]
        for metrics, title in ((WRITE_METRICS, "Write and full load"), (READ_METRICS, "Open + read one value")):
            metrics = [(m, what) for m, what in metrics if any(r["metric"] == m for r in wl_rows)]
            if metrics:
                table = [[label(p), *(cell(row_of(wl_rows, metric=m, peer=p)) for m, _ in metrics)] for p in present]
                header = ["peer", *(what for _, what in metrics)]
                out += [f"{title} (median; min – max below):\n", md_table(header, table), ""]
        lazy_b, lazy_d = (row_of(wl_rows, metric="lazy_path", peer=p) for p in ("bfa", "dict"))
        if lazy_b and lazy_d:
            out.append(TEXT["lazy"].format(bfa=cell(lazy_b, False), min=fmt(lazy_b["min"], "s"), dict=cell(
                lazy_d, False), max=fmt(lazy_b["max"], "s"), ratio=lazy_b["median"] / lazy_d["median"]) + "\n")
    return "\n".join(out)


HEADLINE = (("records", "warm_read", "records: open + read one field"),
            ("arrays", "warm_read", "arrays: open + read one row"),
            ("mixed", "warm_read", "mixed: open + read one field"),
            ("arrays-big", "cold_total", "arrays-big: fresh process → one row"),
            ("records", "load", "records: full load"), ("records", "write", "records: write + fsync"))


def headline_markdown(results: dict) -> str | None:
    if not (core := part_report(results, "core")):
        return None
    table = []
    for p in core.get("peers", []):
        found = [[row_of(core["results"], workload=wl, metric=m, peer=peer) for peer in (p, "bfa")]
                 for wl, m, _ in HEADLINE]
        table.append([label(p), *(cell(r, False, vs(r, b)) for r, b in found)])
    cfg, m = core["config"], results["machine"]
    sizes = {k: fmt_bytes(cfg[k]) for k in ("array_bytes", "mixed_array_bytes", "big_array_bytes")}
    return TEXT["headline"].format(mode=results["mode"], cores=m["cpu_count"], cpu=m["cpu_model"], users=cfg["users"],
                                   date=results["started"][:10], mixed_users=cfg["mixed_users"], **sizes) + (
        "\n\n" + md_table(["peer", *(title for _, _, title in HEADLINE)], table))


def target_rows(results: dict) -> list:
    out = []
    for name in ("core", "compression", "models", "cache", "frames", "remote"):
        for t in (part_report(results, name) or {}).get("targets", []):
            value = t["value_text"].replace("-", "–") if t["value"] is None else t["value_text"]
            verdict = t["verdict"] if t.get("primary", True) else f"({t['verdict']}, info)"
            out.append((name, t["label"], "" if name in ("models", "cache") else t.get("workload", ""), value,
                        t["limit_text"], verdict))
    return out


def scaling_section(scaling: dict) -> str:
    rows, sizes, peers = scaling["results"], scaling["config"]["sizes"], scaling["peers"]
    kinds = scaling.get("kinds", {})
    out = []
    for metric, title in (("warm_read", "Open + read one row, warm (in process)"),
                          ("cold_total", "Fresh process: spawn → value (imports counted)")):
        table = []
        for p in peers:
            found = [row_of(rows, peer=p, size=s, metric=metric) for s in sizes]
            values = [r["median"] for r in found if r]
            growth = f"{values[-1] / values[0]:.1f}x" if len(values) == len(sizes) and len(values) > 1 else "–"
            table.append([label(p), kinds.get(p, "")] + [cell(r) for r in found] + [growth])
        header = ["peer", "reads by", *map(fmt_bytes, sizes), f"{fmt_bytes(sizes[-1])} / {fmt_bytes(sizes[0])}"]
        out += [f"{title} (median; min – max below):\n", md_table(header, table, "ll" + "r" * (len(sizes) + 1)), ""]
    largest = [(p, row_of(rows, peer=p, size=sizes[-1], metric="warm_read")) for p in peers]
    if any(r for _, r in largest):
        out.append(f"File sizes at {fmt_bytes(sizes[-1])}: "
                   + ", ".join(f"{p} {fmt_bytes(r['file_bytes'])}" for p, r in largest if r) + ".\n")
    out += [f"- error at {fmt_bytes(e['size'])}, {e['peer']}: `{last_line(e)}`"
            for e in scaling.get("errors", [])]
    return "\n".join(out)


COMPRESSION_LABELS = {  # metric: operation
    "compress": "compress", "compress_bytes": "LZ4 stage only", "encode": "encode only (uncompressed dumps)",
    "decompress": "decompress", "verify": "verify(), fresh open",
    "verify_mapped": "verify(), mapping already faulted in", "memcpy": "np.copyto, same size (memcpy reference)",
    "dump_plain": "dump(fsync=False), uncompressed", "dump_lz4": 'dump(fsync=False), compression="lz4"',
    "dumps_plain": "dumps(), uncompressed", "dumps_lz4": 'dumps(), compression="lz4"'}


def mbps(r: dict, scale: float = 1, digits: int = 0) -> str:
    return (f"{r['mbps']['median'] / scale:.{digits}f}<br><sub>{r['mbps']['min'] / scale:.{digits}f} – "
            f"{r['mbps']['max'] / scale:.{digits}f}</sub>")


def compression_section(comp: dict) -> str:
    rows, facts, cores = comp["results"], comp["facts"], comp["machine"]["cpu_count"]
    f, fr = facts["arrays"], facts["records"]
    per = ", ".join(f"{k} {r:.2f}x" for k, r in (f.get("array_ratios") or {}).items())
    out = [TEXT["compression"].format(raw=fmt_bytes(f["raw_bytes"]), ratio=f["ratio"], per=per, users=facts["users"],
                                      lz4_ratio=f["lz4_frame_ratio"], records_raw=fmt_bytes(fr["raw_bytes"]),
                                      records_ratio=fr["ratio"], records_lz4_ratio=fr["lz4_frame_ratio"]) + "\n"]
    for ds in ("arrays", "records"):
        table = [[COMPRESSION_LABELS.get(r["metric"], r["metric"]),
                  "bfa" if r["peer"] == "bfa" else
                  f"`{r['peer']}.{'compress' if r['metric'].startswith('compress') else 'decompress'}`",
                  r["threads"], fmt(r["median"], "s"), mbps(r),
                  f"{r['cores_used']:.2f}" if "cores_used" in r else "–"] for r in rows if r["dataset"] == ds]
        header = ["operation", "by", "threads", "median time", "MB/s", "cores busy"]
        out += [f"**{ds}**:\n", md_table(header, table, "llrrrr"), ""]
    s_slice, s_whole = row_of(rows, dataset="slice", metric="slice"), row_of(rows, dataset="slice", metric="whole")
    if s_slice and s_whole:
        out.append(TEXT["slice"].format(raw=fmt_bytes(facts["slice"]["raw_bytes"]), ratio=facts["slice"]["ratio"],
                                        slice=cell(s_slice, False), min=fmt(s_slice["min"], "s"), cores=cores,
                                        max=fmt(s_slice["max"], "s"), whole=cell(s_whole, False),
                                        times=s_whole["median"] / s_slice["median"]) + "\n")
    table = [[COMPRESSION_LABELS[r["metric"]], r["threads"], fmt(r["median"], "s"), mbps(r, 1000, 2)]
             for r in rows if r["dataset"] == "verify"]
    if table:
        out.append(TEXT["verify"].format(size=fmt_bytes(facts["verify"]["file_bytes"])) + "\n")
        out += [md_table(["operation", "threads", "median time", "GB/s"], table), ""]
    table = [[COMPRESSION_LABELS[r["metric"]], r["threads"], cell(r), f"{r['mbps']['median']:.0f}"]
             for r in rows if r["dataset"] == "random"]
    if table:
        out.append(TEXT["random"].format(raw=fmt_bytes(facts["random"]["raw_bytes"]), plain=fmt_bytes(
            facts["random"]["plain_file_bytes"]), lz4=fmt_bytes(facts["random"]["lz4_file_bytes"])) + "\n")
        out += [md_table(["operation", "threads", "median", "MB/s"], table), ""]
    return "\n".join(out + [code_block(throughput(comp))])


def throughput(comp: dict) -> str:
    """bfa's MB/s per thread count, and its speed-up over one thread (also printed by bench_compression)."""
    rows, threads = comp["results"], comp["config"]["threads"]
    out = ["== throughput per thread count (MB/s of raw bytes; x = over threads=1)"]
    for ds, metric in itertools.product(("arrays", "records"), ("compress", "compress_bytes", "decompress")):
        found = [r for t in threads if (r := row_of(rows, dataset=ds, metric=metric, peer="bfa", threads=t))]
        if base := row_of(rows, dataset=ds, metric=metric, peer="bfa", threads=1):
            out.append(f"{ds + ' ' + metric:<26} " + ", ".join(f"{r['threads']}: {r['mbps']['median']:.0f} "
                                                               f"({base['median'] / r['median']:.2f}x)" for r in found))
    verify = [r for t in threads if (r := row_of(rows, dataset="verify", metric="verify", threads=t))]
    if verify:
        out.append(f"{'verify':<26} " + ", ".join(f"{r['threads']}: {r['mbps']['median'] * MB / GB:.2f} GB/s"
                                                  for r in verify))
    return "\n".join(out)


FRAME_PEERS = (("bfa", "bfast_archive"), ("arrow-ipc", "Arrow IPC (Feather v2, mmap)"), ("parquet", "Parquet"))
FRAME_METRICS = (("write", "write (no fsync)"), ("column_numpy", "open + one column to NumPy (`score`)"),
                 ("column_arrow", "open + one str column as Arrow (`name`)"),
                 ("column_arrow_first", "same, first open of the file (UTF-8 checked)"),
                 ("to_pandas", "open + `to_pandas()`"), ("row", "open + one row (Python values)"),
                 ("size", "file size"))
FRAMES_TARGET_ROWS = 10_000_000  # the data-frame targets' size


def frames_section(frames: dict) -> str:
    rows, n = frames["results"], frames["config"]["rows"]
    out = [TEXT["frames"].format(rows=n) + "\n"]
    if n < FRAMES_TARGET_ROWS:
        out.append(f"Not the targets' size: {n:,} rows, not {FRAMES_TARGET_ROWS:,}.\n")
    table = []
    for metric, what in FRAME_METRICS:
        found = [row_of(rows, metric=metric, peer=p) for p, _ in FRAME_PEERS]  # bfa's first
        table.append([what, *(cell(r, after=vs(r, found[0])) for r in found)])
    out.append(md_table(["operation", *(name for _, name in FRAME_PEERS)], table))
    out += [f"\n- error: {' / '.join(str(v) for k, v in e.items() if k != 'error')}: `{last_line(e)}`"
            for e in frames.get("errors", [])]
    return "\n".join(out)


def charts(results: dict, img: Path) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "figure.dpi": 110})
    img.mkdir(parents=True, exist_ok=True)
    m = results["machine"]
    machine = f"{m['cpu_count']} cores, {m['cpu_model']}, {results['started'][:10]}"
    written = []  # each chart gives (figure, title, the rectangle for tight_layout)
    for name, chart, file in (("core", chart_open_read, "open_read.png"), ("scaling", chart_scaling, "scaling.png"),
                              ("compression", chart_threads, "compression_threads.png")):
        if report := part_report(results, name):
            fig, title, rect = chart(plt, report)
            fig.suptitle(f"{title} ({machine})", fontsize=11)
            fig.tight_layout(rect=rect)
            fig.savefig(img / file)
            plt.close(fig)
            written.append(img / file)
    return written


def _log_seconds(axis) -> None:
    """A log y axis with ticks at 1, 2 and 5 of each decade, labelled as times (10 ms, 200 µs)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.axes.set_yscale("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt_seconds(v).replace(".0 ", " ") if v > 0 else ""))
    axis.set_minor_formatter(NullFormatter())


def _bars(ax, rows, workloads, metric, peers, title):
    """Grouped bars, one group per workload holding only the peers that ran it."""
    present = {wl: [p for p in peers if row_of(rows, workload=wl, metric=metric, peer=p)] for wl in workloads}
    width = 0.84 / max(1, max(len(v) for v in present.values()))
    for p in peers:
        found = [(j, wl, row_of(rows, workload=wl, metric=metric, peer=p)) for j, wl in enumerate(workloads)]
        found = [(j + (present[wl].index(p) - (len(present[wl]) - 1) / 2) * width, r) for j, wl, r in found if r]
        if not found:
            continue
        xs, ys = [x for x, _ in found], [r["median"] for _, r in found]
        ax.bar(xs, ys, width * 0.95, color=COLORS.get(p, "#444"), label=label(p),
               yerr=[[r["median"] - r["min"] for _, r in found], [r["max"] - r["median"] for _, r in found]],
               error_kw={"elinewidth": 0.7, "capsize": 1.5, "ecolor": "#333"},
               edgecolor="black" if p == "bfa" else "none", linewidth=0.8)
        if p == "bfa":
            for x, r in found:
                ax.annotate(fmt_seconds(r["median"]), (x, r["max"]), xytext=(0, 3), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7.5, color=COLORS["bfa"], fontweight="bold", rotation=90)
    ax.set(xticks=range(len(workloads)), xticklabels=workloads, title=title)
    _log_seconds(ax.yaxis)
    ax.grid(axis="y", which="major", alpha=0.35)


def chart_open_read(plt, core: dict):
    rows, peers = core["results"], core.get("peers", [])
    warm_wl = [w for w in WORKLOADS[:3] if row_of(rows, workload=w, metric="warm_read")]
    cold_wl = [w for w in WORKLOADS if row_of(rows, workload=w, metric="cold_total")]
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.2), gridspec_kw={"width_ratios": [len(warm_wl), len(cold_wl)]})
    _bars(axes[0], rows, warm_wl, "warm_read", peers, "open + read one value, warm (in process)")
    _bars(axes[1], rows, cold_wl, "cold_total", peers, "fresh process: spawn → value (imports counted)")
    axes[0].set_ylabel("time (log scale; lower is better)")
    legend = {}  # label: handle, each label once, in order
    for handle, text in (pair for ax in axes for pair in zip(*ax.get_legend_handles_labels(), strict=True)):
        legend.setdefault(text, handle)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(6, len(legend)), frameon=False,
               fontsize=9)
    return fig, "Open a file and read one value — median of repeats, bars min–max", (0, 0.09, 1, 0.96)


def chart_scaling(plt, scaling: dict):
    from matplotlib.ticker import NullLocator

    rows, sizes, kinds = scaling["results"], scaling["config"]["sizes"], scaling.get("kinds", {})
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    for ax, metric, title in ((axes[0], "warm_read", "open + read one row, warm (in process)"),
                              (axes[1], "cold_total", "fresh process: spawn → value")):
        for p in scaling["peers"]:
            pts = [(s, r) for s in sizes if (r := row_of(rows, peer=p, size=s, metric=metric))]
            if not pts:
                continue
            xs, color = [s for s, _ in pts], COLORS.get(p, "#444")
            ax.plot(xs, [r["median"] for _, r in pts], marker="o", color=color, zorder=3 if p == "bfa" else 2,
                    linestyle="--" if kinds.get(p) == "parse all" else "-", linewidth=2.6 if p == "bfa" else 1.6,
                    label=f"{label(p)} ({kinds.get(p, '')})")
            ax.fill_between(xs, [r["min"] for _, r in pts], [r["max"] for _, r in pts], color=color, alpha=0.12,
                            linewidth=0)
        ax.set(xscale="log", xticks=sizes, xticklabels=[fmt_bytes(s).replace(".0 ", " ") for s in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        _log_seconds(ax.yaxis)
        ax.set(xlabel="file size (data in the archive)", title=title)
        ax.grid(alpha=0.35)
    axes[0].set_ylabel("time (log scale; lower is better)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, frameon=False, fontsize=9)
    title = "Cost of reading one row against file size — dashed: formats that parse the whole file"
    return fig, title, (0, 0.1, 1, 0.95)


def _throughput(ax, pts, scale=1.0, **style):
    ax.errorbar([t for t, _ in pts], [r["mbps"]["median"] / scale for _, r in pts],
                yerr=[[(r["mbps"]["median"] - r["mbps"]["min"]) / scale for _, r in pts],
                      [(r["mbps"]["max"] - r["mbps"]["median"]) / scale for _, r in pts]],
                marker="o", capsize=3, linewidth=2, **style)


def chart_threads(plt, comp: dict):
    rows, threads, cores = comp["results"], comp["config"]["threads"], comp["machine"]["cpu_count"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 6.4))
    series = ((axes[0], "compress", (("arrays", "compress", "arrays: dumps(lz4)", "#d62728"),
                                     ("records", "compress", "records: dumps(lz4), end to end", "#1f77b4"),
                                     ("records", "compress_bytes", "records: LZ4 stage only", "#17becf")),
               "lz4.frame.compress", "compress (MB/s of raw input)"),
              (axes[1], "decompress", (("arrays", "decompress", "arrays: arch[key], whole arrays", "#d62728"),
                                       ("records", "decompress", "records: Archive.open (nodes)", "#1f77b4")),
               "lz4.frame.decompress", "decompress (MB/s of raw output)"))
    for ax, metric, lines, ref_name, title in series:
        for k, (ds, m, text, color) in enumerate(lines):
            shift = (k - (len(lines) - 1) / 2) * 0.04  # keep the error bars apart
            pts = [(t + shift, r) for t in threads if (r := row_of(rows, dataset=ds, metric=m, peer="bfa", threads=t))]
            if pts:
                _throughput(ax, pts, color=color, label=text)
        for ds, color in (("arrays", "#d62728"), ("records", "#1f77b4")):
            if ref := row_of(rows, dataset=ds, metric=metric, peer="lz4.frame"):
                ax.axhline(ref["mbps"]["median"], color=color, linestyle=":", linewidth=1.5,
                           label=f"{ds}: {ref_name} (one call)")
        ax.set_title(title)
    verify = [(t, r) for t in threads if (r := row_of(rows, dataset="verify", metric="verify", threads=t))]
    if verify:
        _throughput(axes[2], verify, 1000, color="#2ca02c", label="verify(), fresh open")
        if mapped := row_of(rows, dataset="verify", metric="verify_mapped"):
            axes[2].plot([mapped["threads"]], [mapped["mbps"]["median"] / 1000], marker="D", color="#9467bd",
                         linestyle="none", label="verify(), mapping already faulted in")
        if memcpy := row_of(rows, dataset="verify", metric="memcpy"):
            axes[2].axhline(memcpy["mbps"]["median"] / 1000, color="#7f7f7f", linestyle=":",
                            label="np.copyto, one thread (memcpy reference)")
        axes[2].set_title(f"verify() of {fmt_bytes(comp['facts']['verify']['file_bytes'])} (GB/s)")
    for ax in axes:
        ax.set(xticks=threads, xlabel="threads")
        ax.axvline(cores, color="#999", linewidth=0.8, linestyle="-.")
        ax.annotate(f"{cores} cores", (cores, 0), xycoords=("data", "axes fraction"), xytext=(3, 4),
                    textcoords="offset points", fontsize=8, color="#666")
        ax.set_xlim(min(threads) - 0.3, max(threads) + 0.3)
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.08)
        ax.grid(alpha=0.35)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
    return fig, "Compression, decompression and verify throughput per thread count", (0, 0, 1, 0.95)


def write(results: dict, docs: Path, results_path: Path | None = None) -> list:
    docs = Path(docs)
    written = charts(results, docs / "img")
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "BENCHMARKS.md").write_text(document(results, docs, docs / "img", results_path))
    return [docs / "BENCHMARKS.md", *written]


def document(results: dict, docs: Path, img: Path, results_path: Path | None) -> str:
    m, parts = results["machine"], results["parts"]
    started, elapsed = dt.datetime.fromisoformat(results["started"]), results["elapsed_seconds"]
    source = (f" Raw samples, medians, min and max: [{results_path.name}]({os.path.relpath(results_path, docs)})."
              if results_path else "")
    out = [TEXT["head"].format(date=f"{started:%Y-%m-%d}", mode=results["mode"], source=source,
                               elapsed=f"{elapsed:.0f} s" if elapsed < 120 else f"{elapsed / 60:.0f} minutes"), ""]
    if any(p.get("status") == "ok" and "harness" not in (p.get("report") or {}) for p in parts.values()):
        out += [TEXT["earlier"], ""]
    for u in results.get("updates", []):
        changed = ", ".join(f"{k} {v}" for k, v in u["machine"]["versions"].items() if v != m["versions"].get(k))
        out += [f"Re-run on {u['started'][:16].replace('T', ' ')} (`--update`): {', '.join(u['parts'])}"
                + (f"; packages that differ from the table below: {changed}." if changed else "."), ""]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    loads = [(p["elapsed_seconds"], p["machine_load"]) for p in parts.values() if p.get("machine_load")]
    total = sum(t for t, _ in loads)  # other processes' cores busy, averaged over the parts' time
    busy = (f"{sum(t * load['others_cores'] for t, load in loads) / total:.2f} of {loads[0][1]['cores']} cores busy "
            "on average during the run" if total else "(not measured)")
    cd = results.get("cache_drop", {})
    cache_drop = {True: "cache_dropped", False: "cache_refused"}.get(cd.get("worked"), "cache_untried")
    out += ["## The machine", "",
            md_table(["", ""], [["CPU", f"{m['cpu_model']}, {m['cpu_count']} cores (`os.cpu_count()`)"],
                                ["RAM", fmt_bytes(m["ram_bytes"])], ["OS", m["platform"]],
                                ["Python", f"{m['python_impl']} {m['python']}"], ["packages", versions],
                                ["other load", "other processes kept " + busy]], "ll"),
            "", TEXT[cache_drop].format(command=cd.get("command")), ""]
    busy = [n for n, p in parts.items() if (p.get("machine_load") or {}).get("others_cores", 0) > 0.25]
    if busy:
        out += [TEXT["busy"].format(parts=", ".join(busy)), ""]
    lines = []
    for name, p in parts.items():
        load, reason = p.get("machine_load"), f" ({p['reason']})" if p.get("reason") else ""
        lines.append([name, p.get("started", "")[:16].replace("T", " "), p["status"], f"{p['elapsed_seconds']:.0f} s",
                      f"{load['others_cores']:.2f} of {load['cores']}", f"{load['steal_cores']:.2f}"] if load
                     else [name, "", p["status"] + reason, "–", "–", "–"])
    out += [md_table(["part", "started", "status", "time", "cores busy with other processes", "hypervisor steal"],
                     lines, "lllrrr"), ""]
    if headline := headline_markdown(results):
        out += ["## Headline", "", headline, ""]
    if targets := target_rows(results):
        passed = sum(t[-1] == "PASS" for t in targets)
        counted = sum(t[-1] in ("PASS", "FAIL") for t in targets)
        out += ["## Targets", "", TEXT["targets"].format(passed=passed, counted=counted), "",
                md_table(["part", "check", "workload", "value", "target", "verdict"],
                         [[*t[:5], f"**{t[5]}**" if t[5] == "FAIL" else t[5]] for t in targets], "lllrrl"), ""]
    out += ["## Charts", ""]
    for name, alt in (("open_read.png", "open + read one value per peer and workload, log scale"),
                      ("scaling.png", "open + read one row against file size"),
                      ("compression_threads.png", "compression throughput per thread count")):
        if (img / name).exists():
            out += [f"![{alt}]({os.path.relpath(img / name, docs)})", ""]

    if core := part_report(results, "core"):
        out += ["## Workloads against the peers", "", TEXT["core"].format(user=core["config"]["users"] // 2), ""]
        notes = [f"- {label(p)}: {note}." for p, note in core.get("peer_notes", {}).items()]
        notes += [f"- {label(p)}: **not run** ({why})." for p, why in core.get("skipped_peers", {}).items()]
        out += notes + [""] if notes else []
        out.append(core_section(core, parts["core"].get("stdout", "")))
        if core.get("errors"):
            out.append("<details><summary>Errors during the core part</summary>\n")
            out += [f"- {e['workload']} / {e['peer']} / {e['step']}: `{last_line(e)}`" for e in core["errors"]]
            out.append("\n</details>\n")
    if scaling := part_report(results, "scaling"):
        sizes = scaling["config"]["sizes"]
        out += ["## Open + read against file size", "", TEXT["scaling"].format(sizes=", ".join(map(fmt_bytes, sizes)))]
        if scaling["mode"] == "full" and max(sizes) < 4 * 1024**3:
            out.append(TEXT["scaling_small"].format(largest=fmt_bytes(max(sizes))))
        out += ["", scaling_section(scaling)]
    if comp := part_report(results, "compression"):
        out += ["## Compression, threads and checksums", "", compression_section(comp), ""]
    for name, title, render in (("models", "Record tables and pydantic models", None),
                                ("cache", "Cache: bfa.memoize against joblib.Memory", None),
                                ("frames", "Data frames against Arrow IPC and Parquet", frames_section),
                                ("remote", "Remote reads by byte range, and Dask", None)):
        if (part := parts.get(name)) is None:
            continue
        out += [f"## {title}", ""]
        if part["status"] != "ok" or render and not part.get("report"):
            out.append(f"Not in this run: {part['status']} ({part.get('reason')}).")
        else:  # models, cache and remote: the tables they printed
            out += [render(part["report"])] if render else [f"`benchmarks/bench_{name}.py`, as it printed:", "",
                                                            code_block(part["stdout"])]
        out.append("")
    if failed := {n: p for n, p in parts.items() if p["status"] != "ok"}:
        out += ["## Parts that did not run", ""] + [f"- {n}: {p['status']} ({p.get('reason')})"
                                                   for n, p in failed.items()] + [""]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a results file written by benchmarks/run.py")
    parser.add_argument("--docs", default=str(ROOT / "docs"), help="directory for BENCHMARKS.md and img/")
    args = parser.parse_args(argv)
    path = Path(args.results).resolve()
    results = json.loads(path.read_text())
    for p in write(results, Path(args.docs), path):
        print(f"wrote {p}")
    print(headline_markdown(results) or "(no headline table: the core part did not run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
