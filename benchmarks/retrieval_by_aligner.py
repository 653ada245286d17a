"""Text-to-image retrieval with substitutes, for every aligner, on the shared real sets.

Each set of ``../shared/data/mind-the-gap`` is split in half at random, once
per seed (default 0 to 4): every aligner is fitted on the texts (source) and images (target) of one
half, then the other half's texts are mapped to substitutes and its images
through ``transform_target``.  Text-to-image ``R@k`` is the fraction of
held-out substitutes whose own image is among their ``k`` nearest held-out
images (cosine; ``retrieval_recall``'s ``substitute_to_target_recall@k``).
Beside it the mixing ``M_k^Z`` (``modality_mixing``, k=20) and the
``alignment_balance`` the guide uses, each as mean and standard deviation over
the seeds; chance ``R@1`` is ``1 / n_held_out``.  On VideoCLIP and CLASP the
held-out halves have 50 rows, so one query is 0.02 of R@1.

    python benchmarks/retrieval_by_aligner.py
    python benchmarks/retrieval_by_aligner.py --sets clip convirt --no-aniso --seeds 0
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from sklearn_modgap import (
    C3,
    SSP,
    AnisoAlign,
    CentroidShift,
    MomentMatch,
    RandomTargetReplacement,
    ReAlign,
)
from sklearn_modgap.metrics import alignment_balance, modality_mixing, retrieval_recall

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mind-the-gap"
SETS = ("clip", "convirt", "videoclip", "clasp")


def aligners(with_aniso):
    """Name -> unfitted aligner (None is the identity)."""
    table = {
        "identity": None,
        "CentroidShift": CentroidShift(),
        "C3 (default noise)": C3(random_state=0),
        "C3 (noise auto)": C3(noise_std="auto", random_state=0),
        "ReAlign": ReAlign(),
        "MomentMatch": MomentMatch(),
        "SSP (0.999, 0.01)": SSP(variance=0.999, eps=1e-2),
        "RandomTargetReplacement": RandomTargetReplacement(random_state=0),
    }
    if with_aniso:
        table["AnisoAlign"] = AnisoAlign(random_state=0)
    return table


def load(name):
    pairs = np.load(DATA / f"features_{name}.npy").astype(np.float64)
    images, texts = pairs[0], pairs[1]
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    return images, texts


def split(n_rows, seed=0):
    order = np.random.default_rng(seed).permutation(n_rows)
    return order[: n_rows // 2], order[n_rows // 2 :]


def evaluate(aligner, images, texts, fit_rows, test_rows, k=20):
    """Held-out R@1, R@5, M_k^Z and alignment balance of one aligner (None: identity)."""
    held_images, held_texts = images[test_rows], texts[test_rows]
    if aligner is None:
        aligned, substitutes = held_images, held_texts
    else:
        aligner.fit(texts[fit_rows], y=images[fit_rows])
        substitutes = aligner.transform(held_texts)
        aligned = aligner.transform_target(held_images)
    recalls = retrieval_recall(aligned, substitutes, k=(1, 5))
    return {
        "R@1": recalls["substitute_to_target_recall@1"],
        "R@5": recalls["substitute_to_target_recall@5"],
        "M_k^Z": modality_mixing(aligned, substitutes, k=k),
        "balance": alignment_balance(aligned, held_texts, substitutes, k=k),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--no-aniso", action="store_true", help="skip AnisoAlign (the slow one)")
    args = parser.parse_args(argv)
    # RandomTargetReplacement's substitutes are target rows drawn with
    # replacement, so they repeat by construction; the warning is expected.
    warnings.filterwarnings("ignore", message="substitutes has .* rows that repeat")

    metrics = ("R@1", "R@5", "M_k^Z", "balance")
    header = f"{'set':10s} {'aligner':24s} " + " ".join(f"{m:>13s}" for m in metrics) + f" {'fit s':>6s}"
    print(f"held-out text-to-image retrieval; mean ± sd over seeds {args.seeds}")
    print(header)
    print("-" * len(header))
    for name in args.sets:
        images, texts = load(name)
        for label in aligners(not args.no_aniso):
            rows, seconds, failure = [], [], None
            for seed in args.seeds:
                aligner = aligners(not args.no_aniso)[label]
                fit_rows, test_rows = split(len(images), seed)
                start = time.perf_counter()
                try:
                    rows.append(evaluate(aligner, images, texts, fit_rows, test_rows))
                except ValueError as error:
                    if not isinstance(aligner, SSP):
                        raise
                    failure = str(error)
                    break
                seconds.append(time.perf_counter() - start)
            if failure is not None:
                print(f"{name:10s} {label:24s} fit fails: {failure[:70]}...")
                continue
            cells = []
            for metric in metrics:
                values = np.array([row[metric] for row in rows])
                cells.append(f"{values.mean():6.3f} ± {values.std():.3f}")
            print(f"{name:10s} {label:24s} " + " ".join(cells) + f" {np.mean(seconds):6.1f}")
        print(f"{name:10s} {'(chance R@1)':24s} {1 / (len(images) - len(images) // 2):6.3f}")

if __name__ == "__main__":
    main()
