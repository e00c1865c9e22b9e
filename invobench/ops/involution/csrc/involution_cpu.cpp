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
// - The file has a plain C ABI and includes no torch header: involution_cpu_ops.cpp, built into the
//   same library, allocates, validates and calls it as the ops' CPU kernels, and tools/cpu_ab.py and
//   tools/cpu_asan.cpp build it alone.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>
#if defined(__AVX__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace invobench_cpu {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
constexpr const char* kIsa = "avx512";
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
constexpr const char* kIsa = "avx2";
#elif defined(__ARM_NEON)
constexpr int kVecBytes = 16;
constexpr const char* kIsa = "neon";
#else
constexpr int kVecBytes = 16;
constexpr const char* kIsa = "sse/generic";
#endif
// AVX-512 builds also carry 32-byte kernels (AVX-512VL: still 32 registers and masked stores), used
// where they waste fewer lanes on the row's last vector (`use_narrow`): at W = 56 a 16-float
// vector fills 3.5 of 4 vectors, an 8-float one all 7; at W = 7 the 16-float vector is 44 % used.
// On Zen 4, which runs a 512-bit operation as two 256-bit halves, that made the 56×56 and 7×7 cases
// 11–42 % faster (docs/cpu.md); where both widths pad alike (14, 28, 112) the wider one is kept.
#if defined(__AVX512F__) && defined(__AVX512VL__)
constexpr int kNarrowVecBytes = 32;
#else
constexpr int kNarrowVecBytes = kVecBytes;
#endif
// Channel (or tap) accumulators per micro-kernel: 8 accumulators + 2 operands fit 16 vector registers.
constexpr int kBlock = 8;

// A SIMD vector of NB bytes of A (NB = kVecBytes or kNarrowVecBytes).
template <typename A, int NB>
struct SimdOf;
template <int NB>
struct SimdOf<float, NB> {
  typedef float type __attribute__((vector_size(NB)));
};
template <int NB>
struct SimdOf<double, NB> {
  typedef double type __attribute__((vector_size(NB)));
};

template <typename A, int NB>
struct Vec {
  using type = typename SimdOf<A, NB>::type;
  static constexpr int n = NB / static_cast<int>(sizeof(A));
  static inline type load(const A* p) {
    type v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static inline void store(A* p, type v) { std::memcpy(p, &v, sizeof(v)); }
};

// Accumulation type: fp32 for fp32/bf16/fp16, double for double.
template <typename T>
struct AccOf {
  using type = float;  // fp32, bf16, fp16
};
template <>
struct AccOf<double> {
  using type = double;
};

inline int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

struct Geometry {
  int64_t B, C, H, W, G, Cg, K, KK, s, d, p, Ho, Wo;
};

// Scratch for all threads in one 64-byte-aligned allocation (made before the parallel region, so a
// failure is reported to the caller instead of escaping an OpenMP region).
class Scratch {
 public:
  Scratch(int64_t bytes_per_thread, int nthreads) : stride_(round_up(std::max<int64_t>(bytes_per_thread, 64), 64)) {
    data_ = static_cast<char*>(std::aligned_alloc(64, static_cast<size_t>(stride_ * nthreads)));
  }
  ~Scratch() { std::free(data_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  bool ok() const { return data_ != nullptr; }
  char* thread_part() const { return data_ + stride_ * omp_get_thread_num(); }

 private:
  int64_t stride_;
  char* data_;
};

// Carves typed, 64-byte-aligned arrays out of one thread's scratch.
class Carver {
 public:
  explicit Carver(char* base) : at_(base) {}
  template <typename A>
  A* take(int64_t n) {
    A* out = reinterpret_cast<A*>(at_);
    at_ += round_up(n * static_cast<int64_t>(sizeof(A)), 64);
    return out;
  }
  template <typename A>
  static int64_t bytes(int64_t n) {
    return round_up(n * static_cast<int64_t>(sizeof(A)), 64);
  }

 private:
  char* at_;
};

// 16-bit float storage types; arithmetic is always done after widening to fp32.
struct bf16 {
  uint16_t bits;
};
struct fp16 {
  uint16_t bits;
};

inline float widen(float v) { return v; }
inline double widen(double v) { return v; }
inline float widen(bf16 v) {
  const uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// IEEE half -> float (the branch-free method of c10 / FP16 by Maratos Dukhan).
inline float widen(fp16 v) {
  const uint32_t w = static_cast<uint32_t>(v.bits) << 16;
  const uint32_t sign = w & UINT32_C(0x80000000);
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = UINT32_C(0xE0) << 23;
  const float exp_scale = 0x1.0p-112f;
  uint32_t bits = (two_w >> 4) + exp_offset;
  float normalized;
  std::memcpy(&normalized, &bits, 4);
  normalized *= exp_scale;
  const uint32_t magic_mask = UINT32_C(126) << 23;
  const float magic_bias = 0.5f;
  bits = (two_w >> 17) | magic_mask;
  float denormalized;
  std::memcpy(&denormalized, &bits, 4);
  denormalized -= magic_bias;
  const uint32_t denormalized_cutoff = UINT32_C(1) << 27;
  uint32_t nbits, dbits;
  std::memcpy(&nbits, &normalized, 4);
  std::memcpy(&dbits, &denormalized, 4);
  const uint32_t result = sign | (two_w < denormalized_cutoff ? dbits : nbits);
  float f;
  std::memcpy(&f, &result, 4);
  return f;
}

template <typename T>
inline T narrow(float v);
template <>
inline float narrow<float>(float v) {
  return v;
}
template <typename T>
inline T narrow(double v);
template <>
inline double narrow<double>(double v) {
  return v;
}
// float -> bf16, round to nearest even; NaN stays a (quiet) NaN.
template <>
inline bf16 narrow<bf16>(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & UINT32_C(0x7FFFFFFF)) > UINT32_C(0x7F800000)) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};
  u += UINT32_C(0x7FFF) + ((u >> 16) & 1);
  return bf16{static_cast<uint16_t>(u >> 16)};
}
// float -> IEEE half, round to nearest even (c10's fp16_ieee_from_fp32_value).
template <>
inline fp16 narrow<fp16>(float f) {
  const float scale_to_inf = 0x1.0p+112f;
  const float scale_to_zero = 0x1.0p-110f;
  uint32_t w;
  std::memcpy(&w, &f, 4);
  float abs_f;
  const uint32_t abs_bits = w & UINT32_C(0x7FFFFFFF);
  std::memcpy(&abs_f, &abs_bits, 4);
  float base = (abs_f * scale_to_inf) * scale_to_zero;
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & UINT32_C(0x80000000);
  uint32_t bias = shl1_w & UINT32_C(0xFF000000);
  if (bias < UINT32_C(0x71000000)) bias = UINT32_C(0x71000000);
  const uint32_t bias_bits = (bias >> 1) + UINT32_C(0x07800000);
  float bias_f;
  std::memcpy(&bias_f, &bias_bits, 4);
  base = bias_f + base;
  uint32_t bits;
  std::memcpy(&bits, &base, 4);
  const uint32_t exp_bits = (bits >> 13) & UINT32_C(0x00007C00);
  const uint32_t mantissa_bits = bits & UINT32_C(0x00000FFF);
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return fp16{static_cast<uint16_t>((sign >> 16) | (shl1_w > UINT32_C(0xFF000000) ? UINT16_C(0x7E00) : nonsign))};
}

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

// The next row step's cache lines, requested a few at a time between micro-kernel calls: a burst of
// K²·Wo/16 prefetches at once overflows the core's miss buffers, and prefetches that find no free
// buffer are dropped. Reads are fetched into L2, not L1 (locality 1: prefetcht2; our reading, with no
// performance counters on these hosts: the next step's lines then no longer evict the current step's
// ring and w rows from the 32 KiB L1). On Zen 4 that measured +9–13 % forward, +18–33 % grad_input,
// +3–7 % grad_kernel at the main shape on 2 threads, +50 % / +37 % forward / grad_input at B8 C128
// 28², and within ±7 % on the cache-resident batch-1 shapes (tools/cpu_ab.py, interleaved A/B).
// Issuing all of a step's prefetches at once, to L2, was slower again (forward 40.5 → 25.0 GMAC/s in
// the same run).
class PrefetchQueue {
 public:
  // A block of rows to prefetch: `rows` rows of `bytes` bytes, `stride` bytes apart.
  struct Rows {
    const char* p;
    int64_t bytes, stride, rows;
    bool write;
  };
  // Row blocks one step can queue: the forward and grad_kernel add R rows of w (or grad_out), R·s of
  // x and R of the output; grad_input up to R + 1 rows of grad_out and of w and R of grad_x.
  static int64_t capacity(int64_t R, int64_t s) { return R * (s + 4) + 4; }
  PrefetchQueue(Rows* blocks, int64_t capacity) : blocks_(blocks), capacity_(capacity) {}
  void reset() { n_ = next_ = row_ = lines_ = 0, line_ = 64, last_ = 0; }
  // Rows of `n` elements at p + r·stride for r < rows: one row of each of `rows` planes of `stride`
  // elements (taps of w, channels of x or of the output). `write`: lines the next step stores to,
  // fetched for ownership (prefetchw) so its stores do not wait for the read that a store to a line
  // not in cache needs. Planes under kMinPlaneBytes are not prefetched at all: a 7×7 fp32 plane is
  // 196 B, so a row step queued about as many lines as it does FMA vectors, several of them twice,
  // and the hardware prefetchers follow planes that small on their own. Measured on the Zen 4 VM
  // (single calls interleaved with other variants', 2 threads, tools/cpu_threads_ab.py; docs/cpu.md,
  // "Prefetching small planes"): B1 C512 7² forward 0.066 → 0.040 ms, B1 C256 14² 0.081 → 0.057;
  // B8 C256 16² (1 KiB planes) was 20 % slower without, so 16² and up keep it.
  // The queue holds the blocks, not their line addresses: issue() walks them line by line. Until
  // 2026-12-02 add_rows wrote every line's address to an array, about 700 per row step at the main
  // shape; that loop and the array's reads held a third of grad_input's own samples and a fifth of
  // grad_kernel's (perf, tools/cpu_profile.cpp). Measured (tools/cpu_ab.py, 2 threads, GMAC/s,
  // forward / grad_input / grad_kernel, interleaved with two copies of the old build): main shape
  // 52.0 / 41.1 / 44.7 → 61.8 / 48.4 / 49.9; B8 C64 56² 54.2 / 42.6 / 46.9 → 63.9 / 48.5 / 48.3; B8 C128
  // 28² +15 / +12 / +4 %; at stride 2 mixed: B1 C64 112² 26.1 / 20.9 / 18.1 → 24.5 / 22.2 / 22.7.
  // next_row is forced inline: out of line it cost that stride-2 forward another 10 %.
  static constexpr int64_t kMinPlaneBytes = 1024;
  template <typename T>
  void add_rows(const T* p, int64_t n, int64_t stride, int64_t rows, bool write = false) {
    const int64_t elem = static_cast<int64_t>(sizeof(T));
    if (stride * elem < kMinPlaneBytes || n <= 0 || rows <= 0 || n_ == capacity_) return;  // a hint: may drop
    const Rows b{reinterpret_cast<const char*>(p), n * elem, stride * elem, rows, write};
    blocks_[n_++] = b;
    if (b.stride % 64 == 0) {  // every row starts at the same offset in its line
      lines_ += rows * lines_of(b.p, b.bytes);
    } else {
      for (int64_t r = 0; r < rows; ++r) lines_ += lines_of(b.p + r * b.stride, b.bytes);
    }
  }
  int64_t size() const { return lines_; }  // lines queued
  void issue(int64_t count) {
    for (; count > 0; --count) {
      if (line_ > last_ && !next_row()) return;
      if (write_)
        __builtin_prefetch(reinterpret_cast<const char*>(line_), 1, 3);
      else
        __builtin_prefetch(reinterpret_cast<const char*>(line_), 0, 1);  // to L2 (prefetcht2), see above
      line_ += 64;
    }
  }
  void issue_all() { issue(std::numeric_limits<int64_t>::max()); }

 private:
  static int64_t lines_of(const char* q, int64_t bytes) {
    const uintptr_t first = reinterpret_cast<uintptr_t>(q) >> 6, last = reinterpret_cast<uintptr_t>(q + bytes - 1) >> 6;
    return static_cast<int64_t>(last - first) + 1;
  }
  // Moves to the next queued row; false when none is left.
  __attribute__((always_inline)) bool next_row() {
    for (; next_ < n_; ++next_, row_ = 0) {
      const Rows& b = blocks_[next_];
      if (row_ < b.rows) {
        const char* q = b.p + row_++ * b.stride;
        line_ = reinterpret_cast<uintptr_t>(q) & ~uintptr_t(63);
        last_ = reinterpret_cast<uintptr_t>(q + b.bytes - 1) & ~uintptr_t(63);
        write_ = b.write;
        return true;
      }
    }
    return false;
  }
  Rows* blocks_;
  int64_t capacity_, n_ = 0, next_ = 0, row_ = 0, lines_ = 0;
  uintptr_t line_ = 64, last_ = 0;  // the current row's next line and its last (line_ > last_: none)
  bool write_ = false;
};

// The first `count` lanes of `v` to dst[0..count) with one masked store, where the ISA has one.
// A partial vector is every row's last at 7×7, 14×14 and 28×28, and grad_kernel stores K² of them
// per row: lane by lane through the stack they cost grad_kernel up to 30 % at those sizes
// (interleaved A/B, tools/cpu_ab.py). Returns false where there is no masked store (the caller
// falls back).
template <typename A, int NB>
inline bool masked_store(A* dst, typename Vec<A, NB>::type v, int64_t count) {
  constexpr bool f32 = std::is_same<A, float>::value, f64 = std::is_same<A, double>::value;
#if defined(__AVX512F__)
  if constexpr (NB == 64 && f32) {
    _mm512_mask_storeu_ps(dst, static_cast<__mmask16>((1u << count) - 1), (__m512)v);
    return true;
  } else if constexpr (NB == 64 && f64) {
    _mm512_mask_storeu_pd(dst, static_cast<__mmask8>((1u << count) - 1), (__m512d)v);
    return true;
  }
#endif
#if defined(__AVX512VL__)
  if constexpr (NB == 32 && f32) {
    _mm256_mask_storeu_ps(dst, static_cast<__mmask8>((1u << count) - 1), (__m256)v);
    return true;
  } else if constexpr (NB == 32 && f64) {
    _mm256_mask_storeu_pd(dst, static_cast<__mmask8>((1u << count) - 1), (__m256d)v);
    return true;
  }
#elif defined(__AVX__)
  // Lane k is stored where its mask element has the top bit set: a window into {-1 × n, 0 × n}.
  if constexpr (NB == 32 && f32) {
    alignas(32) static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    _mm256_maskstore_ps(dst, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - count)), (__m256)v);
    return true;
  } else if constexpr (NB == 32 && f64) {
    alignas(32) static const int64_t table[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
    _mm256_maskstore_pd(dst, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 4 - count)), (__m256d)v);
    return true;
  }
#endif
  (void)dst, (void)v, (void)count;
  return false;
}

// A vector whose lane k is p[k] where bit k of `bits` is set and zero elsewhere; the memory of the
// zero lanes is not read, so it may lie outside any allocation. grad_input reads w in place with it: a
// vector of columns near the image's edge has taps whose columns fall outside the row. AVX-512 (mask
// registers: the load costs what an unmasked one does) and AVX2 (vmaskmov, the mask vector built from
// the bits: three more instructions) builds; elsewhere, AVX-512F without VL (Xeon Phi) included,
// kHasMaskedLoad is false and grad_input stages w in a zero-padded ring instead.
#if (defined(__AVX512F__) && defined(__AVX512VL__)) || (defined(__AVX2__) && !defined(__AVX512F__))
constexpr bool kHasMaskedLoad = true;
#else
constexpr bool kHasMaskedLoad = false;
#endif
template <typename A, int NB>
inline typename Vec<A, NB>::type masked_load(const A* p, uint32_t bits) {
  using VT = typename Vec<A, NB>::type;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  constexpr bool f32 = std::is_same<A, float>::value;
  if constexpr (NB == 64 && f32) return (VT)_mm512_maskz_loadu_ps(static_cast<__mmask16>(bits), p);
  else if constexpr (NB == 64) return (VT)_mm512_maskz_loadu_pd(static_cast<__mmask8>(bits), p);
  else if constexpr (NB == 32 && f32) return (VT)_mm256_maskz_loadu_ps(static_cast<__mmask8>(bits), p);
  else return (VT)_mm256_maskz_loadu_pd(static_cast<__mmask8>(bits), p);
#elif defined(__AVX2__) && !defined(__AVX512F__)
  static_assert(NB == 32, "AVX2 builds have 32-byte vectors only");
  if constexpr (std::is_same<A, float>::value) {
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i mask = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), lane_bit), lane_bit);
    return (VT)_mm256_maskload_ps(p, mask);
  } else {
    const __m256i lane_bit = _mm256_setr_epi64x(1, 2, 4, 8);
    const __m256i mask = _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(bits), lane_bit), lane_bit);
    return (VT)_mm256_maskload_pd(p, mask);
  }
#else
  static_assert(sizeof(A) == 0, "masked_load needs AVX-512VL or AVX2: callers check kHasMaskedLoad");
  (void)p, (void)bits;
  return VT{};
#endif
}

// Store `count` (≤ one vector) lanes of `v` to dst[k·step].
template <typename T, typename A, int NB>
inline void store_lanes(T* dst, typename Vec<A, NB>::type v, int64_t count, int64_t step) {
  if constexpr (std::is_same<T, A>::value) {
    if (count == Vec<A, NB>::n && step == 1) {
      Vec<A, NB>::store(dst, v);
      return;
    }
  }
  A lanes[Vec<A, NB>::n];
  Vec<A, NB>::store(lanes, v);
  for (int64_t k = 0; k < count; ++k) dst[k * step] = narrow<T>(lanes[k]);
}

// Store the first `count` lanes of `v` to dst[0..count): forward and grad_kernel rows. A partial
// vector goes through one masked store where the ISA has one. grad_input keeps store_lanes: with the
// masked store it measured 4–12 % slower in 7 of 8 interleaved A/B runs at 7²–28², for a reason we
// have not found (its stores are rarer than grad_kernel's: Cg per K² FMAs, not K² per Cg).
template <typename T, typename A, int NB>
inline void store_row(T* dst, typename Vec<A, NB>::type v, int64_t count) {
  if constexpr (std::is_same<T, A>::value) {
    if (count < Vec<A, NB>::n && masked_store<A, NB>(dst, v, count)) return;
  }
  store_lanes<T, A, NB>(dst, v, count, 1);
}

// Keeps `v` in a register: an empty asm that claims to read and write it, so the compiler cannot fold
// the load that produced it into each instruction that uses it.
template <typename VT>
inline void register_barrier(VT& v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+x"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(v));
#else
  (void)v;
#endif
}

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
// no faster (3 % slower at the main shape in one tools/cpu_ab.py run, within noise), so every build keeps 6.
constexpr int kPairTaps = 6;

// The two dispatchers below map a run-time block size to the micro-kernel compiled for it. They stay
// two plain functions: folding them into one generic dispatcher taking a lambda changed GCC's inlining
// and made the forward 10-30 % slower in an interleaved A/B (tools/cpu_ab.py).
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
// times. On Zen 4 that measured forward +3–11 % and grad_input +2–11 % over 6 at the main shape and
// the batch-1 stage shapes (grad_input −2 % at 7², within noise); 12 was −9 to −18 % in cache
// (tools/cpu_ab.py, interleaved A/B). grad_kernel's tap blocks stay at kPairTaps.
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
  // types always do, widened. Staging every step measured 0–12 % slower (B8 C512 7² the most; docs/cpu.md).
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
    // modulo each), it held 4 % of grad_kernel's samples at B8 C128 28² (perf).
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
  // staged into a zero-padded ring. The ring copied all of w once per call: at B8 C128 28² that copy
  // was a quarter of grad_input's time (perf). grad_out stays staged: its zero padding is what makes
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


// The C ABI: plain pointers to NCHW-contiguous tensors that the caller (involution_cpu_ops.cpp's
// check_args) has validated and allocated. No torch headers here, so this file builds alone in seconds.
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

// Threads worth waking for a call: 128K MACs each (≈ 5 µs of work) or more, so a small call does not
// pay a fork/join for less. Measured on the 2-core Zen 4 VM, single calls interleaved among other
// variants' (tools/cpu_threads_ab.py; docs/cpu.md, "Threads for small calls"): two threads were faster
// from 0.3M MACs up (B1 C512 7², 1.2M: forward 0.09 → 0.05 ms), and at 0.15M faster in one run and
// slower in another.
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
