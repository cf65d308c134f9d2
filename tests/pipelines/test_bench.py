"""The benchmark's import-time reading (figures come from `vlm3r-data bench`, never from tests)."""

from vlm3r.pipelines.bench import _import_seconds

LOG = """import time: self [us] | cumulative | imported package
import time:       100 |        100 |   numpy._core
import time:      2000 |       2100 | numpy
import time:       300 |        300 |     pyarrow.lib
import time:       400 |        700 |   pyarrow.json
import time:       500 |       1200 | pyarrow
import time:        50 |         50 | site
"""


def test_import_seconds_sums_top_level_imports_only():
    total, heaviest = _import_seconds(LOG)
    assert abs(total - (2100 + 1200 + 50) / 1e6) < 1e-12
    assert heaviest == [("numpy", 0.0021), ("pyarrow", 0.0012), ("site", 0.00005)]
