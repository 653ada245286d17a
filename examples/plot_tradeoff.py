"""
Preservation against mixing
===========================

The comparison of the AnisoAlign paper (Fig. 3a, 6, 7) with :func:`~sklearn_modgap.report.gap_report`: every
aligner is fitted on half of the CLIP pairs with the images shuffled (the pairing is never used), then its
substitutes for the other half are scored for how much of the captions' geometry they keep (``Psi``) and how
well they mix with the images (``M_k^Z``, ``M_k^X``). The identity keeps everything and mixes nothing; the
random-replacement control mixes perfectly and keeps nothing; a good aligner sits at the top right.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from sklearn_modgap import C3, CentroidShift, MomentMatch, RandomTargetReplacement, ReAlign
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.plotting import plot_tradeoff
from sklearn_modgap.report import gap_report

here = Path.cwd().resolve()
files = [p / "shared" / "data" / "mind-the-gap" / "features_clip.npy" for p in [here, *here.parents]]
found = [f for f in files if f.exists()]
images, texts = np.load(found[0]) if found else make_modality_gap(n_pairs=500, random_state=0)

aligners = {
    "identity": CentroidShift(alpha=0.0),
    "CentroidShift": CentroidShift(),
    "C3 (auto noise)": C3(noise_std="auto", random_state=0),
    "ReAlign": ReAlign(),
    "MomentMatch": MomentMatch(),
    "RandomTargetReplacement": RandomTargetReplacement(random_state=0),
}
report = gap_report(aligners, texts, images, random_state=0)
print(report.round(3).to_string())

# %%
# CentroidShift and ReAlign keep nearly all of the captions' relative geometry while entering the images'
# neighbourhoods; MomentMatch mixes more and keeps less.
tradeoff = plot_tradeoff(report, labels=("images", "captions"))
plt.show()
