// Involution apply (spec §1) on the CPU: forward, grad-input and grad-kernel.
//
//   out[b, g·Cg+c, ho, wo] = Σ_{i,j<K} w[b, g, iK+j, ho, wo] · x[b, g·Cg+c, ho·s−p+i·d, wo·s−p+j·d]
//
// Design (docs/cpu.md has the measurements behind it):
// - The operator is memory-bound: the per-pixel kernel w (B·G·K²·Ho·Wo) is the largest tensor, so
//   each value of w is read from memory once, staged in a small fp32 buffer, and reused by all Cg
//   channels of its group from registers (a micro-kernel of CB channel accumulators × one SIMD vector).
// - SIMD runs along W (the contiguous axis of NCHW) with GCC/Clang vector extensions: AVX-512,
//   AVX2 or SSE/NEON width follows the build's -march, and any compiler target still gets correct code.
//   AVX-512 builds hold 64- and 32-byte kernels and pick per call the one that pads a row less.
// - Zero padding, stride and dilation are resolved once, when input rows are copied into a per-thread
//   ring buffer: each row is zero-padded and split into `stride` phases (column m·s+ph → phase ph,
//   index m), so every tap reads a contiguous, in-bounds vector and the inner loop has no branches.
// - Output rows go in pairs (when the stride is a multiple of the dilation, always at s = d = 1): the
//   two 7×7 windows share 6 input rows, so each x vector loaded feeds both rows' FMAs. A pair keeps
//   2 × 6 channel accumulators (+ 2 w + 1 x of the 16 AVX2 registers; 2 × 8 of AVX-512's 32):
//   2 + 6 loads per 12 FMAs, where one row of 8 channels needed 1 + 8 per 8 and was bound by the load
//   ports. grad-kernel pairs the same way (per channel: 2 grad_out + 6 x loads for 12 FMAs);
//   grad-input pairs input rows.
// - OpenMP splits batch × group × row blocks; each thread walks its rows in order and the ring keeps
//   the rows a window needs, so every input row is copied once per block (halo only at block edges).
// - The next row step's input lines are prefetched a few per micro-kernel call, and the lines it will
//   store to are prefetched for writing (prefetchw): grad-kernel writes as much as it reads (grad_w is
//   as large as w), and without that each store to a line not in cache waits for its read.
// - bf16/fp16 are widened to fp32 when staged and rounded once on store; double runs in double (gradcheck).
// - grad-input is computed in gather form (each input pixel sums over the output pixels that read it),
//   the same micro-kernel as the forward with grad_out staged in a padded ring and w read in place with
//   masked loads (AVX-512, AVX2; elsewhere staged in a padded ring too): no scatter, no atomics.
// - GCC folds a load into every FMA that uses it when it can; `register_barrier` keeps a shared x
//   vector in a register, or the pair's second FMA would load it again.
// - Inputs that are not NCHW-contiguous (channels_last, slices) are made contiguous by the caller
//   (`.contiguous()` in involution_cpu_ops.cpp); outputs are NCHW-contiguous.
// - Layout: cpu/abi.h declares the plain C ABI, which this file defines; the kernels live in headers
//   under cpu/, one per concern (simd, convert, geometry, scratch, staging, prefetch, store,
//   window_sum, forward, grad_input, grad_kernel). No torch header is included, so this file builds
//   alone in seconds: involution_cpu_ops.cpp, built into the same library, allocates, validates and
//   calls the ABI as the ops' CPU kernels, and tests/harness/cpu_asan.cpp is linked against it.
#include "cpu/abi.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "cpu/convert.h"
#include "cpu/forward.h"
#include "cpu/geometry.h"
#include "cpu/grad_input.h"
#include "cpu/grad_kernel.h"
#include "cpu/simd.h"

namespace invobench_cpu {

// The C ABI's dtype and status codes (cpu/abi.h lists them), its geometry and its dispatch to the kernels.
enum DType { kFloat32 = 0, kFloat64 = 1, kBFloat16 = 2, kFloat16 = 3 };
enum Status { kOk = 0, kBadArgument = 1, kOutOfMemory = 2 };

Geometry geometry_from(const int64_t* shape) {
  // shape = {B, C, H, W, G, K, stride, dilation}
  Geometry g;
  g.B = shape[0], g.C = shape[1], g.H = shape[2], g.W = shape[3], g.G = shape[4];
  g.K = shape[5], g.s = shape[6], g.d = shape[7];
  g.KK = g.K * g.K, g.p = g.d * (g.K - 1) / 2;
  g.Cg = g.G > 0 ? g.C / g.G : 0;
  g.Ho = (g.H + 2 * g.p - g.d * (g.K - 1) - 1) / g.s + 1;
  g.Wo = (g.W + 2 * g.p - g.d * (g.K - 1) - 1) / g.s + 1;
  return g;
}

bool valid(const Geometry& g) {
  return g.B >= 0 && g.G >= 1 && g.C >= 0 && g.C % g.G == 0 && g.K >= 1 && g.K % 2 == 1 && g.s >= 1 && g.d >= 1 &&
         g.H >= 1 && g.W >= 1 && g.Ho >= 1 && g.Wo >= 1;
}

// Threads worth waking for a call: 128K MACs each or more, so a small call does not pay a fork/join
// for less work than it is worth (docs/cpu.md, "Threads for small calls", has the runs behind the
// threshold).
// -DINVOBENCH_MACS_PER_THREAD_SHIFT=N (2^N MACs per thread) is for A/B runs of that choice.
#ifndef INVOBENCH_MACS_PER_THREAD_SHIFT
#define INVOBENCH_MACS_PER_THREAD_SHIFT 17
#endif
int useful_threads(const Geometry& g, int nthreads) {
  const int64_t macs = g.B * g.C * g.Ho * g.Wo * g.KK;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nthreads, macs >> INVOBENCH_MACS_PER_THREAD_SHIFT)));
}

template <template <typename> class Kernel>
int run(int dtype, const int64_t* shape, int nthreads, const void* a, const void* b, void* out) {
  const Geometry g = geometry_from(shape);
  if (!valid(g) || nthreads < 1) return kBadArgument;
  if (g.B == 0 || g.C == 0) return kOk;
  nthreads = useful_threads(g, nthreads);
  bool ok = false;
  switch (dtype) {
    case kFloat32: ok = Kernel<float>::run(a, b, out, g, nthreads); break;
    case kFloat64: ok = Kernel<double>::run(a, b, out, g, nthreads); break;
    case kBFloat16: ok = Kernel<bf16>::run(a, b, out, g, nthreads); break;
    case kFloat16: ok = Kernel<fp16>::run(a, b, out, g, nthreads); break;
    default: return kBadArgument;
  }
  return ok ? kOk : kOutOfMemory;
}

// The vector width for rows of `extent` elements of A: the narrow one where it pads the row to fewer
// lanes (see kNarrowVecBytes), else the widest.
template <typename A>
inline bool use_narrow(int64_t extent) {
  constexpr int64_t wide = kVecBytes / sizeof(A), narrow = kNarrowVecBytes / sizeof(A);
  return narrow < wide && round_up(extent, narrow) < round_up(extent, wide);
}

template <typename T>
struct Forward {
  static bool run(const void* x, const void* w, void* out, const Geometry& g, int n) {
    auto kernel = use_narrow<typename AccOf<T>::type>(g.Wo) ? forward_kernel<T, kNarrowVecBytes> : forward_kernel<T, kVecBytes>;
    return kernel(static_cast<const T*>(x), static_cast<const T*>(w), static_cast<T*>(out), g, n);
  }
};
template <typename T>
struct GradInput {
  static bool run(const void* gout, const void* w, void* gx, const Geometry& g, int n) {
    // Its vectors run along the columns of one stride phase of x: ceil(W / s) of them.
    auto kernel = use_narrow<typename AccOf<T>::type>(ceil_div(g.W, g.s)) ? grad_input_kernel<T, kNarrowVecBytes>
                                                                           : grad_input_kernel<T, kVecBytes>;
    return kernel(static_cast<const T*>(gout), static_cast<const T*>(w), static_cast<T*>(gx), g, n);
  }
};
template <typename T>
struct GradKernel {
  static bool run(const void* gout, const void* x, void* gw, const Geometry& g, int n) {
    auto kernel = use_narrow<typename AccOf<T>::type>(g.Wo) ? grad_kernel_kernel<T, kNarrowVecBytes>
                                                            : grad_kernel_kernel<T, kVecBytes>;
    return kernel(static_cast<const T*>(gout), static_cast<const T*>(x), static_cast<T*>(gw), g, n);
  }
};

}  // namespace invobench_cpu

extern "C" {

// out (B, C, Ho, Wo) = involution(x (B, C, H, W), w (B, G, K², Ho, Wo)).
int invobench_involution_forward(int dtype, const int64_t* shape, int nthreads, const void* x, const void* w, void* out) {
  return invobench_cpu::run<invobench_cpu::Forward>(dtype, shape, nthreads, x, w, out);
}

// grad_x (B, C, H, W) from grad_out (B, C, Ho, Wo) and w.
int invobench_involution_grad_input(int dtype, const int64_t* shape, int nthreads, const void* grad_out, const void* w,
                                    void* grad_x) {
  return invobench_cpu::run<invobench_cpu::GradInput>(dtype, shape, nthreads, grad_out, w, grad_x);
}

// grad_w (B, G, K², Ho, Wo) from grad_out and x.
int invobench_involution_grad_kernel(int dtype, const int64_t* shape, int nthreads, const void* grad_out, const void* x,
                                     void* grad_w) {
  return invobench_cpu::run<invobench_cpu::GradKernel>(dtype, shape, nthreads, grad_out, x, grad_w);
}

const char* invobench_involution_build_info() {
  static const std::string info = std::string("isa=") + invobench_cpu::kIsa +
                                  " vector_bytes=" + std::to_string(invobench_cpu::kVecBytes) +
                                  (invobench_cpu::kNarrowVecBytes < invobench_cpu::kVecBytes
                                       ? "," + std::to_string(invobench_cpu::kNarrowVecBytes)
                                       : std::string()) +
                                  " block=" + std::to_string(invobench_cpu::kBlock) +
                                  " pair_block=" + std::to_string(invobench_cpu::kPairBlock) +
                                  " openmp=" + std::to_string(_OPENMP);
  return info.c_str();
}

}  // extern "C"
