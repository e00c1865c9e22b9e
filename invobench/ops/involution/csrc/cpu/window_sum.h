// The micro-kernel of the forward and grad-input: sums of w · x over a window's rows and column taps
// for a block of channels and one vector of columns, one output row or a row pair; and its dispatcher.
#pragma once

#include <cstdint>

#include "simd.h"

namespace invobench_cpu {

// One input row of a row-pair window, for one vector of output columns and CB channels: for each of
// its nj column taps, the w vectors of the output rows that read this row (H0: the first row of the
// pair, H1: the second) times the x vectors of the CB channels. Each x vector is loaded once and used
// by both rows, each w vector once and used by all CB channels: 2·CB FMAs per 2 + CB loads.
// Column tap jj reads x at xr + xcol[jj] (+ c·cstride) and w at w0/w1 + wcol[jj].
// MASKED: w is loaded with wmask[jj]'s lanes only (the others zero), for w read in place near an edge.
template <int CB, bool H0, bool H1, bool MASKED, typename A, int NB>
inline void pair_row(int64_t nj, const int64_t* xcol, const int64_t* wcol, const uint32_t* wmask, const A* xr,
                     int64_t cstride, const A* w0, const A* w1, typename Vec<A, NB>::type (&a0)[CB],
                     typename Vec<A, NB>::type (&a1)[CB]) {
  using V = Vec<A, NB>;
  for (int64_t jj = 0; jj < nj; ++jj) {
    typename V::type wv0{}, wv1{};
    if constexpr (MASKED) {
      if constexpr (H0) wv0 = masked_load<A, NB>(w0 + wcol[jj], wmask[jj]);
      if constexpr (H1) wv1 = masked_load<A, NB>(w1 + wcol[jj], wmask[jj]);
    } else {
      if constexpr (H0) wv0 = V::load(w0 + wcol[jj]);
      if constexpr (H1) wv1 = V::load(w1 + wcol[jj]);
    }
    const A* xq = xr + xcol[jj];
#pragma GCC unroll 16
    for (int c = 0; c < CB; ++c) {
      typename V::type xv = V::load(xq + c * cstride);
      // One register for both FMAs: without this GCC folds the load into each FMA, loading x twice.
      if constexpr (H0 && H1) register_barrier(xv);
      if constexpr (H0) a0[c] += wv0 * xv;
      if constexpr (H1) a1[c] += wv1 * xv;
    }
  }
}

// A row of a window: its offset from the x base (channel 0), and the offsets from the w base of its
// taps' w rows for the first and the second output row of the pair, −1 where that output row does
// not read this input row.
struct WindowRow {
  int64_t xoff, w0, w1;
};

// The column taps of a window: nj pairs of (x offset, w offset) within a row, and for a masked
// window_sum the lanes of each tap's w vector to load (the others are zero).
struct ColumnTaps {
  int64_t nj;
  const int64_t* xcol;
  const int64_t* wcol;
  const uint32_t* wmask = nullptr;
};

// out0/out1[c] = Σ over the window's rows and column taps of w · x for CB channels and one vector of
// output columns of the first/second output row (PAIR) or of one output row (!PAIR). The forward and
// grad-input share it: in grad-input grad_out plays x (from a staged ring), and w is read in place with
// masked loads (MASKED: AVX-512 and AVX2 builds) or from a staged ring.
template <int CB, bool PAIR, bool MASKED, typename A, int NB>
inline void window_sum(int64_t nrows, const WindowRow* rows, ColumnTaps cols, const A* xp, int64_t cstride,
                       const A* wp, typename Vec<A, NB>::type* out0, typename Vec<A, NB>::type* out1) {
  using V = Vec<A, NB>;
  typename V::type a0[CB], a1[CB];
#pragma GCC unroll 16
  for (int c = 0; c < CB; ++c) a0[c] = a1[c] = typename V::type{};
  for (int64_t m = 0; m < nrows; ++m) {
    const WindowRow& row = rows[m];
    const A* xr = xp + row.xoff;
    if (PAIR && row.w0 >= 0 && row.w1 >= 0) {
      pair_row<CB, true, PAIR, MASKED, A, NB>(cols.nj, cols.xcol, cols.wcol, cols.wmask, xr, cstride, wp + row.w0,
                                              wp + row.w1, a0, a1);
    } else if (row.w0 >= 0) {
      pair_row<CB, true, false, MASKED, A, NB>(cols.nj, cols.xcol, cols.wcol, cols.wmask, xr, cstride, wp + row.w0,
                                               nullptr, a0, a1);
    } else if (PAIR) {
      pair_row<CB, false, PAIR, MASKED, A, NB>(cols.nj, cols.xcol, cols.wcol, cols.wmask, xr, cstride, nullptr,
                                               wp + row.w1, a0, a1);
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < CB; ++c) out0[c] = a0[c];
  if (PAIR) {
#pragma GCC unroll 16
    for (int c = 0; c < CB; ++c) out1[c] = a1[c];
  }
}

// Channels per window_sum call: one output row keeps kBlock accumulators, a row pair 2 × kPairBlock.
// With 16 vector registers (AVX2) a pair takes 6 channels: 12 accumulators + 2 w + 1 x. AVX-512
// builds have 32 (also for their 32-byte vectors), and take 8: 16 + 3 registers, and the usual 16
// channels of a group in two calls instead of 6 + 6 + 4, so each w vector is loaded twice, not three
// times. 12 was slower on data in cache. grad_kernel's tap blocks stay at kPairTaps.
#if defined(__AVX512F__)
constexpr int kPairBlock = 8;
#else
constexpr int kPairBlock = 6;
#endif

template <bool MASKED, typename A, int NB>
inline void window_sum_dispatch(bool pair, int cb, int64_t nrows, const WindowRow* rows, ColumnTaps cols, const A* xp,
                                int64_t cstride, const A* wp, typename Vec<A, NB>::type* out0, typename Vec<A, NB>::type* out1) {
#define INVOBENCH_WS(n, P) window_sum<n, P, MASKED, A, NB>(nrows, rows, cols, xp, cstride, wp, out0, out1)
  if (pair) {
    switch (cb) {
      case 1: INVOBENCH_WS(1, true); break;
      case 2: INVOBENCH_WS(2, true); break;
      case 3: INVOBENCH_WS(3, true); break;
      case 4: INVOBENCH_WS(4, true); break;
      case 5: INVOBENCH_WS(5, true); break;
      case 6: INVOBENCH_WS(6, true); break;
      case 7: INVOBENCH_WS(7, true); break;
      default: INVOBENCH_WS(8, true); break;
    }
  } else {
    switch (cb) {
      case 1: INVOBENCH_WS(1, false); break;
      case 2: INVOBENCH_WS(2, false); break;
      case 3: INVOBENCH_WS(3, false); break;
      case 4: INVOBENCH_WS(4, false); break;
      case 5: INVOBENCH_WS(5, false); break;
      case 6: INVOBENCH_WS(6, false); break;
      case 7: INVOBENCH_WS(7, false); break;
      default: INVOBENCH_WS(8, false); break;
    }
  }
#undef INVOBENCH_WS
}
static_assert(kBlock == 8 && kPairBlock <= 8, "window_sum_dispatch covers blocks of 1..8 and pairs of 1..8");

}  // namespace invobench_cpu
