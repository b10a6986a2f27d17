"""skjule: deep image clustering (JULE) with a scikit-learn API.

The agglomerative engine (:class:`GDLClustering`, :class:`MergeEngine`,
:func:`cut_hierarchy`) and :func:`clustering_accuracy` need only numpy, numba
and pynndescent: ``import skjule`` never imports torch. The deep estimators
(:class:`JULEClustering`, :class:`JULETransformer`, :class:`JULEMixture`,
:class:`DeepGMMClustering`,
:class:`AutoencoderTransformer`) and :class:`FeatureExtractor` need PyTorch
(``pip install 'skjule[deep]'``) and are imported on first access (PEP 562).
"""

import importlib as _importlib

from ._engine._gdl import GDLClustering
from ._engine._merge import MergeEngine, cut_hierarchy
from ._outliers import find_near_duplicates, least_typical, small_clusters_as_noise
from ._report import export_clusters, write_report
from ._version import __version__
from .metrics import clustering_accuracy

# Deep estimators: public name -> submodule defining it, imported on first access
# so that the torch-free engine does not pay for (or require) torch.
_LAZY = {
    "AutoencoderTransformer": "._deep._autoencoder",
    "DeepGMMClustering": "._deep._deepgmm",
    "FeatureExtractor": "._deep._features",
    "JULEClustering": "._deep._jule",
    "JULETransformer": "._deep._jule",
    "JULEMixture": "._deep._jule_mixture",
}

__all__ = [
    "AutoencoderTransformer",
    "DeepGMMClustering",
    "FeatureExtractor",
    "GDLClustering",
    "JULEClustering",
    "JULEMixture",
    "JULETransformer",
    "MergeEngine",
    "clustering_accuracy",
    "cut_hierarchy",
    "export_clusters",
    "find_near_duplicates",
    "least_typical",
    "small_clusters_as_noise",
    "write_report",
    "__version__",
]


def _torch_missing(exc):
    """Whether ``exc`` (an ImportError) comes from torch not being importable."""
    name = getattr(exc, "name", None)
    if name is None:  # an ImportError raised by hand, e.g. by an import blocker
        return "torch" in str(exc)
    return name == "torch" or name.startswith("torch.")


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(_importlib.import_module(module, __name__), name)
    except ImportError as exc:
        if not _torch_missing(exc):
            raise
        raise ImportError(
            f"{name} needs PyTorch: pip install 'skjule[deep]' (or install torch "
            "yourself first, e.g. the CPU build from "
            "https://download.pytorch.org/whl/cpu). The agglomerative engine "
            "(GDLClustering, MergeEngine, cut_hierarchy) works without it.",
            name="torch",
        ) from exc
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
