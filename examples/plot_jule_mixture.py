"""
JULE with a mixture: which images to review first
=================================================

:class:`~skjule.JULEMixture` learns a CNN and the clusters as
:class:`~skjule.JULEClustering` does, then fits a Gaussian mixture to the
learned embedding, starting from JULE's clusters. Every image gets a
probability for each cluster (``predict_proba``): sort by the largest one
and review the least certain images instead of checking every label.

scikit-learn's 8x8 digits, with the defaults. See :doc:`/jule_mixture` for
what to expect on real data.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score as nmi

from skjule import JULEMixture
from skjule.metrics import matched_labels
from skjule.plotting import plot_cluster_montage

X, y = load_digits(return_X_y=True)
images = X.reshape(-1, 8, 8)

jm = JULEMixture(n_clusters=10, random_state=0).fit(images)
print(f"JULE's clusters: NMI {nmi(y, jm.labels_jule_):.3f}")
print(f"the mixture:     NMI {nmi(y, jm.labels_):.3f}")

# %%
# Confidence ranks the mistakes
# -----------------------------
# The labels are used here only to score: the images the mixture is least
# sure of are wrong far more often than the others.
confidence = jm.proba_.max(axis=1)  # = jm.predict_proba(images).max(axis=1)
correct = matched_labels(y, jm.labels_) == y
order = np.argsort(-confidence)
half = len(order) // 2
print(f"accuracy of the surer half:     {correct[order[:half]].mean():.3f}")
print(f"accuracy of the less sure half: {correct[order[half:]].mean():.3f}")

fractions = np.linspace(0.1, 1.0, 10)
accuracy = [correct[order[: int(f * len(order))]].mean() for f in fractions]
fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
ax.plot(100 * fractions, accuracy, marker="o")
ax.set_xlabel("% of images kept, surest first")
ax.set_ylabel("accuracy of the kept images")
plt.show()

# %%
# The 40 least certain images, by their most probable cluster: digits written
# between two classes, and clusters that mix two digits.
uncertain = np.argsort(confidence)[:40]
plot_cluster_montage(images[uncertain], jm.labels_[uncertain], n_per_cluster=8)
plt.show()

# %%
# New images get probabilities too, and ``score_samples`` (the log-density
# under the mixture) marks images unlike any cluster. The mixture's
# parameters live in the space ``transform`` returns: the embedding projected
# onto its ``2 * n_clusters`` leading principal axes.
print("proba", jm.predict_proba(images[:3]).round(3))
print("means", jm.means_.shape, "covariances", jm.covariances_.shape)
