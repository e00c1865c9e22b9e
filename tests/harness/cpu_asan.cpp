// Address/UB-sanitizer check of the C++ kernel: exact-sized heap buffers (so a read one element past
// any tensor is reported), the three kernels at one shape, forward and both gradients compared with a
// naive double-precision loop. It calls the kernels through their C ABI only (cpu/abi.h), compiled
// together with the translation unit that defines it (tests/ops/test_cpu_kernel.py builds it so):
//
//   g++ -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fopenmp -march=native -std=c++17 \
//       -Iinvobench/ops/involution/csrc -o /tmp/cpu_asan tests/harness/cpu_asan.cpp \
//       invobench/ops/involution/csrc/involution_cpu.cpp && /tmp/cpu_asan [B C H W G K s d]
//
// Without arguments it runs a list of edge shapes (partial vectors, stride/dilation phases, the last
// rows of the last tap plane, windows larger than the image). Exit status 0 when every value of every
// shape agrees to 1e-4 (relative to the largest magnitude) and the sanitizers found nothing.
#include "cpu/abi.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

static int check(const int64_t* a) {
  const int64_t B = a[0], C = a[1], H = a[2], W = a[3], G = a[4], K = a[5], s = a[6], d = a[7];
  const int64_t p = d * (K - 1) / 2, Cg = C / G, KK = K * K;
  const int64_t Ho = (H + 2 * p - d * (K - 1) - 1) / s + 1, Wo = (W + 2 * p - d * (K - 1) - 1) / s + 1;
  const int64_t nx = B * C * H * W, nw = B * G * KK * Ho * Wo, no = B * C * Ho * Wo;
  auto alloc = [](int64_t n) { return static_cast<float*>(std::malloc(sizeof(float) * n)); };
  float *x = alloc(nx), *w = alloc(nw), *out = alloc(no), *gout = alloc(no), *gx = alloc(nx), *gw = alloc(nw);
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < nx; ++i) x[i] = u(rng);
  for (int64_t i = 0; i < nw; ++i) w[i] = u(rng);
  for (int64_t i = 0; i < no; ++i) gout[i] = u(rng);
  int st = invobench_involution_forward(0, a, 2, x, w, out);
  st |= invobench_involution_grad_input(0, a, 2, gout, w, gx);
  st |= invobench_involution_grad_kernel(0, a, 2, gout, x, gw);
  if (st) {
    std::fprintf(stderr, "kernel status %d\n", st);
    return 1;
  }
  std::vector<double> ro(no, 0.0), rgx(nx, 0.0), rgw(nw, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ho = 0; ho < Ho; ++ho)
        for (int64_t wo = 0; wo < Wo; ++wo)
          for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < K; ++j) {
              const int64_t y = ho * s - p + i * d, xx = wo * s - p + j * d;
              if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
              const int64_t oi = ((b * C + c) * Ho + ho) * Wo + wo, xi = ((b * C + c) * H + y) * W + xx;
              const int64_t wi = (((b * G + c / Cg) * KK + i * K + j) * Ho + ho) * Wo + wo;
              ro[oi] += double(w[wi]) * x[xi];
              rgx[xi] += double(w[wi]) * gout[oi];
              rgw[wi] += double(x[xi]) * gout[oi];
            }
  auto worst = [](const float* got, const std::vector<double>& ref) {
    double scale = 1e-30, err = 0;
    for (double v : ref) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < ref.size(); ++i) err = std::max(err, std::fabs(got[i] - ref[i]));
    return err / scale;
  };
  const double e0 = worst(out, ro), e1 = worst(gx, rgx), e2 = worst(gw, rgw);
  for (float* q : {x, w, out, gout, gx, gw}) std::free(q);
  std::printf("%s B%lld C%lld %lldx%lld G%lld K%lld s%lld d%lld: forward %.1e grad_input %.1e grad_kernel %.1e\n",
              std::max({e0, e1, e2}) < 1e-4 ? "ok" : "MISMATCH", (long long)B, (long long)C, (long long)H,
              (long long)W, (long long)G, (long long)K, (long long)s, (long long)d, e0, e1, e2);
  return std::max({e0, e1, e2}) < 1e-4 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc == 9) {
    int64_t a[8];
    for (int i = 0; i < 8; ++i) a[i] = std::atoll(argv[i + 1]);
    return check(a);
  }
  if (argc != 1) {
    std::fprintf(stderr, "usage: %s [B C H W G K stride dilation]\n", argv[0]);
    return 2;
  }
  const int64_t shapes[][8] = {
      {1, 32, 7, 7, 2, 7, 1, 1},  {2, 16, 14, 14, 1, 7, 1, 1}, {1, 16, 28, 28, 1, 7, 1, 1}, {1, 8, 9, 45, 2, 5, 2, 1},
      {1, 8, 8, 41, 2, 3, 1, 2},  {2, 24, 10, 9, 2, 7, 1, 1},  {1, 16, 13, 19, 1, 7, 1, 1}, {1, 6, 11, 10, 3, 3, 2, 1},
      {1, 16, 3, 2, 1, 7, 1, 1},  {1, 9, 16, 15, 3, 5, 2, 2},  {3, 32, 5, 5, 2, 3, 1, 1},   {1, 4, 8, 7, 1, 3, 2, 1},
      {1, 4, 5, 7, 1, 1, 1, 1},   {2, 8, 6, 13, 2, 3, 2, 1},  {1, 30, 9, 10, 2, 7, 1, 1}, {2, 14, 8, 12, 1, 5, 1, 1},
  };
  int failed = 0;
  for (const auto& a : shapes) failed |= check(a);
  return failed;
}
