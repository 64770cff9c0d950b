"""Markdown tables from the TSVs of scripts/results-certify.sh: certified accuracy at the
reference radii and ACR per model and policy, and IRS against full recertification."""
import csv
import glob
import os
import re
import sys

RADII = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def acr(rs):
    return sum(float(r["radius"]) for r in rs if r["correct"] == "1") / len(rs)


def cert_acc(rs, r):
    # certified correctly with a radius of at least r (abstentions and errors count 0)
    return sum(1 for x in rs if x["correct"] == "1" and float(x["radius"]) >= r) / len(rs)


def seconds(rs):
    return sum(float(r["time"]) for r in rs)


# Forward passes of the base classifier per image: the cost that does not depend on how busy
# the machine was. CERTIFY runs n0 selection and n estimation copies; IRS runs f and fᵖ on
# n_χ replayed copies on the incremental path, and CERTIFY of fᵖ with n0 + n_χ on the full one.
N0 = 100


def passes_full(rs):
    return sum(N0 + int(r["n"]) for r in rs) / len(rs)


def passes_irs(rs):
    return sum(
        2 * int(r["n_chi"]) if r["path"] == "incremental" else N0 + int(r["n_chi"]) for r in rs
    ) / len(rs)


def main(out):
    full = {}
    for path in sorted(glob.glob(os.path.join(out, "*.tsv"))):
        m = re.match(r"(.+)-(?:w(\d)a\d|float)\.tsv$", os.path.basename(path))
        if m:
            # the float model is keyed as 32 bits
            full[(m.group(1), int(m.group(2) or 32))] = rows(path)
    models = sorted({k[0] for k in full}, key=lambda s: (float(s.split("sigma")[1]), s))
    print("| model | policy | images | " + " | ".join(f"r = {r}" for r in RADII) + " | ACR | s / image |")
    print("|---|---|---|" + "---|" * (len(RADII) + 2))
    for model in models:
        for b in (32, 8, 6, 4, 2):
            rs = full.get((model, b))
            if not rs:
                continue
            cells = " | ".join(f"{cert_acc(rs, r):.3f}" for r in RADII)
            policy = "float" if b == 32 else f"w{b}a{b}"
            print(f"| {model} | {policy} | {len(rs)} | {cells} | {acr(rs):.3f} | {seconds(rs) / len(rs):.2f} |")
    print()
    print(
        "| model | policy | n_χ | full ACR (n = 10⁴) | IRS ACR | scratch ACR (n = n_χ) | IRS − scratch "
        "| forward passes / image: full, IRS, scratch | IRS work: ÷ full, × scratch "
        "| incremental path | disagreement there |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    runs = []
    for path in glob.glob(os.path.join(out, "*-irs*.tsv")):
        m = re.match(r"(.+)-w(\d)a\d-irs(\d+)\.tsv$", os.path.basename(path))
        if m and m.group(1) in models:
            runs.append((models.index(m.group(1)), -int(m.group(2)), int(m.group(3)), m.group(1), path))
    for _, minus_b, chi, model, path in sorted(runs):
        b = -minus_b
        irs = rows(path)
        ref = full.get((model, b))
        if not ref or not irs:
            continue
        by_idx = {r["idx"]: r for r in ref}
        ref = [by_idx[r["idx"]] for r in irs if r["idx"] in by_idx]
        if len(ref) != len(irs):
            continue
        # certification from scratch with the same number of samples as IRS replays
        scratch_path = os.path.join(out, f"{model}-w{b}a{b}-n{chi}.tsv")
        scratch = rows(scratch_path) if os.path.exists(scratch_path) else []
        if len(scratch) != len(irs):
            scratch = []
        inc = [i for i, r in enumerate(irs) if r["path"] == "incremental"]
        # how often f and fᵖ disagree on the same noisy copies, where IRS uses it (ζ bounds it)
        rate = (
            f"{sum(int(irs[i]['disagreements']) for i in inc) / sum(int(irs[i]['n_chi']) for i in inc):.2%}"
            if inc
            else "–"
        )
        # Work is counted in forward passes, not seconds: the IRS runs shared the machine with
        # other jobs, so their wall times are not comparable with the full and scratch runs.
        p_full, p_irs = passes_full(ref), passes_irs(irs)
        ratio = f"÷{p_full / p_irs:.1f}, " + (f"×{p_irs / passes_full(scratch):.2f}" if scratch else "–")
        passes = (
            f"{passes_full(ref):,.0f}, {passes_irs(irs):,.0f}, "
            + (f"{passes_full(scratch):,.0f}" if scratch else "–")
        )
        s_acr = f"{acr(scratch):.3f}" if scratch else "–"
        s_diff = f"{acr(irs) - acr(scratch):+.3f}" if scratch else "–"
        print(
            f"| {model} | w{b}a{b} | {chi} | {acr(ref):.3f} | {acr(irs):.3f} | {s_acr} | {s_diff} | "
            f"{passes} | {ratio} | {len(inc)}/{len(irs)} | {rate} |"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/certify")
