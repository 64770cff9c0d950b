#!/usr/bin/env python3
"""Markdown tables of scripts/results-supernet.sh's TSV: per policy the supernet's and the
multi-bit model's clean accuracy (full test set) and ACR, and per group of policies (uniform,
random at average width ≈ 3, 4, 6, the ILP picks) the mean of each and of their difference.

Usage: python3 scripts/supernet-table.py results/supernet/mnist-sigma0.25.tsv"""
import csv
import statistics
import sys
from collections import defaultdict


def main(path: str) -> None:
    rows = list(csv.DictReader(open(path), delimiter="\t"))
    by = defaultdict(dict)
    order = []
    for r in rows:
        key = (r["label"], r["widths"])
        if key not in by:
            order.append(key)
        by[key][r["model"]] = r
    n, count = rows[0]["n"], rows[0]["count"]
    print(f"Clean accuracy: full test set (10,000 images). ACR: first {count} test images, n = {n}, n0 = 100, α = 0.001.\n")
    print("| policy | widths (forward order) | mean width | BOPs (M) | accuracy supernet | accuracy multi-bit | Δ | ACR supernet | ACR multi-bit | Δ |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    groups = defaultdict(list)
    for key in order:
        pair = by[key]
        if set(pair) != {"supernet", "multibit"}:
            continue
        s, m = pair["supernet"], pair["multibit"]
        widths = [int(w) for w in key[1].split(",")]
        acc_s, acc_m = 100 * float(s["accuracy"]), 100 * float(m["accuracy"])
        acr_s, acr_m = float(s["acr"]), float(m["acr"])
        print(
            f"| {key[0]} | {key[1]} | {sum(widths) / len(widths):.2f} | {int(s['bops']) / 1e6:.1f} | "
            f"{acc_s:.2f} | {acc_m:.2f} | {acc_s - acc_m:+.2f} | {acr_s:.3f} | {acr_m:.3f} | {acr_s - acr_m:+.3f} |"
        )
        label = key[0]
        group = "uniform" if label.startswith("uniform") else label.rsplit("-", 1)[0] if label.startswith("random") else "ILP picks"
        groups[group].append((acc_s, acc_m, acr_s, acr_m))
    print()
    print("| group | policies | accuracy supernet | accuracy multi-bit | mean Δ accuracy (min, max) | ACR supernet | ACR multi-bit | mean Δ ACR (min, max) |")
    print("|---|---|---|---|---|---|---|---|")
    for group, vals in groups.items():
        da = [a - b for a, b, _, _ in vals]
        dr = [c - d for _, _, c, d in vals]
        mean = lambda i: statistics.mean(v[i] for v in vals)
        print(
            f"| {group} | {len(vals)} | {mean(0):.2f} | {mean(1):.2f} | {statistics.mean(da):+.2f} ({min(da):+.2f}, {max(da):+.2f}) | "
            f"{mean(2):.3f} | {mean(3):.3f} | {statistics.mean(dr):+.3f} ({min(dr):+.3f}, {max(dr):+.3f}) |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
