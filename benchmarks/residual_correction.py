"""residual_direction_correction on the CLIP features: the alpha sweep, centred and uncentred directions.

The pairs are split in two halves with a fixed seed; the correction is applied
on the held-out half to the raw captions (identity) and to CentroidShift
substitutes fitted on the other half without pairing, and the held-out
Delta_mu, Phi, Psi and mixing from either side are printed.

    python benchmarks/residual_correction.py
    python benchmarks/residual_correction.py --q 4 16
"""

import argparse
import warnings
from pathlib import Path

import numpy as np

from sklearn_modgap import CentroidShift
from sklearn_modgap.aligners import residual_direction_correction
from sklearn_modgap.metrics import (
    centroid_discrepancy,
    instance_consistency,
    modality_mixing,
    relative_geometry_consistency,
)

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mind-the-gap"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="clip")
    parser.add_argument("--q", nargs="+", type=int, default=[8])
    parser.add_argument("--alphas", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0])
    args = parser.parse_args()
    pairs = np.load(DATA_DIR / f"features_{args.set}.npy")
    target, source = pairs[0], pairs[1]
    order = np.random.default_rng(0).permutation(len(target))
    fit, test = order[: len(order) // 2], order[len(order) // 2 :]
    starts = {
        "identity": source[test],
        "CentroidShift": CentroidShift().fit(source[fit], target[fit]).transform(source[test]),
    }
    for start, substitutes in starts.items():
        for q in args.q:
            for centered in (True, False):
                for alpha in args.alphas:
                    corrected = residual_direction_correction(
                        target[test], substitutes, q=q, alpha=alpha, centered=centered
                    )
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        print(
                            f"{start:14s} q={q} centered={centered!s:5s} alpha={alpha:.2f} "
                            f"Delta_mu={centroid_discrepancy(target[test], corrected):.3f} "
                            f"Phi={instance_consistency(source[test], corrected):.3f} "
                            f"Psi={relative_geometry_consistency(source[test], corrected, random_state=0):.3f} "
                            f"M^Z={modality_mixing(target[test], corrected, k=20):.3f} "
                            f"M^X={modality_mixing(target[test], corrected, k=20, direction='target'):.3f}"
                        )


if __name__ == "__main__":
    main()
