"""Time ContrastiveAdapter training on 50,000 pairs x 512 features on CPU.

    python benchmarks/bench_adapter.py [--threads N] [--objective tpc-cma]

Prints the wall-clock time of ``fit`` (10 epochs, batch 256) and of one
``transform`` pass, with the machine's load average so contended runs can
be told apart.
"""

import argparse
import os
import time

import numpy as np
import torch

from sklearn_modgap import ContrastiveAdapter
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.nets import AdapterNet


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-pairs", type=int, default=50_000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--objective", default="tpc-cma")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    target, source = make_modality_gap(
        n_pairs=args.n_pairs, n_features=args.n_features, random_state=0
    )
    adapter = ContrastiveAdapter(
        args.objective,
        alpha_target=0.1,
        net=AdapterNet(max_epochs=args.epochs, batch_size=256),
        device="cpu",
        random_state=0,
    )
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    adapter.fit(source, y=target)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    adapter.transform(source)
    transform_seconds = time.perf_counter() - start
    print(
        f"objective={args.objective} pairs={args.n_pairs} d={args.n_features} "
        f"epochs={args.epochs} torch_threads={torch.get_num_threads()} cpus={os.cpu_count()}"
    )
    print(f"fit: {fit_seconds:.1f} s   transform: {transform_seconds:.2f} s")
    print(f"load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    print(f"final epoch loss: {adapter.loss_curve_[-1]:.4f}")


if __name__ == "__main__":
    main()
