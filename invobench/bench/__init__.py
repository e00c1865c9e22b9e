"""The measurement engine: suite (YAML) → cases → runner (worker subprocesses) → records (JSON Lines).

Modules: `suite` (schema of suites/*.yaml), `cases` (items and groups with stable ids), `timing`
(timers and the adaptive interleaved sampler), `memory` (peaks, saved-for-backward bytes, the guard's
estimates), `roofline` (copy bandwidth and matmul peak), `worker` (the subprocess that measures),
`runner` (orchestration, resume, shards, progress).
"""
