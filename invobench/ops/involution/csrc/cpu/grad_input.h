// The grad-input kernel: grad_x from grad_out and w, in gather form on the forward's micro-kernel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "convert.h"
#include "geometry.h"
#include "prefetch.h"
#include "scratch.h"
#include "simd.h"
#include "staging.h"
#include "store.h"
#include "window_sum.h"

namespace invobench_cpu {

// grad_x in gather form. Input column x' = m·s + r (phase r) receives tap j from output column
// wo = m + e_j with e_j = (r + p − j·d)/s, for the j where that division is exact; rows likewise.
// grad_out rows (per channel) and w rows (per tap) are staged in zero-padded rings, and the forward's
// window_sum does the sums with grad_out in the role of x. At s = d = 1 input rows go in pairs: the
// K + 1 grad_out rows the two rows read are loaded once for both.
template <typename T, int NB>
bool grad_input_kernel(const T* gout, const T* w, T* gx, const Geometry& g, int nthreads) {
  using A = typename AccOf<T>::type;
  using V = Vec<A, NB>;
  const int64_t m_max = ceil_div(g.W, g.s);  // columns of phase 0 (= Wo)
  const int64_t m_pad = round_up(m_max, V::n);
  // Column taps per phase: (j, e_j).
  std::vector<std::vector<std::pair<int64_t, int64_t>>> col_taps(g.s);
  int64_t e_min = 0, e_max = 0;
  for (int64_t r = 0; r < g.s; ++r) {
    for (int64_t j = 0; j < g.K; ++j) {
      const int64_t t = r + g.p - j * g.d;
      if (floor_div(t, g.s) * g.s != t) continue;
      const int64_t e = floor_div(t, g.s);
      col_taps[r].emplace_back(j, e);
      e_min = std::min(e_min, e);
      e_max = std::max(e_max, e);
    }
  }
  const bool pairs = g.s == 1 && g.d == 1 && g.H > 1;
  const int64_t images = g.B * g.G;
  const RowSteps steps(pairs, images, g.H, nthreads);
  const int64_t R = steps.R, nblk = steps.nblk, rows_per_blk = steps.rows_per_blk;
  const int64_t pad_left = -e_min;
  const int64_t Lg = round_up(pad_left + m_pad + e_max, 16);
  const int64_t slots = (g.K - 1) * g.d / g.s + 2 + (R - 1);  // output rows one step can need, plus one
  const int64_t plane = g.Ho * g.Wo;
  // Channel stride of the grad_out ring and tap stride of the w ring; the extra cache line keeps the
  // 49 tap rows one output row reads from landing in the same few L1 sets (slots·Lg is often 2 KiB).
  const int64_t gstride = slots * Lg + 16;
  const int64_t window_rows = g.K + R - 1;
  const int64_t cb_max = pairs ? kPairBlock : kBlock;
  // w in place (fp32/double where the build has masked loads): tap j's w vector is read from w itself,
  // its lanes whose output column falls outside the row masked to zero (no read), instead of being
  // staged into a zero-padded ring. The ring copied all of w once per call, a large share of
  // grad_input's time. grad_out stays staged: its zero padding is what makes
  // a masked lane's product zero, and its Cg rows per output row are a quarter of w's K² rows.
  constexpr bool w_in_place = std::is_same<T, A>::value && kHasMaskedLoad;
  const int64_t wring_n = w_in_place ? 0 : g.KK * gstride;
  const int64_t w_row = w_in_place ? plane : gstride;  // tap stride of the w rows read
  const int64_t m_vectors = ceil_div(m_max, V::n);
  const int64_t wmask_n = w_in_place ? g.s * m_vectors * g.K : 0;  // [phase][vector of columns][tap]

  const int64_t pf_n = PrefetchQueue::capacity(R, g.s);
  Scratch scratch(Carver::bytes<A>(g.Cg * gstride) + Carver::bytes<A>(wring_n) + 2 * Carver::bytes<int64_t>(g.s * g.K) +
                      Carver::bytes<uint32_t>(wmask_n) + Carver::bytes<ColumnTaps>(g.s) + Carver::bytes<WindowRow>(window_rows) +
                      Carver::bytes<PrefetchQueue::Rows>(pf_n),
                  nthreads);
  if (!scratch.ok()) return false;
  const int64_t kernel_calls = g.s * ceil_div(g.Cg, cb_max) * ceil_div(m_max, V::n);  // per row step

#pragma omp parallel num_threads(nthreads)
  {
    Carver carve(scratch.thread_part());
    A* gring = carve.take<A>(g.Cg * gstride);
    A* wring = carve.take<A>(wring_n);
    zero(gring, g.Cg * gstride);  // padding columns are never written again: rows copy only their Wo values
    zero(wring, wring_n);
    // Column taps of phase r: grad_out at column e_j of a ring row, w at tap j's row (in w or in the
    // ring), same column.
    int64_t* xcol = carve.take<int64_t>(g.s * g.K);
    int64_t* wcol = carve.take<int64_t>(g.s * g.K);
    // w in place: the lanes of each tap's w vector that lie in the row, per phase and vector of
    // columns (they depend on the geometry alone): tap jj of vector v reads output columns
    // v·n + e_j + lane, those in [0, Wo).
    uint32_t* wmask = carve.take<uint32_t>(wmask_n);
    ColumnTaps* cols = carve.take<ColumnTaps>(g.s);
    for (int64_t r = 0; r < g.s; ++r) {
      int64_t n = 0;
      for (const auto& [j, e] : col_taps[r]) xcol[r * g.K + n] = e, wcol[r * g.K + n] = j * w_row + e, ++n;
      cols[r] = ColumnTaps{n, xcol + r * g.K, wcol + r * g.K};
      for (int64_t v = 0; w_in_place && v < m_vectors; ++v) {
        for (int64_t jj = 0; jj < n; ++jj) {
          const int64_t col = v * V::n + xcol[r * g.K + jj];
          const int64_t lo = std::max<int64_t>(0, -col), hi = std::min<int64_t>(V::n, g.Wo - col);
          wmask[(r * m_vectors + v) * g.K + jj] = hi > lo ? ((1u << hi) - 1u) & ~((1u << lo) - 1u) : 0u;  // ≤ 16 lanes
        }
      }
    }
    WindowRow* rows = carve.take<WindowRow>(window_rows);
    PrefetchQueue prefetch(carve.take<PrefetchQueue::Rows>(pf_n), pf_n);
    typename V::type acc0[kBlock], acc1[kBlock];

#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < images * nblk; ++item) {
      const int64_t img = item / nblk, blk = item % nblk;
      const int64_t b = img / g.G, gi = img % g.G;
      const int64_t y0 = blk * rows_per_blk, y1 = std::min(g.H, y0 + rows_per_blk);
      const T* gg = gout + (b * g.C + gi * g.Cg) * plane;
      const T* wg = w + img * g.KK * plane;
      T* gxg = gx + (b * g.C + gi * g.Cg) * g.H * g.W;
      int64_t next_ho = std::max<int64_t>(0, ceil_div(y0 + g.p - (g.K - 1) * g.d, g.s));
      for (int64_t y = y0; y < y1; y += R) {
        const bool pair = pairs && y + 1 < y1;
        const int64_t nh = pair ? 2 : 1;
        const int64_t ho_hi = std::min(g.Ho - 1, floor_div(y + nh - 1 + g.p, g.s));
        prefetch.issue_all();
        prefetch.reset();
        if (y + nh < y1) {  // the grad_out and w rows the next step stages
          const int64_t y_next_last = std::min(y1, y + nh + R) - 1;
          const int64_t ho_next = std::min(g.Ho - 1, floor_div(y_next_last + g.p, g.s));
          for (int64_t ho = ho_hi + 1; ho <= ho_next; ++ho) {
            prefetch.add_rows(gg + ho * g.Wo, g.Wo, plane, g.Cg);
            prefetch.add_rows(wg + ho * g.Wo, g.Wo, plane, g.KK);
          }
          for (int64_t yn = y + nh; yn <= y_next_last; ++yn) prefetch.add_rows(gxg + yn * g.W, g.W, g.H * g.W, g.Cg, true);
        }
        const int64_t prefetch_per_call = ceil_div(prefetch.size(), kernel_calls);
        for (; next_ho <= ho_hi; ++next_ho) {
          const int64_t slot = (next_ho % slots) * Lg;
          for (int64_t c = 0; c < g.Cg; ++c) {
            A* dst = gring + c * gstride + slot;
            stage(dst + pad_left, gg + c * plane + next_ho * g.Wo, g.Wo, g.Wo);
          }
          for (int64_t tap = 0; tap < (w_in_place ? 0 : g.KK); ++tap) {
            A* dst = wring + tap * gstride + slot;
            stage(dst + pad_left, wg + tap * plane + next_ho * g.Wo, g.Wo, g.Wo);
          }
        }
        // The window's grad_out rows, with the w rows of their taps (tap row i of output row ho: in w,
        // or in the ring slot of ho) for each input row of the step.
        int64_t nrows = 0;
        auto w_rows = [&](int64_t ho, int64_t i) { return i * g.K * w_row + (w_in_place ? ho * g.Wo : (ho % slots) * Lg); };
        if (pair) {  // s = d = 1: rows ho = y + p − i of input row y, i + 1 for row y + 1
          for (int64_t ho = std::max<int64_t>(0, y + g.p - g.K + 1); ho <= std::min(g.Ho - 1, y + 1 + g.p); ++ho) {
            const int64_t i0 = y + g.p - ho, i1 = i0 + 1, slot = (ho % slots) * Lg;
            rows[nrows++] = WindowRow{slot, i0 >= 0 && i0 < g.K ? w_rows(ho, i0) : -1, i1 < g.K ? w_rows(ho, i1) : -1};
          }
        } else {
          for (int64_t i = 0; i < g.K; ++i) {
            const int64_t t = y + g.p - i * g.d;
            if (floor_div(t, g.s) * g.s != t) continue;
            const int64_t ho = floor_div(t, g.s);
            if (ho < 0 || ho >= g.Ho) continue;
            rows[nrows++] = WindowRow{(ho % slots) * Lg, w_rows(ho, i), -1};
          }
        }
        for (int64_t r = 0; r < g.s; ++r) {
          const int64_t m_r = ceil_div(g.W - r, g.s);  // columns of this phase
          if (m_r <= 0) continue;
          for (int64_t c0 = 0; c0 < g.Cg; c0 += cb_max) {
            for (int64_t mv = 0; mv < m_r; mv += V::n) {
              const int cb = static_cast<int>(std::min<int64_t>(cb_max, g.Cg - c0));
              prefetch.issue(prefetch_per_call);
              const A* gp = gring + c0 * gstride + mv + pad_left;
              if constexpr (w_in_place) {
                ColumnTaps masked = cols[r];
                masked.wmask = wmask + (r * m_vectors + mv / V::n) * g.K;
                window_sum_dispatch<true, A, NB>(pair, cb, nrows, rows, masked, gp, gstride,
                                                 reinterpret_cast<const A*>(wg) + mv, acc0, acc1);
              } else {
                window_sum_dispatch<false, A, NB>(pair, cb, nrows, rows, cols[r], gp, gstride, wring + mv + pad_left, acc0,
                                                  acc1);
              }
              const int64_t count = std::min<int64_t>(V::n, m_r - mv);
              for (int64_t h = 0; h < nh; ++h) {
                const typename V::type* acc = h == 0 ? acc0 : acc1;
                for (int c = 0; c < cb; ++c)
                  store_lanes<T, A, NB>(gxg + (c0 + c) * g.H * g.W + (y + h) * g.W + mv * g.s + r, acc[c], count, g.s);
              }
            }
          }
        }
      }
    }
  }
  return true;
}

}  // namespace invobench_cpu
