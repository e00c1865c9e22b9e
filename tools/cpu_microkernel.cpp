// The forward micro-kernel alone on L1-resident data (no staging, no memory traffic):
//   g++ -O3 -fopenmp -ffp-contract=fast -march=native -std=c++17 -o /tmp/mk tools/cpu_microkernel.cpp && /tmp/mk
// Prints vector FMAs per ns and GMAC/s for the row-pair kernel (2 rows × 8, × 6 and × 4 channels; the
// kernel takes 8 on AVX-512, 6 elsewhere: kPairBlock) and the single-row kernel (8 channels), at the main shape's geometry (K = 7, 56 columns, ring row 64 floats),
// with the vector width the kernel picks at 56 columns (kNarrowVecBytes: 32 bytes on AVX-512 and AVX2).
#include "../invobench/ops/involution/csrc/involution_cpu.cpp"

#include <chrono>
#include <cstdio>

using namespace invobench_cpu;

int main() {
  constexpr int NB = kNarrowVecBytes;
  using V = Vec<float, NB>;
  const int64_t K = 7, L = 64, slots = 8, cstride = slots * L + 16, plane = 56 * 56;
  std::vector<float> ring(16 * cstride, 1.0f), w(49 * plane + 64, 0.5f);
  int64_t xcol[7], wcol[7];
  for (int j = 0; j < 7; ++j) xcol[j] = j, wcol[j] = j * plane;
  const ColumnTaps cols{7, xcol, wcol};
  WindowRow rows[8];  // 8 input rows: the first only for output row 0, the last only for row 1
  for (int m = 0; m < 8; ++m) rows[m] = WindowRow{m * L, m < 7 ? m * K * plane : -1, m >= 1 ? (m - 1) * K * plane + 56 : -1};
  alignas(64) V::type a0[8], a1[8];
  const char* names[] = {"pair x 6 channels", "single row x 8 channels", "pair x 4 channels", "pair x 6, aligned taps only",
                         "pair x 8 channels"};
  const int out_rows[] = {2, 1, 2, 2, 2}, channels[] = {6, 8, 4, 6, 8};
  for (int variant = 0; variant < 5; ++variant) {
    double best = 1e9;
    for (int rep = 0; rep < 50; ++rep) {
      const int iters = 2000;
      const auto t0 = std::chrono::steady_clock::now();
      for (int it = 0; it < iters; ++it) {
        const int64_t wv = variant == 3 ? 0 : (it % 7) * V::n % 56;  // walk the 7 vectors of a row, as the kernel does
        if (variant == 0) window_sum<6, true, float, NB>(8, rows, cols, ring.data() + wv, cstride, w.data() + wv, a0, a1);
        if (variant == 1) window_sum<8, false, float, NB>(8, rows, cols, ring.data() + wv, cstride, w.data() + wv, a0, a1);
        if (variant == 2) window_sum<4, true, float, NB>(8, rows, cols, ring.data() + wv, cstride, w.data() + wv, a0, a1);
        if (variant == 3) window_sum<6, true, float, NB>(8, rows, cols, ring.data() + wv, cstride, w.data() + wv, a0, a1);
        if (variant == 4) window_sum<8, true, float, NB>(8, rows, cols, ring.data() + wv, cstride, w.data() + wv, a0, a1);
        asm volatile("" ::"r"(a0), "r"(a1) : "memory");
      }
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters);
    }
    // Vector FMAs per call: 49 taps for each output row and channel (a pair's window has 6 rows both
    // output rows read and 2 that one reads)
    const double fmas = out_rows[variant] * channels[variant] * 49.0;
    std::printf("%-28s %6.1f ns/call  %.2f vector FMA/ns  %5.1f GMAC/s\n", names[variant], best * 1e9, fmas / best / 1e9,
                fmas * V::n / best / 1e9);
  }
}
