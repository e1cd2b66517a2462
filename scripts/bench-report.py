#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""scripts/bench.sh's report: fio's JSON from the guests' TAP channels to a
table, a CSV and a chart.

usage: bench-report.py report --dir OUT [--seconds N]
       bench-report.py estimate --dir OUT --plan PLAN.tsv --runtime S --small N --meta N

OUT holds header.txt ("Key: value" lines), plan.tsv (run, config, driver,
cell, mayfail: every cell bench.sh asked for), boots.tsv (run, config,
driver, seconds, status, dir) and each boot's run-guest.sh output in
OUT/<dir>/tap.log, where tests/guest/bin/bench-fio.sh printed, as "#   "
comments, "BENCH ..." lines and fio's JSON between "BENCH json-begin CELL"
and "BENCH json-end CELL".

report: writes OUT/json/<config>/<driver>/<run>/<cell>.json (fio's raw
JSON), results.csv, results.md and results.svg, and prints the failures,
then the table (the last lines). A cell run fails when fio printed no
JSON, reported an error (unless the plan's mayfail lists that errno: the
cell is then "unsupported") or a job that did no I/O, or when the guest
never ran it. Exit status 1 if any cell run failed.

estimate: the time a plan (bench.sh's full run) would take, from the costs
measured in OUT: per boot (its wall time minus its cells), per time-based
cell (guest time minus the runtime), per small file and per metadata
operation. Prints "estimate: N s (...)".
"""
import argparse
import csv
import json
import math
import os
import re
import statistics
import sys
from xml.sax.saxutils import escape

CONFIG_ORDER = ["never", "dax", "auto"]
CONFIG_LABEL = {
    "never": "cache=never",
    "dax": "DAX (dax=always)",
    "auto": "cache=auto",
}
DRIVERS = ["c", "rust"]
DRIVER_LABEL = {"c": "C", "rust": "Rust"}
RW_ORDER = ["seqread", "randread", "seqwrite", "randwrite", "bigrandread", "bigrandwrite",
            "smallread", "smallwrite", "create", "stat", "delete"]
ENGINE_ORDER = ["psync", "libaio", "mmap", "filecreate", "filestat", "filedelete"]
META = {"create", "stat", "delete"}
READS = {"seqread", "randread", "bigrandread", "smallread"}
TIMED = set(RW_ORDER) - META
COUNTERS = ["setupmapping", "removemapping", "reclaim_inline", "reclaim_worker", "waits",
            "fallbacks", "faults"]
ERRNO = {5: "EIO", 6: "ENXIO", 12: "ENOMEM", 19: "ENODEV", 22: "EINVAL", 28: "ENOSPC",
         38: "ENOSYS", 95: "EOPNOTSUPP", 107: "ENOTCONN", 110: "ETIMEDOUT"}


def die(msg):
    print(f"bench-report.py: {msg}", file=sys.stderr)
    sys.exit(2)


def split_cell(cell):
    rw, engine, jobs = cell.split("-")
    return rw, engine, int(jobs)


def cell_key(cell):
    rw, engine, jobs = split_cell(cell)
    return (RW_ORDER.index(rw) if rw in RW_ORDER else 99,
            ENGINE_ORDER.index(engine) if engine in ENGINE_ORDER else 99, jobs)


def read_tsv(path):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                rows.append(line.split("\t"))
    except OSError as e:
        die(f"cannot read {path}: {e}")
    return rows


def read_header(path):
    items = []
    try:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if ": " in line:
                    k, v = line.split(": ", 1)
                    items.append((k, v))
    except OSError:
        pass
    return items


def parse_tap(path):
    """BENCH lines of one boot: {cell: {...}}, plus the boot's own lines."""
    cells = {}
    cur = None
    json_of = None
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip("\r\n") for l in f]
    except OSError:
        return cells
    for raw in lines:
        if not raw.startswith("#   "):
            continue
        line = raw[4:]
        if json_of is not None:
            if line == f"BENCH json-end {json_of}":
                json_of = None
            else:
                cells[json_of]["json"].append(line)
            continue
        w = line.split()
        if len(w) < 3 or w[0] != "BENCH":
            if cur is not None:
                cells[cur]["messages"].append(line)
            continue
        kind, cell = w[1], w[2]
        if kind == "cell" and len(w) >= 5 and w[3] == "begin":
            cells[cell] = {"begin": float(w[4]), "end": None, "rc": None, "json": [],
                           "messages": [], "meminfo": {}, "dax": {}}
            cur = cell
        elif cell not in cells:
            continue
        elif kind == "cell" and len(w) >= 6 and w[3] == "end":
            cells[cell]["end"] = float(w[4])
            cells[cell]["rc"] = int(w[5].split("=", 1)[1])
            cur = None
        elif kind == "meminfo" and len(w) >= 4:
            cells[cell]["meminfo"][w[3]] = dict(kv.split("=", 1) for kv in w[4:] if "=" in kv)
        elif kind == "dax" and len(w) >= 4:
            cells[cell]["dax"][w[3]] = {k: int(v) for k, v in
                                        (kv.split("=", 1) for kv in w[4:] if "=" in kv)}
        elif kind == "json-begin":
            json_of = cell
    return cells


def fio_json(lines):
    """fio's report: the text from its first '{' line to its last '}' line."""
    start = next((i for i, l in enumerate(lines) if l.startswith("{")), None)
    end = max((i for i, l in enumerate(lines) if l.startswith("}")), default=None)
    if start is None or end is None or end < start:
        return None, "fio printed no JSON report"
    try:
        return json.loads("\n".join(lines[start:end + 1])), None
    except ValueError as e:
        return None, f"fio's JSON report does not parse ({e})"


def judge(cell, data, mayfail):
    """One cell run: (status, value dict, note)."""
    if data is None:
        return "failed", None, "not run (the guest stopped before it, or never started)"
    if data["end"] is None:
        return "failed", None, "did not finish (the guest stopped in it)"
    doc, err = fio_json(data["json"])
    errnos = set()
    reason = ""
    if mayfail:
        e, _, reason = mayfail.partition(" ")
        errnos = {int(x) for x in e.split(",") if x}
    msg = next((m for m in data["messages"] if "err=" in m or "error" in m.lower()), "")
    if doc is None:
        return "failed", None, f"{err} (fio exit {data['rc']}){': ' + msg if msg else ''}"
    jobs = doc.get("jobs") or []
    if not jobs:
        return "failed", None, f"fio reported no job (exit {data['rc']})"
    job_err = next((j.get("error", 0) for j in jobs if j.get("error", 0)), 0)
    if job_err or data["rc"]:
        if job_err in errnos:
            return "unsupported", None, reason
        name = ERRNO.get(job_err, str(job_err))
        return "failed", None, (f"fio error {name} (exit {data['rc']})" if job_err else
                                f"fio exit {data['rc']}") + (f": {msg}" if msg else "")
    ios = sum(j[d]["total_ios"] for j in jobs for d in ("read", "write", "trim") if d in j)
    if ios == 0:
        return "failed", None, "fio did no I/O"
    bw = sum(j[d]["bw_bytes"] for j in jobs for d in ("read", "write") if d in j)
    iops = sum(j[d]["iops"] for j in jobs for d in ("read", "write") if d in j)
    mem = data["meminfo"]
    val = {"mibs": bw / 2**20, "iops": iops, "ios": ios,
           "seconds": data["end"] - data["begin"]}
    for when in ("before", "after"):
        for k in ("Cached", "MemAvailable"):
            v = mem.get(when, {}).get(k)
            val[f"{k}_{when}"] = int(v) if v is not None else None
    dax = data["dax"]
    if "before" in dax and "after" in dax:
        val["dax"] = {k: dax["after"][k] - dax["before"].get(k, 0) for k in dax["after"]
                      if not k.startswith("ranges_")}
        val["dax"].update({k: v for k, v in dax["after"].items() if k.startswith("ranges_")})
    return "ok", val, ""


def load(out):
    plan = read_tsv(os.path.join(out, "plan.tsv"))
    boots = {(r[0], r[1], r[2]): r for r in read_tsv(os.path.join(out, "boots.tsv"))}
    taps = {}
    runs = {}
    for run, config, driver, cell, *rest in plan:
        mayfail = rest[0] if rest else ""
        key = (run, config, driver)
        if key not in taps:
            b = boots.get(key)
            taps[key] = parse_tap(os.path.join(out, b[5], "tap.log")) if b else {}
        data = taps[key].get(cell)
        status, val, note = judge(cell, data, mayfail)
        if data is not None and data["json"]:
            d = os.path.join(out, "json", config, driver, run)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"{cell}.json"), "w") as f:
                f.write("\n".join(data["json"]) + "\n")
        runs.setdefault((config, driver, cell), []).append((run, status, val, note))
    return plan, boots, taps, runs


def median(xs):
    return statistics.median(xs) if xs else None


def summarize(runs):
    """(config, driver, cell) -> summary dict."""
    out = {}
    for key, rs in runs.items():
        oks = [v for _, s, v, _ in rs if s == "ok"]
        fails = [(r, n) for r, s, _, n in rs if s == "failed"]
        unsup = [n for _, s, _, n in rs if s == "unsupported"]
        s = {"runs": len(rs), "ok": len(oks)}
        if fails:
            s["status"] = "failed"
            s["note"] = "; ".join(f"{r}: {n}" for r, n in fails)
        elif unsup and oks:
            s["status"] = "failed"
            s["note"] = "unsupported in some runs, measured in others: " + unsup[0]
        elif unsup:
            s["status"] = "unsupported"
            s["note"] = unsup[0]
        else:
            s["status"] = "ok"
            s["note"] = ""
        if oks:
            mib = [v["mibs"] for v in oks]
            s.update(median=median(mib), min=min(mib), max=max(mib),
                     iops=median([v["iops"] for v in oks]),
                     values=mib, iops_values=[v["iops"] for v in oks])
            for k in ("Cached_before", "Cached_after", "MemAvailable_before", "MemAvailable_after"):
                xs = [v[k] for v in oks if v.get(k) is not None]
                s[k] = median(xs)
            daxes = [v["dax"] for v in oks if "dax" in v]
            if daxes:
                s["dax"] = {k: median([d.get(k, 0) for d in daxes]) for k in daxes[0]}
        out[key] = s
    return out


def value(s, cell):
    """The number a cell is compared by: MiB/s, or ops/s for metadata."""
    if not s or s["status"] != "ok":
        return None
    return s["iops"] if split_cell(cell)[0] in META else s["median"]


def fmt_val(s, cell):
    if s is None:
        return "-"
    if s["status"] == "failed":
        return "FAILED"
    if s["status"] == "unsupported":
        return "unsupported"
    v = value(s, cell)
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}"


def cell_label(cell):
    rw, engine, jobs = split_cell(cell)
    if rw in META:
        return f"{rw} (ops/s)"
    return f"{rw}-{engine}-{'multi' if jobs > 1 else '1'}"


def table(configs, cells, summ):
    hdr = ["cell"]
    for c in configs:
        hdr += [f"{CONFIG_LABEL[c]} C", f"{CONFIG_LABEL[c]} Rust", f"{c} Rust/C"]
    dax_pair = "dax" in configs and "never" in configs
    if dax_pair:
        hdr += ["DAX/never C", "DAX/never Rust"]
    rows = [hdr]
    for cell in cells:
        row = [cell_label(cell)]
        for c in configs:
            sc, sr = summ.get((c, "c", cell)), summ.get((c, "rust", cell))
            row += [fmt_val(sc, cell), fmt_val(sr, cell),
                    fmt_ratio(ratio(value(sr, cell), value(sc, cell)))]
        if dax_pair:
            for d in DRIVERS:
                row.append(fmt_ratio(ratio(value(summ.get(("dax", d, cell)), cell),
                                           value(summ.get(("never", d, cell)), cell))))
        rows.append(row)
    lines = ["| " + " | ".join(rows[0]) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(hdr) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return lines


def mib(kib):
    return None if kib is None else kib / 1024


def memory_table(configs, cells, summ):
    rows = ["| cell | configuration | driver | Cached before | after | change | MemAvailable before | after | change |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for cell in cells:
        if split_cell(cell)[0] not in READS:
            continue
        for c in configs:
            for d in DRIVERS:
                s = summ.get((c, d, cell))
                if not s or s.get("Cached_before") is None or s.get("Cached_after") is None:
                    continue
                cb, ca, mb, ma = (mib(s[k]) for k in ("Cached_before", "Cached_after",
                                                      "MemAvailable_before", "MemAvailable_after"))
                rows.append(f"| {cell_label(cell)} | {CONFIG_LABEL[c]} | {DRIVER_LABEL[d]} | "
                            f"{cb:.1f} | {ca:.1f} | {ca - cb:+.1f} | {mb:.1f} | {ma:.1f} | {ma - mb:+.1f} |")
    return rows if len(rows) > 2 else []


def counters_table(cells, summ):
    rows = ["| cell | " + " | ".join(COUNTERS) + " |", "|---|" + "---:|" * len(COUNTERS)]
    for cell in cells:
        s = summ.get(("dax", "rust", cell))
        if not s or not any(s.get("dax", {}).get(k) for k in COUNTERS):
            continue
        rows.append(f"| {cell_label(cell)} | " +
                    " | ".join(f"{s['dax'].get(k, 0):.0f}" for k in COUNTERS) + " |")
    return rows if len(rows) > 2 else []


# ---- the chart ----
COLORS = {("never", "c"): "#9ecae1", ("never", "rust"): "#2171b5",
          ("dax", "c"): "#fdae6b", ("dax", "rust"): "#d94801",
          ("auto", "c"): "#a1d99b", ("auto", "rust"): "#238b45"}


def panels_of(cells):
    groups = [("psync (seed matrix)", lambda rw, e: rw in ("seqread", "randread", "seqwrite", "randwrite") and e == "psync"),
              ("libaio, O_DIRECT, iodepth 16", lambda rw, e: e == "libaio"),
              ("mmap", lambda rw, e: e == "mmap"),
              ("working set 4 x window, small files", lambda rw, e: rw.startswith(("big", "small"))),
              ("metadata", lambda rw, e: rw in META)]
    out = []
    for title, pred in groups:
        cs = [c for c in cells if pred(*split_cell(c)[:2])]
        if cs:
            out.append((title, cs))
    return out


def svg(configs, cells, summ, header, runs):
    bar_w, bar_gap, group_gap = 14, 2, 22
    bars = [(c, d) for c in configs for d in DRIVERS]
    group_w = len(bars) * (bar_w + bar_gap) + group_gap
    left, right, top = 70, 20, 150
    plot_h, panel_gap, headroom = 200, 100, 26
    panels = panels_of(cells)
    width = left + right + max(len(cs) for _, cs in panels) * group_w
    width = max(width, 900)
    height = top + len(panels) * (plot_h + panel_gap) + 10
    o = ['<?xml version="1.0" encoding="UTF-8"?>',
         f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
         f'<rect width="{width}" height="{height}" fill="white"/>']
    hd = dict(header)
    title = f"virtio-fs, C driver vs virtiofs-rs: fio 4 KiB, median of {runs} run(s)"
    qemu = re.sub(r"^QEMU emulator version (\S+).*", r"QEMU \1", hd.get("QEMU", ""))
    subs = [f"{hd.get('Date', '')}, commit {hd.get('Commit', '?')}",
            f"Linux {hd.get('Kernel', '?').split(',')[0]} (bench flavor), {qemu} TCG, "
            f"guest {hd.get('Guest', '?').split(';')[0]}",
            "Under TCG only the ratios mean something. Above each Rust bar: Rust/C in that configuration."]
    o.append(f'<text x="{left}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>')
    for i, sub in enumerate(subs):
        o.append(f'<text x="{left}" y="{42 + 15 * i}" fill="#444">{escape(sub)}</text>')
    x = left
    for c, d in bars:
        o.append(f'<rect x="{x}" y="96" width="12" height="12" fill="{COLORS[(c, d)]}"/>')
        label = f"{DRIVER_LABEL[d]} {CONFIG_LABEL[c]}"
        o.append(f'<text x="{x + 16}" y="106">{escape(label)}</text>')
        x += 16 + 7 * len(label) + 14
    for pi, (ptitle, pcells) in enumerate(panels):
        y0 = top + pi * (plot_h + panel_gap)
        meta = all(split_cell(c)[0] in META for c in pcells)
        unit = "ops/s" if meta else "MiB/s"
        vals = [value(summ.get((c, d, cell)), cell) for cell in pcells for c, d in bars]
        vals = [v for v in vals if v]
        lo = 10 ** math.floor(math.log10(min(vals))) if vals else 1
        hi = 10 ** math.ceil(math.log10(max(vals))) if vals else 10
        if hi <= lo:
            hi = lo * 10
        span = math.log10(hi) - math.log10(lo)

        def ypos(v):
            return y0 + plot_h - (math.log10(v) - math.log10(lo)) / span * (plot_h - headroom)

        o.append(f'<text x="{left}" y="{y0 - 12}" font-size="13" font-weight="bold">{escape(ptitle)} ({unit}, log scale)</text>')
        dec = lo
        while dec <= hi * 1.0001:
            yy = ypos(dec)
            o.append(f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>')
            o.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#444">{dec:g}</text>')
            dec *= 10
        o.append(f'<line x1="{left}" x2="{left}" y1="{y0}" y2="{y0 + plot_h}" stroke="#888"/>')
        for gi, cell in enumerate(pcells):
            gx = left + 8 + gi * group_w
            for bi, (c, d) in enumerate(bars):
                bx = gx + bi * (bar_w + bar_gap)
                s = summ.get((c, d, cell))
                v = value(s, cell)
                if v:
                    by = ypos(max(v, lo))
                    o.append(f'<rect x="{bx}" y="{by:.1f}" width="{bar_w}" height="{y0 + plot_h - by:.1f}" '
                             f'fill="{COLORS[(c, d)]}"><title>{escape(f"{cell} {DRIVER_LABEL[d]} {CONFIG_LABEL[c]}: {v:.1f} {unit}")}</title></rect>')
                    if d == "rust":
                        r = ratio(v, value(summ.get((c, "c", cell)), cell))
                        if r is not None:
                            tx, ty = bx + bar_w / 2 + 3, by - 3
                            o.append(f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="9" '
                                     f'transform="rotate(-90 {tx:.1f} {ty:.1f})">{r:.2f}\u00d7</text>')
                elif s is not None:
                    word = "FAILED" if s["status"] == "failed" else "unsupported"
                    colr = "#c00" if word == "FAILED" else "#777"
                    tx, ty = bx + bar_w / 2 + 3, y0 + plot_h - 3
                    o.append(f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="9" fill="{colr}" '
                             f'transform="rotate(-90 {tx:.1f} {ty:.1f})">{word}</text>')
            rw, engine, jobs = split_cell(cell)
            cx = gx + len(bars) * (bar_w + bar_gap) / 2
            l1 = rw
            l2 = engine if rw in META else f"{engine}, {jobs} job{'s' if jobs > 1 else ''}"
            o.append(f'<text x="{cx:.1f}" y="{y0 + plot_h + 14}" text-anchor="middle">{escape(l1)}</text>')
            o.append(f'<text x="{cx:.1f}" y="{y0 + plot_h + 27}" text-anchor="middle" fill="#555">{escape(l2)}</text>')
        o.append(f'<line x1="{left}" x2="{width - right}" y1="{y0 + plot_h}" y2="{y0 + plot_h}" stroke="#888"/>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def cmd_report(a):
    out = a.dir
    header = read_header(os.path.join(out, "header.txt"))
    plan, boots, taps, runs = load(out)
    if not plan:
        die(f"{out}/plan.tsv lists no cells")
    summ = summarize(runs)
    configs = [c for c in CONFIG_ORDER if any(k[0] == c for k in summ)]
    cells = sorted({k[2] for k in summ}, key=cell_key)
    nruns = len({p[0] for p in plan})

    # results.csv: one row per configuration, driver and cell.
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["config", "driver", "job", "engine", "jobs", "status", "median_mibs", "min_mibs",
                    "max_mibs", "runs", "runs_ok", "iops", "rust_c_ratio", "dax_nodax_ratio",
                    "values_mibs", "cached_kib_before", "cached_kib_after", "memavail_kib_before",
                    "memavail_kib_after", "dax_counters", "note"])
        for c in configs:
            for d in DRIVERS:
                for cell in cells:
                    s = summ.get((c, d, cell))
                    if s is None:
                        continue
                    rw, engine, jobs = split_cell(cell)
                    rc = ratio(value(summ.get((c, "rust", cell)), cell), value(summ.get((c, "c", cell)), cell))
                    dn = ratio(value(summ.get(("dax", d, cell)), cell),
                               value(summ.get(("never", d, cell)), cell)) if c == "dax" else None

                    def num(k, fmt="{:.2f}"):
                        return fmt.format(s[k]) if s.get(k) is not None else ""
                    w.writerow([c, d, rw, engine, jobs, s["status"], num("median"), num("min"), num("max"),
                                s["runs"], s["ok"], num("iops", "{:.0f}"),
                                "" if rc is None else f"{rc:.3f}", "" if dn is None else f"{dn:.3f}",
                                ";".join(f"{x:.2f}" for x in s.get("values", [])),
                                num("Cached_before", "{:.0f}"), num("Cached_after", "{:.0f}"),
                                num("MemAvailable_before", "{:.0f}"), num("MemAvailable_after", "{:.0f}"),
                                ";".join(f"{k}={v:.0f}" for k, v in sorted(s.get("dax", {}).items())),
                                s["note"]])

    tab = table(configs, cells, summ)
    failures = [(k, s) for k, s in summ.items() if s["status"] == "failed"]
    unsup = sorted({s["note"] for s in summ.values() if s["status"] == "unsupported"})
    md = ["# virtiofs-rs benchmark", ""]
    md += [f"- {k}: {v}" for k, v in header]
    if a.seconds:
        md.append(f"- Wall time: {a.seconds // 60}m{a.seconds % 60:02d}s")
    md += ["", f"MiB/s (metadata: ops/s), median of {nruns} run(s); Rust/C and DAX/never are ratios "
           "of the medians (above 1: Rust, or DAX, is faster). min, max and every run in results.csv; "
           "fio's JSON in json/.", ""]
    md += tab
    if unsup:
        md += ["", "unsupported: " + "; ".join(unsup) + "."]
    if "dax" in configs and "never" in configs:
        md += ["", "DAX/never compares two host daemons as well as two data paths: the DAX test "
               "host (which caches attributes and entries) against virtiofsd --cache=never (which "
               "caches nothing); the metadata rows show mostly that."]
    if failures:
        md += ["", "## Failed cells", ""]
        md += [f"- {c} {DRIVER_LABEL[d]} {cell}: {s['note']}" for (c, d, cell), s in sorted(failures)]
    mt = memory_table(configs, cells, summ)
    if mt:
        md += ["", "## Guest memory around the read cells", "",
               "MiB, medians; the guest drops its caches before each cell. The initramfs counts as "
               "Cached (about 120 MiB); what a cell adds is its page cache.", ""] + mt
    ct = counters_table(cells, summ)
    if ct:
        md += ["", "## virtiofs-rs window counters on the DAX host (change during the cell; C has none)", ""] + ct
    md += ["", "![chart](results.svg)", ""]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(out, "results.svg"), "w", encoding="utf-8") as f:
        f.write(svg(configs, cells, summ, header, nruns))

    for (c, d, cell), s in sorted(failures):
        print(f"bench: FAILED: {c} {DRIVER_LABEL[d]} {cell}: {s['note']}")
    if failures:
        print(f"bench: {len(failures)} cell(s) failed")
    print(f"MiB/s (metadata: ops/s), median of {nruns} run(s); ratios of medians")
    print("\n".join(tab))
    return 1 if failures else 0


def cmd_estimate(a):
    """Cost model from a finished run, applied to another plan."""
    plan, boots, taps, runs = load(a.dir)
    spec_re = re.compile(r"runtime:(\d+),.*small:(\d+),meta:(\d+)")
    boot_over, timed_over = {}, {}
    units = {}  # (config, driver, rw) -> seconds per small file or metadata operation
    for key, b in boots.items():
        cells = {c: d for c, d in taps.get(key, {}).items() if d["end"] is not None}
        used = sum(d["end"] - d["begin"] for d in cells.values())
        boot_over.setdefault(key[1:], []).append(max(float(b[3]) - used, 0))
        try:
            with open(os.path.join(a.dir, b[5], "tap.log"), errors="replace") as f:
                m = spec_re.search(f.read())
        except OSError:
            m = None
        if not m:
            continue
        runtime, small, meta = (int(x) for x in m.groups())
        over = [d["end"] - d["begin"] - runtime for c, d in cells.items()
                if split_cell(c)[0] in TIMED and not split_cell(c)[0].startswith("small")]
        timed_over.setdefault(key[1:], []).extend(max(x, 0) for x in over)
        fixed = median(over) if over else 1.0
        for c, d in cells.items():
            rw = split_cell(c)[0]
            t = d["end"] - d["begin"]
            if rw in META:
                units.setdefault(key[1:] + (rw,), []).append(max(t - fixed, 0) / meta)
            elif rw.startswith("small"):
                units.setdefault(key[1:] + (rw,), []).append(max(t - runtime - fixed, 0) / small)
    if not boot_over or not timed_over:
        die(f"{a.dir} has no measured boots")
    all_boot = [x for v in boot_over.values() for x in v]
    all_over = [x for v in timed_over.values() for x in v]

    def cost(table, key, fallback):
        v = table.get(key)
        return median(v) if v else fallback

    total, parts = 0.0, {"boots": 0.0, "timed": 0.0, "small": 0.0, "meta": 0.0}
    seen = set()
    for run, config, driver, cell, *_ in read_tsv(a.plan):
        k = (config, driver)
        # A configuration not measured (auto) costs what the slowest measured one does.
        kk = k if k in boot_over else max(boot_over, key=lambda x: median(boot_over[x]))
        if (run, config, driver) not in seen:
            seen.add((run, config, driver))
            parts["boots"] += cost(boot_over, kk, median(all_boot))
        rw = split_cell(cell)[0]
        fixed = cost(timed_over, kk, median(all_over))
        if rw in META:
            u = cost(units, kk + (rw,), max([median(v) for x, v in units.items() if x[2] == rw] or [0.01]))
            parts["meta"] += fixed + u * a.meta
        elif rw.startswith("small"):
            u = cost(units, kk + (rw,), max([median(v) for x, v in units.items() if x[2].startswith("small")] or [0.002]))
            parts["small"] += a.runtime + fixed + u * a.small
        else:
            parts["timed"] += a.runtime + fixed
    total = sum(parts.values())
    print(f"estimate: {total:.0f} s ({total / 60:.0f} min) for {len(seen)} boots: " +
          ", ".join(f"{k} {v / 60:.1f} min" for k, v in parts.items()) +
          f"; per boot {median(all_boot):.0f} s, per timed cell runtime + {median(all_over):.1f} s"
          f" (costs measured in {a.dir}; configurations not measured there cost as the slowest one)")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report")
    r.add_argument("--dir", required=True)
    r.add_argument("--seconds", type=int, default=0)
    e = sub.add_parser("estimate")
    e.add_argument("--dir", required=True)
    e.add_argument("--plan", required=True)
    e.add_argument("--runtime", type=float, required=True)
    e.add_argument("--small", type=int, required=True)
    e.add_argument("--meta", type=int, required=True)
    a = p.parse_args()
    return {"report": cmd_report, "estimate": cmd_estimate}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
