"""Markdown tables from the scores files of `bitsmooth faithfulness` (docs/results.md, "How
faithful is ARQ's reward").

    python3 scripts/faithfulness-table.py results/faithfulness/mnist-sigma0.5.tsv [...]

For each file: Spearman's ρ of IRS-ACR, scratch-ACR and clean accuracy with the full ACR,
computed here independently of the Rust code, with a 95 % bootstrap interval over policies
(2,000 resamples, seed 0); then, for budgets equal to the BOPs of uniform 4, 3 and 2.5 bits,
the policy each score would pick among the scored ones and what it costs in full ACR against
the best of them (the regret of trusting that score).
"""
import csv
import math
import os
import random
import sys

SCORES = [("irs_acr", "IRS-ACR (ARQ's reward)"), ("scratch_acr", "scratch-ACR, same n_χ"), ("accuracy", "clean accuracy")]


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(x, y):
    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def bootstrap(x, y, resamples=2000, seed=0):
    rng = random.Random(seed)
    n = len(x)
    values = []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        r = spearman([x[i] for i in idx], [y[i] for i in idx])
        if not math.isnan(r):
            values.append(r)
    values.sort()
    return values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1]


def read(path):
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        for k in ("bops", "irs_acr", "scratch_acr", "accuracy", "full_acr", "full_acr_se"):
            r[k] = float(r[k])
    return rows


def uniform_bops(rows):
    """BOPs of uniform b bits = stem·32·b + rest·b² (the stem reads the float image), with the
    stem and rest MACs solved from the uniform 4- and 2-bit rows."""
    u = {r["widths"]: r["bops"] for r in rows}
    n = len(rows[0]["widths"].split(","))
    b4, b2 = u[",".join(["4"] * n)], u[",".join(["2"] * n)]
    # b4 = 128 s + 16 r, b2 = 64 s + 4 r  →  r = (b4 − 2 b2) / 8, s = (b2 − 4 r) / 64
    rest = (b4 - 2 * b2) / 8
    stem = (b2 - 4 * rest) / 64
    return lambda b: stem * 32 * b + rest * b * b


def table(path):
    rows = read(path)
    name = os.path.basename(path).removesuffix(".tsv")
    full = [r["full_acr"] for r in rows]
    out = [f"**{name}** — {len(rows)} policies\n", "| score | Spearman ρ with full ACR | 95 % bootstrap interval |", "|---|---|---|"]
    for key, label in SCORES:
        x = [r[key] for r in rows]
        rho = spearman(x, full)
        lo, hi = bootstrap(x, full)
        out.append(f"| {label} | {rho:.3f} | [{lo:.3f}, {hi:.3f}] |")
    out.append("")
    bops = uniform_bops(rows)
    out.append("| budget (BOPs of uniform) | best full ACR within it | " + " | ".join(f"pick by {label}: policy, full ACR" for _, label in SCORES) + " |")
    out.append("|---|---|" + "---|" * len(SCORES))
    for b in (4, 3, 2.5):
        within = [r for r in rows if r["bops"] <= bops(b)]
        best = max(within, key=lambda r: r["full_acr"])
        cells = []
        for key, _ in SCORES:
            pick = max(within, key=lambda r: (r[key], -r["bops"]))
            cells.append(f"{pick['widths']}: {pick['full_acr']:.3f} ({pick['full_acr'] - best['full_acr']:+.3f})")
        out.append(f"| {b} bits ({len(within)} policies) | {best['full_acr']:.3f} ± {best['full_acr_se']:.3f} ({best['widths']}) | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print("\n\n".join(table(p) for p in sys.argv[1:]))
