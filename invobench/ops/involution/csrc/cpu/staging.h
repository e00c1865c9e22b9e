// Copying input into per-thread buffers at accumulation precision: stage/zero, and the ring of
// zero-padded, phase-split input rows (InputRing).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "convert.h"
#include "geometry.h"

namespace invobench_cpu {

template <typename A>
inline void zero(A* dst, int64_t n) {
  std::memset(dst, 0, static_cast<size_t>(n) * sizeof(A));
}

// Copy `n` values to acc precision, then zero up to `n_total`.
template <typename T, typename A>
inline void stage(A* dst, const T* src, int64_t n, int64_t n_total) {
  if constexpr (std::is_same<T, A>::value) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(A));
  } else {
    for (int64_t k = 0; k < n; ++k) dst[k] = widen(src[k]);
  }
  if (n_total > n) std::memset(dst + n, 0, static_cast<size_t>(n_total - n) * sizeof(A));
}

// Ring of zero-padded, phase-split input rows of one group: row r lives in slot r mod `slots`;
// slot layout [phase][L], channel stride slots·s·L plus one cache line (so the channels a micro-kernel
// reads do not all fall into the same L1 sets). Column m of phase ph holds x[·, r, m·s + ph − p].
// `extra_rows`: rows kept beyond one window (a row pair's window is `s` rows taller).
template <typename T, typename A>
struct InputRing {
  const Geometry& g;
  int64_t L, slots, row_len, cstride;
  A* buf;
  InputRing(const Geometry& geom, int64_t wo_pad, A* ring_buffer, int64_t extra_rows = 0) : g(geom), buf(ring_buffer) {
    L = round_up(wo_pad + (g.K - 1) * g.d / g.s, 16);
    slots = (g.K - 1) * g.d + 1 + extra_rows;
    row_len = g.s * L;
    cstride = slots * row_len + 16;
  }
  static int64_t elements(const Geometry& g, int64_t wo_pad, int64_t extra_rows = 0) {
    return g.Cg * (((g.K - 1) * g.d + 1 + extra_rows) * g.s * round_up(wo_pad + (g.K - 1) * g.d / g.s, 16) + 16);
  }
  // Zero the ring once per call: stride-1 rows then only ever write their W data columns.
  void clear() { std::memset(buf, 0, static_cast<size_t>(g.Cg * cstride) * sizeof(A)); }
  int64_t slot_offset(int64_t r) const { return (r % slots) * row_len; }
  // Offset of tap column j·d within a slot.
  int64_t col_offset(int64_t j) const { return ((j * g.d) % g.s) * L + (j * g.d) / g.s; }
  void fill(const T* x_group, int64_t r) {
    if (r < 0 || r >= g.H) return;  // rows outside the image are never referenced
    for (int64_t c = 0; c < g.Cg; ++c) {
      A* dst = buf + c * cstride + slot_offset(r);
      const T* src = x_group + (c * g.H + r) * g.W;
      if (g.s == 1) {
        stage(dst + g.p, src, g.W, g.W);  // the padding columns stay zero from `clear()`
      } else {
        for (int64_t ph = 0; ph < g.s; ++ph) {
          A* d = dst + ph * L;
          for (int64_t m = 0; m < L; ++m) {
            const int64_t col = m * g.s + ph - g.p;
            d[m] = (col >= 0 && col < g.W) ? widen(src[col]) : A(0);
          }
        }
      }
    }
  }
};

}  // namespace invobench_cpu
