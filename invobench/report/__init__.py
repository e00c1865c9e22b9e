"""Reports and comparisons of results files: `invobench report` (interactive HTML) and `invobench compare`.

Reads only results files (schema v1, `invobench.results`); knows nothing of timing. Modules:
`inputs` (finding and reading files), `rows` (one row per record), `cases` (case labels, size
ladders), `verdict` (the answer first: fastest involution variant against conv and local attention,
bottom line, recommendation, machines side by side) and `verdict_figures`, `models_figure`
(RedNet against ResNet), `figures`, `tables`, `page` (the report page, with `assets/` CSS and
JavaScript), `views` (summary tables for `show`, `export` and the docs), `stats` and `compare`
(the statistics and verdicts of `compare`), `compare_page` (its HTML page).
"""
from invobench.report.compare import CompareError, Comparison, compare_runs  # noqa: F401
from invobench.report.inputs import ReportInputError, load_results  # noqa: F401
from invobench.report.page import build_report, write_report  # noqa: F401
