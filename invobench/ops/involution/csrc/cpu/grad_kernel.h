// The grad-kernel kernel: grad_w from grad_out and x, with its micro-kernel (channel_sum: tap
// accumulators summed over a group's channels) and that micro-kernel's dispatcher.
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

namespace invobench_cpu {

// grad_w of TB taps for one vector of positions, summed over the Cg channels in registers:
//   out0[t] = Σ_c g0[c·gstride] · xp[xoff[t] + c·cstride]   (H0: the first output row of a pair)
//   out1[t] = Σ_c g1[c·gstride] · xp[xoff[t] + c·cstride]   (H1: the second, g1 = g0 + g1off)
// The taps are those whose input row both output rows read (H0 && H1: each x vector used twice) or
// those of one output row. Per channel: one grad_out vector per row and one x vector per tap.
template <int TB, bool H1, typename A, int NB>
inline void channel_sum(int64_t Cg, const int64_t* xoff, const A* xp, int64_t cstride, const A* gp, int64_t gstride,
                        int64_t g1off, typename Vec<A, NB>::type* out0, typename Vec<A, NB>::type* out1) {
  using V = Vec<A, NB>;
  typename V::type a0[TB], a1[TB];
#pragma GCC unroll 16
  for (int t = 0; t < TB; ++t) a0[t] = a1[t] = typename V::type{};
  int64_t off[TB];
#pragma GCC unroll 16
  for (int t = 0; t < TB; ++t) off[t] = xoff[t];
  for (int64_t c = 0; c < Cg; ++c) {
    const typename V::type g0 = V::load(gp + c * gstride);
    typename V::type g1{};
    if constexpr (H1) g1 = V::load(gp + g1off + c * gstride);
    const A* xq = xp + c * cstride;
#pragma GCC unroll 16
    for (int t = 0; t < TB; ++t) {
      typename V::type xv = V::load(xq + off[t]);
      if constexpr (H1) register_barrier(xv);
      a0[t] += g0 * xv;
      if constexpr (H1) a1[t] += g1 * xv;
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < TB; ++t) out0[t] = a0[t];
  if constexpr (H1) {
#pragma GCC unroll 16
    for (int t = 0; t < TB; ++t) out1[t] = a1[t];
  }
}

// Taps per channel_sum call for a row pair: 2 × 6 accumulators. 8 (for AVX-512's 32 registers) was
// no faster, so every build keeps 6.
constexpr int kPairTaps = 6;

// The two dispatchers below map a run-time block size to the micro-kernel compiled for it. They stay
// two plain functions: folding them into one generic dispatcher taking a lambda changed GCC's inlining
// and made the forward slower.
template <typename A, int NB>
inline void channel_sum_dispatch(bool pair, int tb, int64_t Cg, const int64_t* xoff, const A* xp, int64_t cstride,
                                 const A* gp, int64_t gstride, int64_t g1off, typename Vec<A, NB>::type* out0,
                                 typename Vec<A, NB>::type* out1) {
#define INVOBENCH_CS(n, P) channel_sum<n, P, A, NB>(Cg, xoff, xp, cstride, gp, gstride, g1off, out0, out1)
  if (pair) {
    switch (tb) {
      case 1: INVOBENCH_CS(1, true); break;
      case 2: INVOBENCH_CS(2, true); break;
      case 3: INVOBENCH_CS(3, true); break;
      case 4: INVOBENCH_CS(4, true); break;
      case 5: INVOBENCH_CS(5, true); break;
      default: INVOBENCH_CS(6, true); break;
    }
  } else {
    switch (tb) {
      case 1: INVOBENCH_CS(1, false); break;
      case 2: INVOBENCH_CS(2, false); break;
      case 3: INVOBENCH_CS(3, false); break;
      case 4: INVOBENCH_CS(4, false); break;
      case 5: INVOBENCH_CS(5, false); break;
      case 6: INVOBENCH_CS(6, false); break;
      case 7: INVOBENCH_CS(7, false); break;
      default: INVOBENCH_CS(8, false); break;
    }
  }
#undef INVOBENCH_CS
}
static_assert(kBlock == 8 && kPairTaps == 6, "channel_sum_dispatch covers blocks of 1..8 and pairs of 1..6");

// grad_w: for each output row and tap, the sum over the group's channels of grad_out times the
// shifted input, accumulated in registers and stored once. Output rows go in pairs as in the forward:
// the taps of the input rows both windows read are summed for both rows from one x load.
template <typename T, int NB>
bool grad_kernel_kernel(const T* gout, const T* x, T* gw, const Geometry& g, int nthreads) {
  using A = typename AccOf<T>::type;
  using V = Vec<A, NB>;
  const int64_t wo_pad = round_up(g.Wo, V::n);
  const bool pairs = g.s % g.d == 0 && g.Ho > 1;
  const int64_t kshift = g.s / g.d;
  const int64_t images = g.B * g.G;
  const RowSteps steps(pairs, images, g.Ho, nthreads);
  const int64_t R = steps.R, nblk = steps.nblk, rows_per_blk = steps.rows_per_blk;
  const int64_t plane = g.Ho * g.Wo;
  const int64_t extra_rows = (R - 1) * g.s;
  const int64_t ring_n = InputRing<T, A>::elements(g, wo_pad, extra_rows);
  const int64_t pf_n = PrefetchQueue::capacity(R, g.s);
  const int64_t max_taps = R * g.KK;  // per list
  Scratch scratch(Carver::bytes<A>(ring_n) + Carver::bytes<A>(R * g.Cg * wo_pad) + 7 * Carver::bytes<int64_t>(max_taps) +
                      Carver::bytes<int64_t>(g.K) +
                      Carver::bytes<PrefetchQueue::Rows>(pf_n),
                  nthreads);
  if (!scratch.ok()) return false;
  const int64_t kernel_calls = ceil_div(R * g.KK, kBlock) * ceil_div(g.Wo, V::n);  // per row step, about
  // fp32/double read grad_out in place, as the forward reads w, a row's partial last vector too: its
  // lanes past Wo read the next row and give sums that are never stored. Only a step whose reads would
  // pass the end of grad_out (the last rows of the last image) stages its rows, zero-padded; 16-bit
  // types always do, widened. Staging every step was slower (docs/cpu.md).
  constexpr bool g_in_place = std::is_same<T, A>::value;
  const int64_t g_elements = g.B * g.C * plane;

#pragma omp parallel num_threads(nthreads)
  {
    Carver carve(scratch.thread_part());
    InputRing<T, A> ring(g, wo_pad, carve.take<A>(ring_n), extra_rows);
    ring.clear();
    PrefetchQueue prefetch(carve.take<PrefetchQueue::Rows>(pf_n), pf_n);
    A* gbuf = carve.take<A>(R * g.Cg * wo_pad);  // [h][c][wo_pad]
    zero(gbuf, R * g.Cg * wo_pad);               // the columns past Wo stay zero
    // Tap lists of a row step: taps both output rows read (x offset, tap of row 0, tap of row 1), and
    // the taps only row 0 or only row 1 reads (x offset, tap).
    int64_t* both_x = carve.take<int64_t>(max_taps);
    int64_t* both_t0 = carve.take<int64_t>(max_taps);
    int64_t* both_t1 = carve.take<int64_t>(max_taps);
    int64_t* only_x[2] = {carve.take<int64_t>(max_taps), carve.take<int64_t>(max_taps)};
    int64_t* only_t[2] = {carve.take<int64_t>(max_taps), carve.take<int64_t>(max_taps)};
    // Tap column j's offset within a ring slot, once: computed per tap and row step (a division and a
    // modulo each), it showed in grad_kernel's profile.
    int64_t* xcol = carve.take<int64_t>(g.K);
    for (int64_t j = 0; j < g.K; ++j) xcol[j] = ring.col_offset(j);
    typename V::type acc0[kBlock], acc1[kBlock];

#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < images * nblk; ++item) {
      const int64_t img = item / nblk, blk = item % nblk;
      const int64_t b = img / g.G, gi = img % g.G;
      const int64_t h0 = blk * rows_per_blk, h1 = std::min(g.Ho, h0 + rows_per_blk);
      const T* xg = x + (b * g.C + gi * g.Cg) * g.H * g.W;
      const T* gg = gout + (b * g.C + gi * g.Cg) * plane;
      T* gwg = gw + img * g.KK * plane;
      int64_t next_row = h0 * g.s - g.p;
      for (int64_t ho = h0; ho < h1; ho += R) {
        const bool pair = pairs && ho + 1 < h1;
        const int64_t nh = pair ? 2 : 1;
        const int64_t r_lo = ho * g.s - g.p, r_hi = r_lo + (nh - 1) * g.s + (g.K - 1) * g.d;
        for (int64_t r = std::max(next_row, r_lo); r <= r_hi; ++r) ring.fill(xg, r);
        next_row = r_hi + 1;
        // grad_out of the step's rows: channel c of row h at gp + h·grow + c·gstride.
        const int64_t g_reach = (b * g.C + gi * g.Cg + g.Cg - 1) * plane + (ho + nh - 1) * g.Wo + wo_pad;
        const bool g_place = g_in_place && g_reach <= g_elements;
        const A* gp = g_place ? reinterpret_cast<const A*>(gg) + ho * g.Wo : gbuf;
        const int64_t gstride = g_place ? plane : wo_pad, grow = g_place ? g.Wo : g.Cg * wo_pad;
        if (!g_place) {
          for (int64_t h = 0; h < nh; ++h)
            for (int64_t c = 0; c < g.Cg; ++c)
              stage(gbuf + (h * g.Cg + c) * wo_pad, gg + c * plane + (ho + h) * g.Wo, g.Wo, g.Wo);
        }
        prefetch.issue_all();  // what the previous step's calls left
        prefetch.reset();
        if (ho + nh < h1) {
          const int64_t next_nh = std::min<int64_t>(R, h1 - ho - nh);
          for (int64_t h = 0; h < next_nh; ++h) prefetch.add_rows(gg + (ho + nh + h) * g.Wo, g.Wo, plane, g.Cg);
          for (int64_t r = r_hi + 1; r <= std::min(r_hi + next_nh * g.s, g.H - 1); ++r)
            prefetch.add_rows(xg + r * g.W, g.W, g.H * g.W, g.Cg);
          for (int64_t h = 0; h < next_nh; ++h) prefetch.add_rows(gwg + (ho + nh + h) * g.Wo, g.Wo, plane, g.KK, true);
        }
        const int64_t prefetch_per_call = ceil_div(prefetch.size(), kernel_calls);
        int64_t n_both = 0, n_only[2] = {0, 0};
        for (int64_t m = 0; m < g.K + (pair ? kshift : 0); ++m) {
          const int64_t r = r_lo + m * g.d;
          const auto [i0, i1] = pair_tap_rows(m, g.K, kshift, pair);
          if (i0 < 0 && i1 < 0) continue;  // a row between the two windows (s > d): neither reads it
          const int64_t slot = r >= 0 && r < g.H ? ring.slot_offset(r) : 0;
          for (int64_t j = 0; j < g.K; ++j) {
            if (r < 0 || r >= g.H) {  // the tap reads only padding: its gradient is zero
              if (i0 >= 0) std::fill_n(gwg + (i0 * g.K + j) * plane + ho * g.Wo, g.Wo, narrow<T>(A(0)));
              if (i1 >= 0) std::fill_n(gwg + (i1 * g.K + j) * plane + (ho + 1) * g.Wo, g.Wo, narrow<T>(A(0)));
              continue;
            }
            const int64_t xo = slot + xcol[j];
            if (i0 >= 0 && i1 >= 0) {
              both_x[n_both] = xo, both_t0[n_both] = i0 * g.K + j, both_t1[n_both] = i1 * g.K + j, ++n_both;
            } else {
              const int h = i0 >= 0 ? 0 : 1;
              only_x[h][n_only[h]] = xo, only_t[h][n_only[h]] = (h == 0 ? i0 : i1) * g.K + j, ++n_only[h];
            }
          }
        }
        for (int64_t wv = 0; wv < g.Wo; wv += V::n) {
          const int64_t count = std::min<int64_t>(V::n, g.Wo - wv);
          T* out_row = gwg + ho * g.Wo + wv;
          for (int64_t t0 = 0; t0 < n_both; t0 += kPairTaps) {
            const int tb = static_cast<int>(std::min<int64_t>(kPairTaps, n_both - t0));
            prefetch.issue(prefetch_per_call);
            channel_sum_dispatch<A, NB>(true, tb, g.Cg, both_x + t0, ring.buf + wv, ring.cstride, gp + wv, gstride, grow,
                                        acc0, acc1);
            for (int t = 0; t < tb; ++t) {
              store_row<T, A, NB>(out_row + both_t0[t0 + t] * plane, acc0[t], count);
              store_row<T, A, NB>(out_row + both_t1[t0 + t] * plane + g.Wo, acc1[t], count);
            }
          }
          for (int h = 0; h < 2; ++h) {
            for (int64_t t0 = 0; t0 < n_only[h]; t0 += kBlock) {
              const int tb = static_cast<int>(std::min<int64_t>(kBlock, n_only[h] - t0));
              prefetch.issue(prefetch_per_call);
              channel_sum_dispatch<A, NB>(false, tb, g.Cg, only_x[h] + t0, ring.buf + wv, ring.cstride, gp + h * grow + wv,
                                          gstride, 0, acc0, acc1);
              for (int t = 0; t < tb; ++t)
                store_row<T, A, NB>(out_row + only_t[h][t0 + t] * plane + h * g.Wo, acc0[t], count);
            }
          }
        }
      }
    }
  }
  return true;
}

}  // namespace invobench_cpu
