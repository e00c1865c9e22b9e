"""Results files: schema v1 (`schema`) and reading and writing them (`io`). The runner writes them;
`report`, `compare`, `show` and `export` read them; nothing else crosses that boundary."""
from invobench.results.io import (  # noqa: F401
    ResultsFile, ResultsFileError, ResultsLock, ResultsLockedError, ResultsWriteError, append_line, lock_results,
    parse_line, read_results,
)
from invobench.results.schema import (  # noqa: F401
    SCHEMA_FILE, SCHEMA_VERSION, STATUSES, CpuInfo, CudaDevice, CudaInfo, Fingerprint, GitInfo, Line, MemoryInfo,
    Record, Roofline, RooflineFields, RunHeader, Stats, SuiteRef, TimerInfo, TorchInfo, case_id, json_schema,
)
