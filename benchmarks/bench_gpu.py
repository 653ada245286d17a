"""ReAlign fit + transform on one GPU through the Array API, against the NumPy path on the CPU.

    SCIPY_ARRAY_API=1 python benchmarks/bench_gpu.py [--n-rows 10000000] [--n-features 512]

Generates CLIP-like float32 rows on the device (torch), fits ReAlign on an
unpaired source and target of ``--n-rows`` rows each, and transforms the
source, under ``sklearn.config_context(array_api_dispatch=True)``.  The CPU
baseline is the same job on NumPy copies of the first ``--cpu-rows`` rows,
scaled to ``--n-rows`` (it is linear in the rows).  Prints seconds, rows per
second and the largest difference between the device and host substitutes
of the common rows.  Where no CUDA device is present it says so and exits.
"""

import argparse
import os
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rows", type=int, default=10_000_000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--cpu-rows", type=int, default=1_000_000)
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    args = parser.parse_args()
    if os.environ.get("SCIPY_ARRAY_API") != "1":
        raise SystemExit("set SCIPY_ARRAY_API=1 before running (scikit-learn's Array API dispatch needs it)")
    import sklearn
    import torch

    from sklearn_modgap import ReAlign

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (the CPU path is benchmarks/bench_closed_form.py)")
        return
    device = torch.device("cuda")
    dtype = getattr(torch, args.dtype)
    generator = torch.Generator(device=device).manual_seed(0)
    gap = torch.randn(args.n_features, device=device, generator=generator)
    gap /= gap.norm()

    def rows(offset):
        out = torch.empty((args.n_rows, args.n_features), device=device, dtype=dtype)
        step = 1_000_000
        for start in range(0, args.n_rows, step):
            block = torch.randn((min(step, args.n_rows - start), args.n_features), device=device, generator=generator)
            block = block * 0.03 + offset * gap
            out[start : start + len(block)] = (block / block.norm(dim=1, keepdim=True)).to(dtype)
        return out

    source, target = rows(0.4), rows(-0.4)
    torch.cuda.synchronize()
    with sklearn.config_context(array_api_dispatch=True):
        start = time.perf_counter()
        aligner = ReAlign().fit(source, y=target)
        torch.cuda.synchronize()
        fitted = time.perf_counter()
        out = aligner.transform(source)
        torch.cuda.synchronize()
        done = time.perf_counter()
    gpu_fit, gpu_transform = fitted - start, done - fitted
    print(f"GPU ({torch.cuda.get_device_name()}), {args.n_rows:,} + {args.n_rows:,} x {args.n_features} "
          f"{args.dtype} (computed as {out.dtype}): fit {gpu_fit:.2f} s, transform {gpu_transform:.2f} s")

    n_cpu = min(args.cpu_rows, args.n_rows)
    host_source = source[:n_cpu].float().cpu().numpy()
    host_target = target[:n_cpu].float().cpu().numpy()
    start = time.perf_counter()
    host = ReAlign().fit(host_source, y=host_target)
    fitted = time.perf_counter()
    host_out = host.transform(host_source)
    done = time.perf_counter()
    scale = args.n_rows / n_cpu
    cpu_fit, cpu_transform = (fitted - start) * scale, (done - fitted) * scale
    print(f"CPU (NumPy, {os.cpu_count()} CPUs), {n_cpu:,} rows each scaled to {args.n_rows:,}: "
          f"fit {cpu_fit:.2f} s, transform {cpu_transform:.2f} s")
    print(f"speed-up: fit {cpu_fit / gpu_fit:.1f}x, transform {cpu_transform / gpu_transform:.1f}x, "
          f"total {(cpu_fit + cpu_transform) / (gpu_fit + gpu_transform):.1f}x")
    # The host fit saw the first rows only; compare the maps on common rows with one fit.
    with sklearn.config_context(array_api_dispatch=True):
        device_out = host.transform(torch.asarray(host_source[:100_000], device=device))
    difference = np.abs(device_out.cpu().numpy() - host_out[:100_000]).max()
    print(f"largest difference of device and host substitutes (one fit, 100,000 rows): {difference:.2e}")


if __name__ == "__main__":
    main()
