// The problem's geometry, small integer helpers, and how a kernel splits its rows into steps and
// blocks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

namespace invobench_cpu {

inline int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

struct Geometry {
  int64_t B, C, H, W, G, Cg, K, KK, s, d, p, Ho, Wo;
};

// Row blocks per (b, g): enough work items to balance the threads, as few as possible (each block
// re-reads a halo of K·d input rows).
inline int64_t blocks_per_image(int64_t images, int64_t rows, int nthreads) {
  const int64_t want = 8 * static_cast<int64_t>(nthreads);
  return std::min<int64_t>(rows, std::max<int64_t>(1, ceil_div(want, images)));
}

// How a kernel walks its rows: R = 2 rows per step when they go in pairs, in blocks of whole steps
// spread over the threads (a block never splits a pair).
struct RowSteps {
  int64_t R, nblk, rows_per_blk;
  RowSteps(bool pairs, int64_t images, int64_t rows, int nthreads)
      : R(pairs ? 2 : 1),
        nblk(blocks_per_image(images, ceil_div(rows, R), nthreads)),
        rows_per_blk(R * ceil_div(ceil_div(rows, R), nblk)) {}
};

// Tap rows (i0, i1) of row m of a row pair's window for its first and second output row, −1 where
// that output row does not read it: the second window is the first moved down by `kshift` tap rows.
inline std::pair<int64_t, int64_t> pair_tap_rows(int64_t m, int64_t K, int64_t kshift, bool pair) {
  return {m < K ? m : -1, pair && m >= kshift && m - kshift < K ? m - kshift : -1};
}

}  // namespace invobench_cpu
