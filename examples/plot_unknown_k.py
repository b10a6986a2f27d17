"""
Unknown number of clusters
==========================

With ``n_clusters=None``, :class:`~skjule.GDLClustering` and
:class:`~skjule.JULEClustering` choose the number of clusters from their
merge history. This example shows how the choice is made and how to check
it, on scikit-learn's 1,797 digits (10 classes):

* the *modularity* of every cut of the hierarchy (``modularity_``): the
  most modular cut gives the number of clusters;
* the *cut ratio* (``cut_ratio_``): a check that the data have clusters at
  all - near 0 for separated clusters, about 1 for a single blob;
* other ways to stop the merges: a threshold on the merge loss
  (``distance_threshold``), or cutting the hierarchy at another number of
  clusters with :func:`~skjule.cut_hierarchy`.

See :doc:`/unknown_k` for the rule and its failure modes.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score as nmi

from skjule import GDLClustering, JULEClustering, cut_hierarchy

X, y = load_digits(return_X_y=True)

# %%
# Let the merge history choose
# ----------------------------
gdl = GDLClustering(n_clusters=None, random_state=0).fit(X)
print(f"chosen K: {gdl.n_clusters_} (true: 10), NMI {nmi(y, gdl.labels_):.3f}")
print(f"cut ratio: {gdl.cut_ratio_:.3f} (below 0.6: the data have clusters)")

# %%
# The evidence: modularity of each cut
# ------------------------------------
# ``modularity_[k - 1]`` scores the cut of the full hierarchy at ``k``
# clusters: the share of kNN-graph weight inside clusters minus what a random
# graph with the same degrees would put there. A clear peak is a clear
# choice; a flat top means several numbers of clusters are about as good.
# Clusters smaller than a quarter of the mean cluster size at the best cut
# are not counted, so ``n_clusters_`` can be below the peak.
ks = np.arange(1, len(gdl.modularity_) + 1)
best = int(np.nanargmax(gdl.modularity_)) + 1
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.plot(ks[:60], gdl.modularity_[:60], marker=".")
ax.axvline(best, color="grey", ls=":", label=f"most modular cut: {best}")
ax.axvline(gdl.n_clusters_, color="C3", ls="--", label=f"n_clusters_ = {gdl.n_clusters_}")
ax.set_xlabel("clusters in the cut")
ax.set_ylabel("modularity")
ax.legend()
plt.show()

# %%
# Data without clusters
# ---------------------
# A single Gaussian blob has no clusters, but any hierarchy can still be
# cut. The cut ratio compares the graph weight the best cut severs with what
# the same cut severs in a Gaussian with the data's mean and covariance; at
# 0.6 or more the fit returns one cluster and warns.
blob = np.random.default_rng(0).normal(size=(1000, 10))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    one = GDLClustering(n_clusters=None, random_state=0).fit(blob)
print(f"blob: cut ratio {one.cut_ratio_:.3f}, chosen K {one.n_clusters_}")
for w in caught:
    print("warning:", str(w.message)[:100], "...")

# %%
# Other ways to stop: a threshold, or another cut
# -----------------------------------------------
# ``merge_losses_`` holds the eq. 7 loss of every merge (negative; closer to
# 0 is a weaker merge). With ``distance_threshold`` merging stops at the
# first merge at least that weak. The scale depends on the data: read the
# losses of one fit before choosing a threshold.
losses = gdl.merge_losses_[np.isfinite(gdl.merge_losses_)]
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.plot(-losses, lw=1)
ax.set_yscale("log")
ax.set_xlabel("merge (in order)")
ax.set_ylabel("- merge loss")
plt.show()

threshold = float(np.quantile(losses, 0.99))
cut = GDLClustering(n_clusters=None, distance_threshold=threshold).fit(X)
print(f"distance_threshold={threshold:.4f}: {cut.n_clusters_} clusters")

# %%
# :func:`~skjule.cut_hierarchy` reads the labels at any number of clusters
# the recorded merges passed through (from ``n_clusters_`` up), without
# refitting. For fewer clusters than the fit stopped at, refit with that
# ``n_clusters``.
for k in (gdl.n_clusters_, 15, 20, 30):
    labels = cut_hierarchy(gdl.children_, len(X), k)
    print(f"cut at {k:>2} clusters: NMI {nmi(y, labels):.3f}")

# %%
# JULE with an unknown number of clusters
# ---------------------------------------
# JULE needs a target for its training before any embedding exists: the
# same rule on the (L2-normalised) pixels gives it, and the network trains
# towards it. The schedule is shortened here (2 epochs per period instead of
# 20) to keep the example fast.
jule = JULEClustering(n_clusters=None, image_shape=(8, 8), epochs_per_period=2, random_state=0).fit(
    X
)
print(f"JULE: chosen K {jule.n_clusters_}, NMI {nmi(y, jule.labels_):.3f}")
