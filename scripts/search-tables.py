"""Markdown tables from the files of scripts/results-search.sh, and the exhaustive optimum.

    python3 scripts/search-tables.py optimum TRACE BUDGET     # the best policy within BUDGET BOPs
    python3 scripts/search-tables.py tables OUT MODEL...      # the docs/results.md tables, one per model
    python3 scripts/search-tables.py summary OUT MODEL...     # test ACR of every method side by side
    python3 scripts/search-tables.py regrets OUT MODEL TRACE  # every pick's regret on another enumeration

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
COUNT = 500  # test images of a complete certification (scripts/results-search.sh)


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


def radii_of(path):
    """Certified radius per image, 0 where wrong or abstaining."""
    with open(path) as f:
        return [float(r["radius"]) if r["correct"] == "1" else 0.0 for r in csv.DictReader(f, delimiter="\t")]


def mean_se(values):
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1)) if n > 1 else float("nan")
    return mean, sd / math.sqrt(n)


def certified(path):
    """ACR and its standard error over images (radius 0 where wrong or abstaining)."""
    radii = radii_of(path)
    return (*mean_se(radii), len(radii))


def ground_truth(out, model):
    """The exhaustive enumeration's trace, once it has finished (its run JSON exists)."""
    done = load(os.path.join(out, "runs", f"{model}-exhaustive.json"))
    return trace(os.path.join(out, "traces", f"{model}-exhaustive.tsv")) if done else None


def load(path):
    return json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else None


def test_cells(out, model, widths):
    key = f"{model}-{widths.replace(',', '')}"
    ev = load(os.path.join(out, "eval", f"{key}.json"))
    acc = f"{ev['accuracy']:.4f}" if ev else "…"
    cert = os.path.join(out, "certify", f"{key}.tsv")
    if os.path.exists(cert) and os.path.getsize(cert):
        mean, se, n = certified(cert)
        acr = f"{mean:.3f} ± {se:.3f}" + ("" if n >= COUNT else f" ({n} images)")
    else:
        acr = "…"
    return acc, acr


def tables(out, models):
    for model in models:
        gt_table = ground_truth(out, model)
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
        print("\n" + float_figures(out, model) + "\n")


def float_figures(out, model):
    """The float model the multi-bit one was trained from: test accuracy and ACR."""
    parts = []
    ev = load(os.path.join(out, "eval", f"{model}-float.json"))
    if ev:
        parts.append(f"test accuracy {ev['accuracy']:.4f}")
    float_tsv = os.path.join("results", "certify", f"{model}-float.tsv")
    if os.path.exists(float_tsv):
        mean, se, n = certified(float_tsv)
        parts.append(f"test ACR {mean:.3f} ± {se:.3f} ({n} images, `{float_tsv}`)")
    return "The float model it was trained from: " + (", ".join(parts) if parts else "not evaluated") + "."


def chosen(out, model, b, gt_table):
    """(method, widths) of every finished search under budget b, and the exhaustive optimum."""
    picks = []
    budget = None
    for m in METHODS:
        r = load(os.path.join(out, "runs", f"{model}-b{b}-{m}.json"))
        if r:
            picks.append((m, ",".join(map(str, r["policy"]))))
            budget = r["budget"]
    if gt_table and budget is not None:
        picks.append(("optimum", optimum(gt_table, budget)[0]))
    return budget, picks


def regrets(out, model, other):
    """Each method's pick (and both optima) scored on a second exhaustive enumeration, e.g.
    clean accuracy on more ground-truth images: its reward there, regret, test figures."""
    first = ground_truth(out, model)
    second = trace(other)
    reward = {w: r for w, _, r in second}
    print(f"Ground truth: `{other}` ({len(second):,} policies)\n")
    print("| budget | method | policy | reward | regret | ties at the optimum | test accuracy | test ACR ± s.e. |")
    print("|---|---|---|---|---|---|---|---|")
    for b in BUDGETS:
        budget, picks = chosen(out, model, b, first)
        if budget is None:
            continue
        best = optimum(second, budget)
        ties = sum(1 for _, c, r in second if c <= budget and r == best[2])
        rows = [(LABELS[m] if m != "optimum" else "optimum of the first enumeration", w) for m, w in picks]
        rows.append(("optimum of this enumeration", best[0]))
        for label, widths in rows:
            acc, acr = test_cells(out, model, widths)
            r = reward[widths]
            tie_cell = f"{ties}" if label == "optimum of this enumeration" else ""
            print(f"| {b} | {label} | {widths.replace(',', '-')} | {r:.3f} | {best[2] - r:.3f} | {tie_cell} | {acc} | {acr} |")


def own_reward_gap(out, model, b):
    """ARQ's validation reward (IRS-ACR) at its own pick minus the best of the other picks
    scored by the same reward: below 0, another method found a policy ARQ's reward prefers."""
    runs = {m: load(os.path.join(out, "runs", f"{model}-b{b}-{m}.json")) for m in METHODS}
    arq = runs.get("arq")
    others = [r for m, r in runs.items() if m != "arq" and r and r["reward"] == (arq or {}).get("reward")]
    if not arq or not others:
        return "…"
    best = max(others, key=lambda r: r["validationReward"])
    return f"{arq['validationReward'] - best['validationReward']:+.3f} (vs {best['method']})"


def summary(out, models):
    """Test ACR of each method per model and budget; the best in bold; ARQ against the best
    other method as a paired difference over the same images (same seed, so same noise)."""
    short = {"arq": "ARQ", "haq": "HAQ", "hawq": "HAWQ-V3", "ilp": "DR ILP", "random": "random",
             "uniform": "uniform", "optimum": "optimum (acc.)"}
    cols = METHODS + ["optimum"]
    print("| model | budget | " + " | ".join(short[c] for c in cols)
          + " | ARQ − best other (paired s.e.) | ARQ's reward at its pick − best other pick's |")
    print("|---|---|" + "---|" * len(cols) + "---|---|")
    for model in models:
        gt_table = ground_truth(out, model)
        for b in BUDGETS:
            _, picks = chosen(out, model, b, gt_table)
            radii = {}
            for m, widths in picks:
                path = os.path.join(out, "certify", f"{model}-{widths.replace(',', '')}.tsv")
                if os.path.exists(path) and os.path.getsize(path):
                    r = radii_of(path)
                    if len(r) >= COUNT:
                        radii[m] = r
            if not picks:
                continue
            acr = {m: mean_se(r)[0] for m, r in radii.items()}
            top = max(acr.values()) if acr else None
            cells = []
            for c in cols:
                if c not in acr:
                    cells.append("…")
                else:
                    cell = f"{acr[c]:.3f}"
                    cells.append(f"**{cell}**" if round(acr[c], 3) == round(top, 3) else cell)
            others = [m for m in acr if m != "arq"]
            if "arq" in acr and len(others) == len(cols) - 1:
                best = max(others, key=lambda m: acr[m])
                diff, se = mean_se([a - o for a, o in zip(radii["arq"], radii[best])])
                gap = f"{diff:+.3f} ± {se:.3f} (vs {short[best]})"
            else:
                gap = "…"
            print(f"| {model} | {b} bits | " + " | ".join(cells) + f" | {gap} | {own_reward_gap(out, model, b)} |")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "optimum":
        widths, _, _ = optimum(trace(sys.argv[2]), int(sys.argv[3]))
        print(widths)
    elif len(sys.argv) >= 3 and sys.argv[1] == "tables":
        tables(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 5 and sys.argv[1] == "regrets":
        regrets(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) >= 3 and sys.argv[1] == "summary":
        summary(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit(__doc__)
