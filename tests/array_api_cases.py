"""Run the closed-form aligners on arrays of other namespaces; print the results as JSON.

Run by ``test_array_api.py`` in a fresh process, because scikit-learn's Array
API dispatch needs ``SCIPY_ARRAY_API=1`` set before scipy is first imported.
"""

import json
import sys
import warnings

import numpy as np
import sklearn
from sklearn.base import clone

from sklearn_modgap import SSP, C3, CentroidShift, MomentMatch, RandomTargetReplacement, ReAlign

ALIGNERS = {
    "CentroidShift": CentroidShift(alpha=0.5),
    "ReAlign": ReAlign(),
    "C3": C3(random_state=0),
    "C3-center": C3(shift="center", noise_std=0.0),
    "MomentMatch": MomentMatch(),
    "SSP": SSP(eps=0.05),
    "RandomTargetReplacement": RandomTargetReplacement(random_state=0),
}


def namespaces():
    import array_api_strict

    found = {"array_api_strict": (array_api_strict.asarray, lambda z: np.asarray(z))}
    try:
        import torch

        found["torch"] = (lambda a: torch.asarray(a.copy()), lambda z: z.cpu().numpy())
        if torch.cuda.is_available():
            found["torch-cuda"] = (lambda a: torch.asarray(a.copy(), device="cuda"), lambda z: z.cpu().numpy())
    except ImportError:
        pass
    return found


def error_of(call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the message is the result
        return f"{type(exc).__name__}: {exc}"
    return None


def main(path):
    warnings.simplefilter("ignore")
    pairs = np.load(path)
    target, source = pairs[0][:300], pairs[1][:300]
    results = []
    for dtype in (np.float64, np.float32):
        S, T = source.astype(dtype), target.astype(dtype)
        for name, aligner in ALIGNERS.items():
            ref = clone(aligner).fit(S, y=T)
            expected, expected_target = ref.transform(S), ref.transform_target(T)
            domain = np.r_[np.zeros(len(S[:50])), -np.ones(len(T[:40]))]
            expected_stacked = np.vstack([ref.transform(S[:50]), ref.transform_target(T[:40])])
            for space, (convert, back) in namespaces().items():
                with sklearn.config_context(array_api_dispatch=True):
                    fitted = clone(aligner).fit(convert(S), y=convert(T))
                    out = fitted.transform(convert(S))
                    out_target = fitted.transform_target(convert(T))
                    stacked = fitted.transform(convert(np.vstack([S[:50], T[:40]])), sample_domain=domain)
                    streamed = clone(aligner)
                    for rows in (slice(0, 120), slice(120, 300)):
                        streamed.partial_fit(convert(S[rows]), y=convert(T[rows]))
                    streamed_out = streamed.transform(convert(S))
                    bad = S.copy()
                    bad[7, 3] = np.nan
                    zero = S.copy()
                    zero[5] = 0
                    results.append({
                        "aligner": name, "namespace": space, "dtype": np.dtype(dtype).name,
                        "out_type": f"{type(out).__module__}.{type(out).__name__}",
                        "out_dtype": str(out.dtype),
                        "transform": float(np.abs(back(out) - expected).max()),
                        "transform_target": float(np.abs(back(out_target) - expected_target).max()),
                        "stacked": float(np.abs(back(stacked) - expected_stacked).max()),
                        "partial_fit": float(np.abs(back(streamed_out) - expected).max()),
                        "tag": bool(sklearn.utils.get_tags(fitted).array_api_support),
                        "nan_fit": error_of(lambda: clone(aligner).fit(convert(bad), y=convert(T))),
                        "nan_transform": error_of(lambda: fitted.transform(convert(bad))),
                        "zero_transform": error_of(lambda: fitted.transform(convert(zero))),
                        "numpy_zero_transform": error_of(lambda: ref.transform(zero)),
                    })
    from sklearn_modgap import AnisoAlign

    import array_api_strict

    with sklearn.config_context(array_api_dispatch=True):
        refused = error_of(lambda: AnisoAlign().fit(array_api_strict.asarray(source), y=array_api_strict.asarray(target)))
    print(json.dumps({"results": results, "aniso": refused}))


if __name__ == "__main__":
    main(sys.argv[1])
