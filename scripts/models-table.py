#!/usr/bin/env python3
"""Tables for docs/results.md (issue "Training as the paper does it", items 3 and 1), read from
the model files' own metadata (full-test-set accuracy measured by `bitsmooth train` right after
training, and the logged scale-gradient statistics):

1. per shipped model, clean accuracy at the uniform widths of: the models shipped before this
   change (read from git, commit given by --before), the multi-bit models retrained with the
   corrected step (models/multibit), and the HASB supernets (public/models);
2. per multi-bit model, how the weight-scale gradients of each width compare with the 8-bit
   one (mean over the epoch's batches): norm ratio, cosine, share of opposite signs.

Usage: python3 scripts/models-table.py [--before 6cac99c]"""
import argparse
import json
import struct
import subprocess

NAMES = [f"{d}-sigma{s}" for d in ("mnist", "fashion") for s in ("0.25", "0.5", "1.0")]
WIDTHS = (8, 6, 4, 2)


def meta(data: bytes) -> dict:
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["bitsmooth"])


def read(path: str) -> dict:
    with open(path, "rb") as f:
        return meta(f.read())


def from_git(rev: str, path: str) -> dict:
    return meta(subprocess.run(["git", "show", f"{rev}:{path}"], check=True, capture_output=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="6cac99c", help="commit of the models shipped before")
    args = ap.parse_args()
    print("| model | width | before (4 updates per batch) | multi-bit, one update per batch | supernet (HASB) | supernet − before |")
    print("|---|---|---|---|---|---|")
    for name in NAMES:
        before = from_git(args.before, f"public/models/{name}.safetensors")["accuracy"]
        multibit = read(f"models/multibit/{name}.safetensors")["accuracy"]
        supernet = read(f"public/models/{name}.safetensors")["accuracy"]
        for b in WIDTHS:
            k = f"w{b}a{b}"
            d = 100 * (supernet[k] - before[k])
            print(f"| {name} | {k} | {100 * before[k]:.2f} | {100 * multibit[k]:.2f} | {100 * supernet[k]:.2f} | {d:+.2f} |")
    print()
    print("| model | width | ‖g_b‖ / ‖g_8‖ | cos(g_b, g_8) | opposite signs |")
    print("|---|---|---|---|---|")
    for name in NAMES:
        m = read(f"models/multibit/{name}.safetensors")
        stats = m["training"]["scale_gradients"][-1]  # the last (only) epoch
        for b, s in zip(m["bits"], stats):
            if b == 8:
                continue
            print(f"| {name} | {b} | {s['norm_ratio']:.2f} | {s['cosine']:.2f} | {100 * s['sign_disagreement']:.1f} % |")


if __name__ == "__main__":
    main()
