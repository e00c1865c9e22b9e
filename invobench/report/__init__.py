"""Reports and comparisons of results files: `invobench report` (interactive HTML) and `invobench compare`.

Reads only results files (schema v1, `invobench.results`); knows nothing of timing.
"""
from invobench.report.compare import CompareError, Comparison, compare_runs  # noqa: F401
from invobench.report.html import build_report, write_report  # noqa: F401
from invobench.report.inputs import ReportInputError, load_results  # noqa: F401
