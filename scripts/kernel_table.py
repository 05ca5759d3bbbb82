#!/usr/bin/env python3
"""Per-kernel table of a decode step from `scripts/gpu_session.sh ncu-decode` output.

Reads the ncu --csv --page raw file (gpu__time_duration, dram__bytes_read/write per launch),
groups launches by kernel (name + grid, so the four GEMV shapes stay apart), and prints each
group's share of the profiled time, microseconds per step and achieved DRAM GB/s against a
measured read ceiling. ncu serialises launches, so the sum is the kernels' time without launch
gaps or overlap: compare it with the step time `iol bench` measures to see the gaps.

  python3 scripts/kernel_table.py gpu-out/ncu_decode_b1.csv --steps-marker gemv --read-ceiling 4.48e12
"""
import argparse
import collections
import csv
import re
import sys


def short_name(name):
    name = re.sub(r"\(.*", "", name)               # drop the argument list
    name = re.sub(r"^(void |\w+::)+", "", name)     # drop return type / namespaces
    return name.split("<")[0] + ("<" + name.split("<", 1)[1][:40] if "<" in name else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--read-ceiling", type=float, default=0, help="read bandwidth ceiling, bytes/s")
    ap.add_argument("--steps", type=float, default=0, help="decode steps covered (default: launches of the most frequent LM-head-like kernel)")
    args = ap.parse_args()
    lines = [l for l in open(args.csv) if l.startswith('"')]
    rows = list(csv.reader(lines))
    header, units, data = rows[0], rows[1], rows[2:]
    col = {h: i for i, h in enumerate(header)}
    to_ns = {"ns": 1, "nsecond": 1, "us": 1e3, "usecond": 1e3, "ms": 1e6, "msecond": 1e6}[units[col["gpu__time_duration.sum"]]]
    to_b = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9, "B": 1}
    groups = collections.OrderedDict()
    for r in data:
        key = (short_name(r[col["Kernel Name"]]), r[col["Grid Size"]])
        g = groups.setdefault(key, [0, 0.0, 0.0])
        g[0] += 1
        g[1] += float(r[col["gpu__time_duration.sum"]].replace(",", "")) * to_ns
        for m in ("dram__bytes_read.sum", "dram__bytes_write.sum"):
            g[2] += float(r[col[m]].replace(",", "")) * to_b[units[col[m]]]
    total = sum(g[1] for g in groups.values())
    steps = args.steps or min(g[0] for g in groups.values())
    print(f"{len(data)} launches, {total / 1e3:.1f} us of kernel time, {steps:g} steps: {total / steps / 1e3:.1f} us per step\n")
    print("| kernel | grid | launches/step | share | us/step | GB/s | of read ceiling |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (name, grid), (n, ns, b) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        gbs = b / ns if ns else 0
        frac = f"{gbs * 1e9 / args.read_ceiling:.2f}" if args.read_ceiling else "-"
        print(f"| `{name}` | {grid} | {n / steps:g} | {100 * ns / total:.1f}% | {ns / steps / 1e3:.1f} | {gbs:.0f} | {frac} |")


if __name__ == "__main__":
    sys.exit(main())
