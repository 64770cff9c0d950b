"""Markdown tables from the files of scripts/results-search.sh, and the exhaustive optimum.

    python3 scripts/search-tables.py optimum TRACE BUDGET     # the best policy within BUDGET BOPs
    python3 scripts/search-tables.py tables OUT MODEL...      # the docs/results.md tables

A trace is the TSV that `bitsmooth search --trace` writes: episode, widths (comma-separated,
forward order), bops, size_bytes, reward.
"""
import csv
import json
import math
import os
import sys

METHODS = ["arq", "haq", "hawq", "ilp", "random", "uniform"]
LABELS = {
    "arq": "ARQ (ACR by IRS)",
    "haq": "HAQ (accuracy)",
    "hawq": "HAWQ-V3 ILP",
    "ilp": "Double Rounding ILP",
    "random": "random search (ACR by IRS)",
    "uniform": "uniform",
    "optimum": "exhaustive optimum (accuracy)",
}
BUDGETS = ["4", "3", "2.5"]


def trace(path):
    with open(path) as f:
        return [
            (r["widths"], int(float(r["bops"])), float(r["reward"]))
            for r in csv.DictReader(f, delimiter="\t")
        ]


def optimum(table, budget):
    """The highest reward within the budget; ties go to the cheaper policy, then the first."""
    within = [(w, b, r) for w, b, r in table if b <= budget]
    if not within:
        raise SystemExit(f"no policy within {budget} BOPs")
    return max(within, key=lambda t: (t[2], -t[1]))


def certified(path):
    """ACR and its standard error over images (radius 0 where wrong or abstaining)."""
    with open(path) as f:
        radii = [float(r["radius"]) if r["correct"] == "1" else 0.0 for r in csv.DictReader(f, delimiter="\t")]
    n = len(radii)
    mean = sum(radii) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in radii) / (n - 1)) if n > 1 else float("nan")
    return mean, sd / math.sqrt(n), n


def load(path):
    return json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else None


def test_cells(out, model, widths):
    key = f"{model}-{widths.replace(',', '')}"
    ev = load(os.path.join(out, "eval", f"{key}.json"))
    acc = f"{ev['accuracy']:.4f}" if ev else "…"
    cert = os.path.join(out, "certify", f"{key}.tsv")
    if os.path.exists(cert) and os.path.getsize(cert):
        mean, se, n = certified(cert)
        acr = f"{mean:.3f} ± {se:.3f}" + ("" if n >= 500 else f" ({n} images)")
    else:
        acr = "…"
    return acc, acr


def tables(out, models):
    for model in models:
        gt = os.path.join(out, "traces", f"{model}-exhaustive.tsv")
        gt_table = trace(gt) if load(os.path.join(out, "runs", f"{model}-exhaustive.json")) else None
        gt_reward = {w: r for w, _, r in gt_table} if gt_table else {}
        print(f"### {model}\n")
        print(
            "| budget (uniform bits, BOPs) | method | policy | BOPs | size (bytes) | search s | policies evaluated "
            "| validation reward | validation accuracy (ground-truth images) | regret | test accuracy | test ACR ± s.e. |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for b in BUDGETS:
            runs = {m: load(os.path.join(out, "runs", f"{model}-b{b}-{m}.json")) for m in METHODS}
            budget = next((r["budget"] for r in runs.values() if r), None)
            if budget is None:
                continue
            best = optimum(gt_table, budget) if gt_table else None
            for m in METHODS + ["optimum"]:
                if m == "optimum":
                    if not best:
                        continue
                    widths, bops, reward = best
                    cells = [widths.replace(",", "-"), f"{bops:,}", "", "", f"{len(gt_table):,}", ""]
                else:
                    r = runs[m]
                    if not r:
                        continue
                    widths = ",".join(map(str, r["policy"]))
                    seconds = r["searchSeconds"] + (r.get("referenceSeconds") or 0)
                    cells = [
                        widths.replace(",", "-"),
                        f"{r['bops']:,}",
                        f"{r['sizeBytes']:,.0f}",
                        f"{seconds:.0f}",
                        f"{r['evaluated']}",
                        f"{r['validationReward']:.3f} ({r['reward']})",
                    ]
                val = gt_reward.get(widths)
                regret = f"{best[2] - val:.3f}" if best and val is not None else "…"
                val_cell = f"{val:.3f}" if val is not None else "…"
                acc, acr = test_cells(out, model, widths)
                print(f"| {b} ({budget:,}) | {LABELS[m]} | " + " | ".join(cells) + f" | {val_cell} | {regret} | {acc} | {acr} |")
        float_tsv = os.path.join("results", "certify", f"{model}-float.tsv")
        if os.path.exists(float_tsv):
            mean, se, n = certified(float_tsv)
            print(f"\nThe float model it was trained from: test ACR {mean:.3f} ± {se:.3f} ({n} images, `{float_tsv}`).\n")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "optimum":
        widths, _, _ = optimum(trace(sys.argv[2]), int(sys.argv[3]))
        print(widths)
    elif len(sys.argv) >= 3 and sys.argv[1] == "tables":
        tables(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit(__doc__)
