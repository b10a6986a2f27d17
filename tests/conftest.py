import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402

#: The benchmark .npz files (MNIST, USPS, COIL, UMist); tests that need them
#: are marked slow and skip when the folder is absent.
BENCHMARK_DATA = os.environ.get(
    "SKJULE_BENCHMARK_DATA",
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets"),
)


@pytest.fixture
def benchmark_data():
    if not os.path.exists(os.path.join(BENCHMARK_DATA, "usps.npz")):
        pytest.skip(f"benchmark data not found in {BENCHMARK_DATA}")
    return BENCHMARK_DATA
