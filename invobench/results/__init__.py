"""Results files: schema v1 (`schema`) and reading and writing them (`io`). The runner writes them;
`report`, `compare`, `show` and `export` read them; nothing else crosses that boundary."""
from invobench.results.io import ResultsFile, ResultsFileError, append_line, read_results  # noqa: F401
from invobench.results.schema import (  # noqa: F401
    SCHEMA_FILE, SCHEMA_VERSION, STATUSES, CpuInfo, CudaDevice, CudaInfo, Fingerprint, GitInfo, Line, MemoryInfo,
    Record, Roofline, RooflineFields, RunHeader, Stats, SuiteRef, TimerInfo, TorchInfo, case_id, json_schema,
)
