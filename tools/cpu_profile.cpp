// A loop of one kernel of csrc/involution_cpu.cpp on one thread, to sample with perf's software clock
// (the VMs these run on expose no hardware counters, but `-e cpu-clock` sampling works):
//
//   g++ -O3 -g -fopenmp -ffp-contract=fast -march=native -std=c++17 -o /tmp/cpu_profile tools/cpu_profile.cpp
//   perf record -e cpu-clock -F 2000 -g -o /tmp/perf.data /tmp/cpu_profile KERNEL H C
//   perf report -i /tmp/perf.data --no-children --stdio      # then perf annotate for the hot lines
//
// KERNEL 0 forward, 1 grad_input, 2 grad_kernel; B = 8, K = 7, G = C / 16, H = W, stride 1, fp32;
// 400 calls (defaults: forward, H = 14, C = 256).
#include "../invobench/ops/involution/csrc/involution_cpu.cpp"

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  const int which = argc > 1 ? std::atoi(argv[1]) : 0;
  const int64_t H = argc > 2 ? std::atoi(argv[2]) : 14, C = argc > 3 ? std::atoi(argv[3]) : 256;
  const int64_t B = 8, K = 7, G = C / 16;
  const int64_t shape[8] = {B, C, H, H, G, K, 1, 1};
  std::vector<float> x(B * C * H * H, 0.5f), w(B * G * K * K * H * H, 0.1f), out(x.size()), gw(w.size());
  for (int it = 0; it < 400; ++it) {
    int status = 0;
    if (which == 0) status = invobench_involution_forward(0, shape, 1, x.data(), w.data(), out.data());
    if (which == 1) status = invobench_involution_grad_input(0, shape, 1, x.data(), w.data(), out.data());
    if (which == 2) status = invobench_involution_grad_kernel(0, shape, 1, x.data(), x.data(), gw.data());
    if (status) return status;
  }
  std::printf("%g\n", static_cast<double>(out[5] + gw[7]));  // keeps the results live
  return 0;
}
