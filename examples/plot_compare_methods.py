"""
JULE next to KMeans and SpectralClustering
==========================================

The paper's comparison in miniature: scikit-learn's digits clustered by
KMeans and SpectralClustering on L2-normalised pixels, by the agglomerative
engine alone (:class:`~skjule.GDLClustering`), and by JULE, which learns a CNN
representation while it clusters. The figure shows why JULE helps: the
classes are far better separated in the learned embedding than in pixel
space (the paper's Fig. 1).

On these tiny 8x8 images the engine alone is already strong and JULE does
not beat it; on larger images (USPS, COIL-20, UMist) it does: see
:doc:`/benchmarks`.
"""

import time

import matplotlib.pyplot as plt
from sklearn.cluster import KMeans, SpectralClustering
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score
from sklearn.preprocessing import normalize

from skjule import GDLClustering, JULEClustering
from skjule.metrics import clustering_accuracy
from skjule.plotting import plot_embedding

X, y = load_digits(return_X_y=True)
images = X.reshape(-1, 8, 8)
Xn = normalize(X)

jule = JULEClustering(n_clusters=10, random_state=0)
methods = {
    "KMeans": lambda: KMeans(10, n_init=10, random_state=0).fit_predict(Xn),
    "Spectral (kNN)": lambda: SpectralClustering(
        10, affinity="nearest_neighbors", n_neighbors=20, random_state=0
    ).fit_predict(Xn),
    "GDL": lambda: GDLClustering(n_clusters=10).fit_predict(images),
    "JULE": lambda: jule.fit_predict(images),
}

scores = {}
print(f"{'method':<16} {'NMI':>6} {'ACC':>6} {'seconds':>8}")
for name, run in methods.items():
    t = time.perf_counter()
    labels = run()
    dt = time.perf_counter() - t
    scores[name] = normalized_mutual_info_score(y, labels)
    print(f"{name:<16} {scores[name]:6.3f} {clustering_accuracy(y, labels):6.3f} {dt:8.2f}")

# %%
# Pixels against the learned embedding, coloured by the true digit.
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
axes[0].bar(list(scores), list(scores.values()), color="C0")
axes[0].set_ylim(0, 1)
axes[0].set_ylabel("NMI")
axes[0].set_title("digits, 10 clusters")
plot_embedding(Xn, y, method="tsne", ax=axes[1])
axes[1].set_title("pixels (t-SNE)")
plot_embedding(jule.embedding_, y, method="tsne", ax=axes[2])
axes[2].set_title("JULE embedding (t-SNE)")
fig.tight_layout()
plt.show()
