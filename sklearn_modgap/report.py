"""Tables of the modality gap and of how aligners close it, as pandas objects."""

from __future__ import annotations

import re
import sys
import time
import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import metrics as _metrics
from .metrics._table import DEFAULT_SYMBOLS, KNN_METHODS, METRICS
from ._validation import check_embeddings, check_same_features, checked_row_norms, normalize_rows
from .metrics._checks import DuplicateRowsWarning, validate_params, warn_duplicate_rows


# The columns of gap_report, keyed by symbol: the package's one metric table.
GAP_REPORT_COLUMNS = {metric.symbol: metric for metric in METRICS}

DEFAULT_GAP_REPORT_METRICS = DEFAULT_SYMBOLS


@validate_params(
    {
        "target": ["array-like"],
        "source": ["array-like"],
        "q": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    },
    prefer_skip_nested_validation=True,
)
def diagnose(target: ArrayLike, source: ArrayLike, q: int | str = "auto") -> pd.Series:
    """The geometry of a modality gap, as one pandas Series.

    The diagnostics of the AnisoAlign paper (Sec. 3 and App. A) with the
    true-pair cosine of "Closing the Modality Gap", on L2-normalised rows and
    population covariances.  Rows are pairs.

    Parameters
    ----------
    target : array-like of shape (n_pairs, n_features)
        Target-modality rows ``X`` (e.g. images).
    source : array-like of shape (n_pairs, n_features)
        Source-modality rows ``Y`` (e.g. text), row ``i`` paired with
        ``target[i]``.
    q : int or "auto", default="auto"
        Dimension of the principal subspaces compared by ``O_q``; ``"auto"``
        is ``min(128, n_features, n_pairs - 1)``, what the data supports.  An
        int is at most ``n_features`` and fewer than ``n_pairs``.

    Returns
    -------
    diagnostics : pandas.Series
        Indexed by

        - ``C_lambda``: correlation of the log covariance spectra;
        - ``O_q`` and ``q_over_d``: principal-subspace overlap and its random
          baseline ``q / d``;
        - ``G_mu``: centroid gap ``||mu_x - mu_y||``;
        - ``G_Sigma``: relative covariance discrepancy;
        - ``D`` and ``D_tilde``: mean paired distance, raw and mean-corrected;
        - ``residual_ratio``: ``D_tilde / D``, and ``residual_energy_ratio``,
          its energy form ``tr(S_r) / (G_mu^2 + tr(S_r))``;
        - ``A_r``: residual anisotropy ``lambda_max(S_r) / (tr(S_r) / d)``;
        - ``d_eff`` and ``d_eff_over_d``: participation ratio of ``S_r``;
        - ``cos_tp``: mean true-pair cosine;
        - ``gap_angle``: angle between the centroids, in degrees.

    See Also
    --------
    gap_report : How aligners change these quantities on held-out pairs.
    sklearn_modgap.plotting.plot_spectra : Figures of the same geometry.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 and App. A (``C_lambda``, ``O_q``, ``G_mu``,
       ``G_Sigma``, ``D``, ``D_tilde``, ``A_r``, ``d_eff``).
    .. [2] "Closing the Modality Gap" (true-pair cosine).
    .. [3] "Decipher the Modality Gap" (gap angle).

    Examples
    --------
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.report import diagnose
    >>> target, source = make_modality_gap(n_pairs=200, n_features=32, random_state=0)
    >>> table = diagnose(target, source, q=8)
    >>> table.index[:4].tolist()
    ['C_lambda', 'O_q', 'q_over_d', 'G_mu']
    >>> float(table["q_over_d"])
    0.25
    """
    return pd.Series(
        dict(item for step in _diagnose_steps(target, source, q) for item in step()),
        name="diagnostics",
        dtype=float,
    )


def _diagnose_steps(target, source, q):
    """The computations of :func:`diagnose`, each a callable returning ``(name, value)`` pairs.

    Kept as separate steps so that a caller can show progress between them.
    """
    m = _metrics
    return [
        lambda: [("C_lambda", m.spectral_correlation(target, source))],
        lambda: zip(("O_q", "q_over_d"), m.subspace_overlap(target, source, q=q, return_baseline=True)),
        lambda: [("G_mu", m.centroid_displacement(target, source))],
        lambda: [("G_Sigma", m.covariance_discrepancy(target, source))],
        lambda: [("D", m.paired_distance(target, source))],
        lambda: [("D_tilde", m.paired_distance(target, source, centered=True))],
        lambda: [("residual_ratio", m.residual_ratio(target, source))],
        lambda: [("residual_energy_ratio", m.residual_ratio(target, source, form="energy"))],
        lambda: [("A_r", m.residual_anisotropy(target, source))],
        lambda: [("d_eff", m.effective_dimension(target, source))],
        lambda: [("d_eff_over_d", m.effective_dimension(target, source, relative=True))],
        lambda: [("cos_tp", m.true_pair_cosine(target, source))],
        lambda: [("gap_angle", m.gap_angle(target, source))],
    ]


@validate_params(
    {
        "aligners": [dict],
        "source": ["array-like"],
        "target": ["array-like"],
        "test_size": [Interval(Real, 0, 1, closed="neither")],
        "metrics": [list, tuple, None],
        "k": [Interval(Integral, 2, None, closed="left")],
        "max_knn_pairs": [Interval(Integral, 2, None, closed="left"), None],
        "knn": [StrOptions(set(KNN_METHODS))],
        "output_dir": [str, Path, None],
        "progress": ["boolean"],
        "error_score": [StrOptions({"raise"}), Real],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def gap_report(
    aligners: dict[str, Any],
    source: ArrayLike,
    target: ArrayLike,
    *,
    test_size: float = 0.5,
    metrics: Sequence[str] | None = None,
    k: int = 20,
    max_knn_pairs: int | None = 5000,
    knn: str = "exact",
    output_dir: str | Path | None = None,
    progress: bool = False,
    error_score: str | float = "raise",
    random_state: int | np.random.RandomState | None = 0,
) -> pd.DataFrame:
    """Compare aligners on held-out pairs after fitting them without pairing.

    The comparison of the AnisoAlign paper (Fig. 6-7): the pairs are split
    once; every aligner is cloned and fitted on the source rows of the
    training split with the target rows of the same split in a random order
    (so no pairing can be used), then its substitutes ``Z = T(Y)`` of the
    held-out source rows are compared with the held-out target rows (passed
    through ``transform_target``) and with the held-out source rows.

    Parameters
    ----------
    aligners : dict of str to estimator
        Name and unfitted aligner; each needs ``fit(X_source, y=X_target)``
        and ``transform``, and ``transform_target`` where the target side is
        mapped too.
    source : array-like of shape (n_pairs, n_features)
        Source-modality rows ``Y``.
    target : array-like of shape (n_pairs, n_features)
        Target-modality rows ``X``, row ``i`` paired with ``source[i]``.
    test_size : float, default=0.5
        Fraction of the pairs held out for the evaluation.
    metrics : list of str, default=None
        Columns to compute, in order, from ``GAP_REPORT_COLUMNS``.  The
        default set (``None``, or the name ``"default"`` inside the list) is
        ``Delta_mu`` (centroid discrepancy), ``cos_tp`` (cosine of each
        substitute to its true target), ``Phi``, ``Psi``, ``Omega_k``,
        ``M_k^Z``, ``M_k^X`` and ``alignment_balance``; more are ``A_r``
        (``A_r(T)``, anisotropy of ``x_i - z_i``), ``A_r_centered``, ``M_k``
        (mean of ``M_k^Z`` and ``M_k^X``), ``D`` (mean paired distance), ``raw_gap``,
        ``distribution_gap``, ``gap_angle``, ``recall@1``, ``recall@5``,
        ``recall@10`` (cross-modal retrieval, mean of both directions) and
        ``transfer`` (:func:`~sklearn_modgap.metrics.cross_modal_transfer`).
    k : int, default=20
        Neighbourhood size of the k-NN measures.
    max_knn_pairs : int or None, default=5000
        The k-NN measures (``Omega_k``, ``M_k``, ``alignment_balance``,
        ``recall@k``, ``transfer``) are computed on a seeded sample of at
        most this many held-out pairs, which bounds their quadratic cost
        (retrieval scores depend on this gallery size); the other columns use
        all held-out pairs.  ``None`` uses all of them.
    knn : {"exact", "approximate"}, default="exact"
        Back-end of the neighbourhoods of ``Omega_k``, ``M_k``,
        ``alignment_balance`` and ``recall@k``: the approximate one (see
        the metric glossary) measured 10.8 to 13.4 times faster than exact
        on 20,000 + 20,000 rows (d=512, k=20, 2 otherwise idle cores,
        ``benchmarks/bench_knn.py``; less on shared cores) and makes ``max_knn_pairs=None`` affordable on large sets.
    output_dir : str or path, default=None
        When given, writes ``<name>.npy`` (the substitutes of the held-out
        source rows, in held-out order), ``test_index.npy`` (the held-out row
        numbers, increasing) and ``report.csv`` there.
    progress : bool, default=False
        Show a progress bar on standard error.
    error_score : "raise" or float, default="raise"
        What an aligner that fails to fit or transform, or a metric that
        fails, gives: ``"raise"`` re-raises the error; a number (e.g.
        ``np.nan``) fills that row or cell with it and emits a
        :class:`~sklearn.exceptions.FitFailedWarning` naming the aligner, so
        that one failing method does not stop the comparison (as
        ``error_score`` of :func:`~sklearn.model_selection.cross_validate`).
    random_state : int, RandomState instance or None, default=0
        Seed of the split, of the shuffling of the training targets, of the
        k-NN sample and of ``Psi``'s pair sample.

    Returns
    -------
    report : pandas.DataFrame
        One row per aligner (index ``aligner``), one column per metric, plus
        ``fit_seconds`` and ``transform_seconds``.

    See Also
    --------
    diagnose : The geometry of the gap before any alignment.
    sklearn_modgap.plotting.plot_tradeoff : Draws ``Psi`` against ``M_k``.

    References
    ----------
    .. [1] AnisoAlign, Sec. 5 and Fig. 6-7 (the preservation-mixing
       comparison of aligners).

    Examples
    --------
    >>> from sklearn_modgap import CentroidShift
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.report import gap_report
    >>> target, source = make_modality_gap(n_pairs=200, n_features=32, random_state=0)
    >>> report = gap_report({"identity": CentroidShift(alpha=0.0),
    ...                      "shift": CentroidShift()}, source, target,
    ...                     metrics=["Delta_mu", "Phi"], k=5)
    >>> report.index.tolist(), report.columns.tolist()[:2]
    (['identity', 'shift'], ['Delta_mu', 'Phi'])
    >>> bool(report.loc["shift", "Delta_mu"] < report.loc["identity", "Delta_mu"])
    True
    """
    names = _check_metric_names(metrics)
    if not aligners:
        raise ValueError("aligners is empty: pass a dict of name -> aligner.")
    source = check_embeddings(source, name="source")
    target = check_embeddings(target, name="target")
    check_same_features(source.shape[1], target, name="target")
    # Refused here, by their row in the input: after the split an aligner would
    # see them at another index, and every measure normalises rows.
    for rows, name in ((source, "source"), (target, "target")):
        checked_row_norms(rows, name=name, hint="remove them, they have no direction")
    if source.shape[0] != target.shape[0]:
        raise ValueError(
            f"source has {source.shape[0]} rows but target has {target.shape[0]}; "
            "gap_report evaluates on pairs, so rows must be paired."
        )
    n_test = int(np.ceil(test_size * source.shape[0]))
    if min(n_test, source.shape[0] - n_test) < 2:
        raise ValueError(
            f"{source.shape[0]} pairs with test_size={test_size} leave fewer than 2 "
            "rows in a split; pass more pairs or another test_size."
        )
    rng = check_random_state(random_state)
    train_index, test_index = train_test_split(
        np.arange(source.shape[0]), test_size=n_test, random_state=rng
    )
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    # The training targets in a random order: nothing in the fit can use pairing.
    source_train, target_train = source[train_index], target[rng.permutation(train_index)]
    source_test, target_test = source[test_index], target[test_index]
    knn_rows = np.arange(len(test_index))
    if max_knn_pairs is not None and len(knn_rows) > max_knn_pairs:
        knn_rows = np.sort(rng.choice(len(test_index), size=max_knn_pairs, replace=False))
    seed = int(rng.randint(2**31 - 1))

    if output_dir is not None:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        np.save(output_dir / "test_index.npy", test_index)

    if any(GAP_REPORT_COLUMNS[metric].needs_neighbors for metric in names):
        # Once for the inputs here, instead of once per aligner and measure below.
        for rows_of, modality in ((source_test, "source"), (target_test, "target")):
            warn_duplicate_rows(
                rows_of[knn_rows], name=f"The held-out {modality}", k=k, stacklevel=4
            )
    rows = {}
    steps = 2 + len(names)
    with _progress_bar(len(aligners) * steps, progress) as bar, warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateRowsWarning)
        for name, aligner in aligners.items():
            row = dict.fromkeys([*names, "fit_seconds", "transform_seconds"], np.nan)
            rows[name] = row
            first_step = bar.n
            try:
                bar.set_description(f"{name}: fit")
                fitted = clone(aligner)
                start = time.perf_counter()
                fitted.fit(source_train, y=target_train)
                row["fit_seconds"] = time.perf_counter() - start
                bar.update()

                bar.set_description(f"{name}: transform")
                start = time.perf_counter()
                substitutes = np.asarray(fitted.transform(source_test))
                targets = (
                    np.asarray(fitted.transform_target(target_test))
                    if hasattr(fitted, "transform_target")
                    else normalize_rows(target_test, name="target")
                )
                row["transform_seconds"] = time.perf_counter() - start
                bar.update()
            except Exception as exc:
                _handle_failure(error_score, exc, f"{name} failed; its row is {error_score}")
                row.update(dict.fromkeys(names, float(error_score)))
                bar.update(first_step + steps - bar.n)
                continue
            if output_dir is not None:
                np.save(output_dir / f"{_file_name(name)}.npy", substitutes)

            for metric in names:
                bar.set_description(f"{name}: {metric}")
                column = GAP_REPORT_COLUMNS[metric]
                picked = knn_rows if column.needs_neighbors else slice(None)
                try:
                    row[metric] = float(
                        column.compute(
                            targets[picked], source_test[picked], substitutes[picked], k, seed,
                            knn,
                        )
                    )
                except Exception as exc:
                    _handle_failure(
                        error_score, exc, f"{metric} of {name} failed; it is {error_score}"
                    )
                    row[metric] = float(error_score)
                bar.update()

    report = pd.DataFrame.from_dict(rows, orient="index")
    report.index.name = "aligner"
    if output_dir is not None:
        report.to_csv(output_dir / "report.csv")
    return report


def _handle_failure(error_score, exc, what):
    """Re-raise, or warn in one line and let the caller fill in ``error_score``."""
    if isinstance(error_score, str):
        raise exc
    reason = " ".join(str(exc).split()) or type(exc).__name__
    warnings.warn(f"{what}: {type(exc).__name__}: {reason}", FitFailedWarning, stacklevel=3)


def _check_metric_names(names):
    if names is None:
        return list(DEFAULT_GAP_REPORT_METRICS)
    expanded = []
    for name in names:
        expanded.extend(DEFAULT_GAP_REPORT_METRICS if name == "default" else [name])
    names = expanded
    unknown = [name for name in names if name not in GAP_REPORT_COLUMNS]
    if unknown:
        raise ValueError(
            f"unknown metric(s) {unknown}; choose from {['default', *GAP_REPORT_COLUMNS]}."
        )
    if not names:
        raise ValueError("metrics is empty: name at least one column.")
    return list(dict.fromkeys(names))


def _file_name(name):
    """A file-system-safe version of an aligner's name."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", str(name)).strip("._") or "aligner"


def _progress_bar(total, enabled):
    from tqdm.auto import tqdm

    # disable=None: no bar when standard error is not a terminal, where each
    # refresh would be appended to one ever-growing line.
    return tqdm(total=total, disable=None if enabled else True, file=sys.stderr, leave=False)


def cv_report(search: Any) -> pd.DataFrame:
    """Tidy table of a fitted hyper-parameter search, with ``neg_`` signs undone.

    Scorers name lower-is-better metrics ``neg_<name>`` and return their
    negation so that searches can maximise every score.  This table gives
    them back their natural sign and name: ``neg_centroid_discrepancy``
    becomes ``centroid_discrepancy`` with positive values.

    Parameters
    ----------
    search : GridSearchCV or RandomizedSearchCV
        A fitted search (any estimator with ``cv_results_``).

    Returns
    -------
    report : pandas.DataFrame
        One row per candidate, sorted by the rank of the refit metric (the
        first metric when ``refit`` names none): one column per
        hyper-parameter (without the ``param_`` prefix), then for each
        metric ``<name>`` (mean over folds), ``<name>_std`` and
        ``<name>_rank``, with ``train_<name>`` where train scores were
        kept, then ``fit_seconds`` and ``score_seconds`` (means over folds).

    See Also
    --------
    sklearn_modgap.metrics.GapScorer : Scores every candidate by several metrics.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_modgap import CentroidShift
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.report import cv_report
    >>> target, source = make_modality_gap(n_pairs=120, n_features=16, random_state=0)
    >>> def neg_gap(estimator, X, y):
    ...     return -float(((estimator.transform(X) - y).mean(axis=0) ** 2).sum())
    >>> search = GridSearchCV(CentroidShift(), {"alpha": [0.0, 1.0]}, cv=2,
    ...                       scoring={"neg_gap": neg_gap}, refit="neg_gap")
    >>> table = cv_report(search.fit(source, target))
    >>> table.columns.tolist()[:3]
    ['alpha', 'gap', 'gap_std']
    >>> table["alpha"].tolist(), bool((table["gap"] >= 0).all())
    ([1.0, 0.0], True)
    """
    check_is_fitted(search, "cv_results_")
    results = pd.DataFrame(search.cv_results_)
    names = _search_metric_names(search, results)
    columns = {}
    for column in results.columns:
        if column.startswith("param_"):
            columns[column[len("param_"):]] = results[column].infer_objects()
    for stored, metric in names.items():
        sign = -1.0 if metric.startswith("neg_") else 1.0
        natural = metric[len("neg_"):] if metric.startswith("neg_") else metric
        columns[natural] = sign * results[f"mean_test_{stored}"]
        columns[f"{natural}_std"] = results[f"std_test_{stored}"]
        columns[f"{natural}_rank"] = results[f"rank_test_{stored}"]
        if f"mean_train_{stored}" in results:
            columns[f"train_{natural}"] = sign * results[f"mean_train_{stored}"]
    columns["fit_seconds"] = results["mean_fit_time"]
    columns["score_seconds"] = results["mean_score_time"]
    report = pd.DataFrame(columns)
    refit = search.refit if isinstance(search.refit, str) and search.refit in names else None
    ranking = names[refit] if refit is not None else next(iter(names.values()))
    natural = ranking[len("neg_"):] if ranking.startswith("neg_") else ranking
    return report.sort_values(f"{natural}_rank", kind="stable").reset_index(drop=True)


def _search_metric_names(search, results):
    """Map the names under which ``cv_results_`` stores scores to the metric names.

    A multi-metric search stores each metric under its own name.  A
    single-metric search stores ``score``; its real name is the scoring
    string, or the scorer's single metric name when it has one.
    """
    stored = [c[len("mean_test_"):] for c in results.columns if c.startswith("mean_test_")]
    if stored != ["score"]:
        return {name: name for name in stored}
    scoring = search.scoring
    if isinstance(scoring, str):
        return {"score": scoring}
    metric_names = getattr(scoring, "metric_names_", None) or getattr(scoring, "metrics", None)
    if isinstance(metric_names, str):
        return {"score": metric_names}
    if isinstance(metric_names, (list, tuple)) and len(metric_names) == 1:
        return {"score": str(metric_names[0])}
    return {"score": "score"}
