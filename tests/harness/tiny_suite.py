"""The smallest real suite: two variants, one tiny case, fwd and fwd+bwd, budgets of milliseconds.

For tests that drive the runner or the CLI end to end: a run of it takes a few seconds, mostly the
worker's start.
"""
TINY = """
name: tiny
variants: [involution.eager, conv.depthwise]
budget: {warmup_s: 0.0, case_s: 0.02, min_samples: 3, max_samples: 5, timeout_s: 60}
roofline: {copy_mib: 2, matmul_max_n: 64, time_s: 0.01}
defaults: {B: 1, C: 8, size: 6, K: 3, G: 2, device: cpu, dtype: float32}
sweeps:
  - product: {pass: [fwd, fwd+bwd]}
"""
