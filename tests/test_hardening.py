"""Bad input gives a clear error naming the problem, never a silent NaN or a misleading hint."""

import numpy as np
import pandas as pd
import pytest

from sklearn_modgap import C3, CentroidShift, MomentMatch, ReAlign
from sklearn_modgap.cli import main
from sklearn_modgap.datasets import load_embedding_pairs, make_modality_gap
from sklearn_modgap.metrics import centroid_discrepancy, subspace_overlap
from sklearn_modgap.report import diagnose


@pytest.fixture(scope="module")
def pairs():
    target, source = make_modality_gap(120, 16, random_state=0)
    return target.astype(np.float64), source.astype(np.float64)


@pytest.mark.parametrize("Aligner", [CentroidShift, ReAlign, C3, MomentMatch])
def test_rows_whose_squared_norm_overflows_are_refused_without_normalize(pairs, Aligner):
    target, source = pairs
    with pytest.raises(ValueError, match="squared norm overflows float64"):
        Aligner(normalize=False).fit(source * 1e160, target * 1e160).transform(source * 1e160)


def _every_aligner():
    from sklearn_modgap import SSP, AnisoAlign, ContrastiveAdapter, RandomTargetReplacement
    from sklearn_modgap.aniso import PhasePrior, Refiner
    from sklearn_modgap.nets import AdapterNet

    tiny = dict(module__hidden_units=8, max_epochs=2, batch_size=64)
    return {
        "CentroidShift": CentroidShift(),
        "C3": C3(random_state=0),
        "ReAlign": ReAlign(),
        "MomentMatch": MomentMatch(),
        "RandomTargetReplacement": RandomTargetReplacement(random_state=0),
        "SSP": SSP(),
        "AnisoAlign": AnisoAlign(rank=4, random_state=0, device="cpu",
                                 prior=PhasePrior(**tiny), refiner=Refiner(**tiny)),
        "ContrastiveAdapter": ContrastiveAdapter(
            net=AdapterNet(max_epochs=2, batch_size=64), random_state=0, device="cpu"),
    }


@pytest.mark.parametrize("name", list(_every_aligner()))
def test_row_scale_far_from_one_changes_no_aligner_output(pairs, name):
    # Squares of rows scaled by 1e-160 underflow (subnormal) and those of rows
    # scaled by 1e160 overflow float64; float32 squares underflow below 1e-19.
    target, source = pairs
    aligner = _every_aligner()[name]
    reference = aligner.fit(source, target).transform(source)
    for scale in (1e-150, 1e-160, 1e-200, 1e-300, 1e150, 1e160, 1e200):
        scaled = aligner.fit(source * scale, target * scale).transform(source * scale)
        np.testing.assert_allclose(scaled, reference, atol=1e-10, err_msg=f"scale {scale}")
    single = aligner.fit(source.astype(np.float32), target.astype(np.float32)).transform(
        source.astype(np.float32))
    for scale in (1e-25, 1e-35, 1e25):
        as32 = lambda A: (A * scale).astype(np.float32)  # noqa: E731
        scaled = aligner.fit(as32(source), as32(target)).transform(as32(source))
        np.testing.assert_allclose(scaled, single, atol=1e-5, err_msg=f"float32 scale {scale}")


def test_normalising_rows_of_extreme_norm_is_exact_up_to_rounding():
    from sklearn_modgap._validation import checked_row_norms, normalize_rows

    rows = np.array([[3.0, 4.0], [3e-200, 4e-200], [3e200, 4e200], [3e-310, 4e-310]])
    np.testing.assert_allclose(normalize_rows(rows), [[0.6, 0.8]] * 4, rtol=1e-14)
    np.testing.assert_allclose(checked_row_norms(rows), [5.0, 5e-200, 5e200, 5e-310], rtol=1e-14)
    with pytest.raises(ValueError, match="zero norm .*index 1"):
        normalize_rows(np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_metrics_do_not_advise_a_normalize_parameter_they_lack(pairs):
    target, source = pairs
    zeroed = source.copy()
    zeroed[3] = 0
    with pytest.raises(ValueError, match="index 3") as info:
        centroid_discrepancy(target, zeroed)
    assert "normalize=False" not in str(info.value)


def test_object_arrays_of_numeric_strings_are_refused(pairs):
    target, source = pairs
    with pytest.raises(TypeError, match="dtype object"):
        CentroidShift().fit(source.astype(str).astype(object), target)


def test_a_dataframe_string_column_is_named(pairs):
    target, source = pairs
    frame = pd.DataFrame(source, columns=[f"f{i}" for i in range(16)])
    frame["label"] = "cat"
    with pytest.raises(TypeError, match="label"):
        CentroidShift().fit(frame, target)


def test_subspace_size_auto_is_capped_by_the_rows(pairs):
    target, source = pairs
    # d = 16 and 10 rows: q = min(128, 16, 9) = 9.
    overlap, baseline = subspace_overlap(target[:10], source[:10], q="auto", return_baseline=True)
    assert baseline == pytest.approx(9 / 16)
    assert 0 <= overlap <= 1 + 1e-9
    assert diagnose(target, source)["q_over_d"] == pytest.approx(1.0)


def test_loader_names_the_file_row_of_a_zero_row(tmp_path, pairs):
    target, source = pairs
    source = source.copy()
    source[100] = 0
    np.save(tmp_path / "s.npy", source)
    np.save(tmp_path / "t.npy", target)
    with pytest.raises(ValueError, match=r"source file .*s\.npy has 1 row\(s\) of zero norm .*row 100"):
        load_embedding_pairs(tmp_path / "s.npy", target_path=tmp_path / "t.npy")


def test_compare_stops_on_a_zero_row_in_the_target_file(tmp_path, pairs, capsys):
    target, source = pairs
    target = target.copy()
    target[70] = 0
    np.save(tmp_path / "s.npy", source)
    np.save(tmp_path / "t.npy", target)
    status = main(["compare", "--source", str(tmp_path / "s.npy"), "--target",
                   str(tmp_path / "t.npy"), "--k", "5", "--quiet"])
    assert status == 1
    err = capsys.readouterr().err
    assert "target file" in err and "row 70" in err and "normalize=False" not in err


def test_metrics_on_one_row_say_how_many_rows_they_need(pairs):
    from sklearn_modgap.metrics import alignment_balance, neighborhood_consistency

    target, source = pairs
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        alignment_balance(target[:1], source[:1], source[:1])
    with pytest.raises(ValueError, match="at least 2 rows") as info:
        neighborhood_consistency(source[:1], source[:1])
    assert "k <= 0" not in str(info.value)


def test_file_messages_say_what_the_file_is(tmp_path):
    (tmp_path / "text.npy").write_text("1 2 3\n")
    with pytest.raises(ValueError, match="not a .npy or .npz file") as info:
        load_embedding_pairs(tmp_path / "text.npy")
    assert "allow_pickle" not in str(info.value)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for mmap_mode in (None, "r"):
        with pytest.raises(ValueError, match="Python objects .* never unpickled") as info:
            load_embedding_pairs(tmp_path / "objects.npy", mmap_mode=mmap_mode)
        assert "memory-mapped" not in str(info.value)


def test_duplicate_rows_of_a_real_set_are_flagged_for_the_knn_measures():
    from sklearn_modgap.metrics import DuplicateRowsWarning, modality_mixing
    from sklearn_modgap.report import gap_report

    from conftest import load_real

    # ConVIRT's radiology reports: 57 of the 500 texts repeat another exactly.
    target, source = load_real("convirt")
    substitutes = ReAlign().fit(source, target).transform(source)
    with pytest.warns(DuplicateRowsWarning, match="substitutes has 57 of 500 rows .*443 distinct"):
        modality_mixing(target, substitutes, k=20)
    # One prompt per class: every substitute's 20 neighbours are its copies.
    prompts = np.repeat(source[:10], 50, axis=0)
    with pytest.warns(DuplicateRowsWarning, match="exactly 0"):
        mixing = modality_mixing(target, ReAlign().fit(prompts, target).transform(prompts), k=20)
    assert mixing == 0.0
    with pytest.warns(DuplicateRowsWarning, match="held-out source") as record:
        gap_report({"a": ReAlign(), "b": CentroidShift()}, source, target, k=20)
    assert len([w for w in record if issubclass(w.category, DuplicateRowsWarning)]) == 1
