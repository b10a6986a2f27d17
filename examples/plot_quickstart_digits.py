"""
Quick start: cluster scikit-learn's digits
==========================================

Clusters the 1,797 8x8 digit images bundled with scikit-learn with JULE
(CNN + agglomerative clustering learned jointly) and with the agglomerative
engine alone, and prints NMI and accuracy next to KMeans and
SpectralClustering.
"""

import time

from sklearn.cluster import KMeans, SpectralClustering
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score
from sklearn.preprocessing import normalize

from skjule import GDLClustering, JULEClustering
from skjule.metrics import clustering_accuracy

X, y = load_digits(return_X_y=True)
images = X.reshape(-1, 8, 8)
Xn = normalize(X)  # what skjule does internally (normalize=True)

methods = {
    "KMeans": lambda: KMeans(10, n_init=10, random_state=0).fit_predict(Xn),
    "SpectralClustering (kNN)": lambda: SpectralClustering(
        10, affinity="nearest_neighbors", n_neighbors=20, random_state=0
    ).fit_predict(Xn),
    "GDLClustering": lambda: GDLClustering(n_clusters=10).fit_predict(images),
    "JULEClustering": lambda: JULEClustering(n_clusters=10, random_state=0).fit_predict(images),
}

print(f"digits: {X.shape[0]} images of 8x8, 10 classes\n")
print(f"{'method':<28} {'NMI':>6} {'ACC':>6} {'seconds':>8}")
for name, run in methods.items():
    t = time.perf_counter()
    labels = run()
    dt = time.perf_counter() - t
    print(f"{name:<28} {normalized_mutual_info_score(y, labels):6.3f} "
          f"{clustering_accuracy(y, labels):6.3f} {dt:8.2f}")
