// The forward kernel: out = involution(x, w), rows in pairs where the windows allow.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "convert.h"
#include "geometry.h"
#include "prefetch.h"
#include "scratch.h"
#include "simd.h"
#include "staging.h"
#include "store.h"
#include "window_sum.h"

namespace invobench_cpu {

// Output rows are computed in pairs when the second row's window is the first's moved by whole tap
// rows (stride a multiple of the dilation: always at s = d = 1): the 6 input rows the two 7×7 windows
// share are then loaded once for both.
template <typename T, int NB>
bool forward_kernel(const T* x, const T* w, T* out, const Geometry& g, int nthreads) {
  using A = typename AccOf<T>::type;
  using V = Vec<A, NB>;
  const int64_t wo_pad = round_up(g.Wo, V::n);
  const bool pairs = g.s % g.d == 0 && g.Ho > 1;
  const int64_t kshift = g.s / g.d;  // tap rows between the pair's windows
  const int64_t images = g.B * g.G;
  const RowSteps steps(pairs, images, g.Ho, nthreads);
  const int64_t R = steps.R, nblk = steps.nblk, rows_per_blk = steps.rows_per_blk;
  const int64_t plane = g.Ho * g.Wo;
  // fp32/double read w in place, a partial last vector of a row too: its lanes past Wo read the start
  // of the next row (or tap plane) and give sums that are never stored, as lanes do not mix. Only where
  // that read would run past the end of w (the last rows of an image's last tap plane, when it is the
  // last image) is the partial vector staged, zero-padded. At 7×7 (one partial vector per row) staging
  // it cost more than the arithmetic. 16-bit types stage whole rows, widened to fp32.
  constexpr bool in_place = std::is_same<T, A>::value;
  const int64_t full_end = in_place ? g.Wo / V::n * V::n : 0;  // vectors before this always read in place
  const int64_t w_elements = g.B * g.G * g.KK * plane;
  const int64_t wbuf_stride = in_place ? V::n : wo_pad;       // per tap, in the staged buffer
  const int64_t extra_rows = (R - 1) * g.s;
  const int64_t ring_n = InputRing<T, A>::elements(g, wo_pad, extra_rows);
  const int64_t window_rows = g.K + (R - 1) * kshift;
  const int64_t pf_n = PrefetchQueue::capacity(R, g.s);
  Scratch scratch(Carver::bytes<A>(ring_n) + Carver::bytes<A>(R * g.KK * wbuf_stride) + 3 * Carver::bytes<int64_t>(g.K) +
                      2 * Carver::bytes<WindowRow>(window_rows) + Carver::bytes<PrefetchQueue::Rows>(pf_n),
                  nthreads);
  if (!scratch.ok()) return false;
  const int64_t cb_max = pairs ? kPairBlock : kBlock;
  const int64_t kernel_calls = ceil_div(g.Cg, cb_max) * ceil_div(g.Wo, V::n);  // per row step

#pragma omp parallel num_threads(nthreads)
  {
    Carver carve(scratch.thread_part());
    InputRing<T, A> ring(g, wo_pad, carve.take<A>(ring_n), extra_rows);
    ring.clear();
    PrefetchQueue prefetch(carve.take<PrefetchQueue::Rows>(pf_n), pf_n);
    A* wbuf = carve.take<A>(R * g.KK * wbuf_stride);
    // Column taps: x at the ring's phase-split column of tap j; w at tap j's plane, in place or staged.
    int64_t* xcol = carve.take<int64_t>(g.K);
    int64_t* wcol_place = carve.take<int64_t>(g.K);
    int64_t* wcol_buf = carve.take<int64_t>(g.K);
    for (int64_t j = 0; j < g.K; ++j) xcol[j] = ring.col_offset(j), wcol_place[j] = j * plane, wcol_buf[j] = j * wbuf_stride;
    const ColumnTaps cols_place{g.K, xcol, wcol_place}, cols_buf{g.K, xcol, wcol_buf};
    WindowRow* rows_place = carve.take<WindowRow>(window_rows);  // w offsets into w itself
    WindowRow* rows_buf = carve.take<WindowRow>(window_rows);    // into wbuf (partial vectors, 16-bit types)
    typename V::type acc0[kBlock], acc1[kBlock];

#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < images * nblk; ++item) {
      const int64_t img = item / nblk, blk = item % nblk;
      const int64_t b = img / g.G, gi = img % g.G;
      const int64_t h0 = blk * rows_per_blk, h1 = std::min(g.Ho, h0 + rows_per_blk);
      const T* xg = x + (b * g.C + gi * g.Cg) * g.H * g.W;
      const T* wg = w + img * g.KK * plane;
      T* og = out + (b * g.C + gi * g.Cg) * plane;
      int64_t next_row = h0 * g.s - g.p;
      for (int64_t ho = h0; ho < h1; ho += R) {
        const bool pair = pairs && ho + 1 < h1;
        const int64_t nh = pair ? 2 : 1;
        const int64_t r_lo = ho * g.s - g.p, r_hi = r_lo + (nh - 1) * g.s + (g.K - 1) * g.d;
        for (int64_t r = std::max(next_row, r_lo); r <= r_hi; ++r) ring.fill(xg, r);
        next_row = r_hi + 1;
        // One past the furthest element a whole-vector read of this step's w rows touches.
        const int64_t w_reach = (img * g.KK + g.KK - 1) * plane + (ho + nh - 1) * g.Wo + wo_pad;
        const int64_t place_end = in_place && w_reach <= w_elements ? g.Wo : full_end;
        if (place_end < g.Wo) {
          for (int64_t h = 0; h < nh; ++h)
            for (int64_t tap = 0; tap < g.KK; ++tap)
              stage(wbuf + (h * g.KK + tap) * wbuf_stride, wg + tap * plane + (ho + h) * g.Wo + full_end,
                    g.Wo - full_end, wbuf_stride);
        }
        prefetch.reset();  // the previous step's calls issued all of its lines
        if (ho + nh < h1) {
          const int64_t next_nh = std::min<int64_t>(R, h1 - ho - nh);
          for (int64_t h = 0; h < next_nh; ++h) prefetch.add_rows(wg + (ho + nh + h) * g.Wo, g.Wo, plane, g.KK);
          for (int64_t r = r_hi + 1; r <= std::min(r_hi + next_nh * g.s, g.H - 1); ++r)
            prefetch.add_rows(xg + r * g.W, g.W, g.H * g.W, g.Cg);
          for (int64_t h = 0; h < next_nh; ++h) prefetch.add_rows(og + (ho + nh + h) * g.Wo, g.Wo, plane, g.Cg, true);
        }
        const int64_t prefetch_per_call = ceil_div(prefetch.size(), kernel_calls);
        // The window's input rows r_lo + m·d; the pair's second row reads tap row m − kshift of them.
        int64_t nrows = 0;
        for (int64_t m = 0; m < g.K + (pair ? kshift : 0); ++m) {
          const int64_t r = r_lo + m * g.d;
          if (r < 0 || r >= g.H) continue;  // zero padding: no term
          const auto [i0, i1] = pair_tap_rows(m, g.K, kshift, pair);
          if (i0 < 0 && i1 < 0) continue;
          const int64_t xoff = ring.slot_offset(r);
          rows_place[nrows] = WindowRow{xoff, i0 < 0 ? -1 : i0 * g.K * plane, i1 < 0 ? -1 : i1 * g.K * plane + g.Wo};
          rows_buf[nrows++] = WindowRow{xoff, i0 < 0 ? -1 : i0 * g.K * wbuf_stride,
                                        i1 < 0 ? -1 : (g.KK + i1 * g.K) * wbuf_stride};
        }
        for (int64_t c0 = 0; c0 < g.Cg; c0 += cb_max) {
          for (int64_t wv = 0; wv < g.Wo; wv += V::n) {
            const int cb = static_cast<int>(std::min<int64_t>(cb_max, g.Cg - c0));
            const bool place = wv < place_end;
            const A* wp = place ? reinterpret_cast<const A*>(wg) + ho * g.Wo + wv : wbuf + (wv - full_end);
            prefetch.issue(prefetch_per_call);
            window_sum_dispatch<false, A, NB>(pair, cb, nrows, place ? rows_place : rows_buf,
                                              place ? cols_place : cols_buf, ring.buf + c0 * ring.cstride + wv,
                                              ring.cstride, wp, acc0, acc1);
            const int64_t count = std::min<int64_t>(V::n, g.Wo - wv);
            for (int64_t h = 0; h < nh; ++h) {
              const typename V::type* acc = h == 0 ? acc0 : acc1;
              for (int c = 0; c < cb; ++c)
                store_row<T, A, NB>(og + (c0 + c) * plane + (ho + h) * g.Wo + wv, acc[c], count);
            }
          }
        }
      }
    }
  }
  return true;
}

}  // namespace invobench_cpu
