#!/usr/bin/env python3
"""The fixed policy set of scripts/results-supernet.sh: uniform widths, then seven random mixed
policies per average width 3, 4 and 6 (each layer's width drawn uniformly from the supernet's
widths 8, 6, 4, 2 with a seeded generator, kept when the mean is within 0.25 of the target). One line per policy:
label<TAB>widths (forward order, weights and activations alike)."""
import random

LAYERS, PER_TARGET = 8, 7
rng = random.Random(2026)
WIDTHS = (8, 6, 4, 2)
for b in WIDTHS:
    print(f"uniform-w{b}\t" + ",".join([str(b)] * LAYERS))
for target in (3, 4, 6):
    kept = 0
    while kept < PER_TARGET:
        w = [rng.choice(WIDTHS) for _ in range(LAYERS)]
        if abs(sum(w) / LAYERS - target) <= 0.25 and len(set(w)) > 1:
            kept += 1
            print(f"random-avg{target}-{kept}\t" + ",".join(map(str, w)))
