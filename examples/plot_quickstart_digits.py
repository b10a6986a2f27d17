"""
Quick start: cluster scikit-learn's digits
==========================================

Fit :class:`~skjule.JULEClustering` on 1,500 of the 8x8 digit images bundled
with scikit-learn, compare with KMeans on the same images, then assign the
297 images it has not seen with ``predict`` (the trained CNN embeds them; each
takes the cluster of its nearest training samples). ``make demo`` runs this
file.
"""

from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score as nmi
from sklearn.preprocessing import normalize

from skjule import JULEClustering
from skjule.metrics import clustering_accuracy as acc

X, y = load_digits(return_X_y=True)
images = X.reshape(-1, 8, 8)  # (n, H, W); colour images are (n, H, W, C)
train, new = slice(0, 1500), slice(1500, None)

jule = JULEClustering(n_clusters=10, random_state=0)
labels = jule.fit_predict(images[train])
kmeans = KMeans(10, n_init=10, random_state=0).fit_predict(normalize(X[train]))

print(f"digits: {len(X)} images of 8x8, 10 classes; fit on {len(labels)}\n")
print(f"{'':<28} {'NMI':>6} {'ACC':>6}")
print(f"{'KMeans':<28} {nmi(y[train], kmeans):6.3f} {acc(y[train], kmeans):6.3f}")
print(f"{'JULEClustering':<28} {nmi(y[train], labels):6.3f} {acc(y[train], labels):6.3f}")
new_labels = jule.predict(images[new])
print(
    f"{'JULE.predict, unseen images':<28} {nmi(y[new], new_labels):6.3f} "
    f"{acc(y[new], new_labels):6.3f}"
)
print(
    f"\n{jule.n_initial_clusters_} initial clusters merged in "
    f"{len(jule.history_) - 1} periods; embedding of shape {jule.embedding_.shape}"
)
