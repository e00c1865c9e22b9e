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
// - Zero padding, stride and dilation are resolved once, when input rows are copied into a per-thread
//   ring buffer: each row is zero-padded and split into `stride` phases (column m·s+ph → phase ph,
//   index m), so every tap reads a contiguous, in-bounds vector and the inner loop has no branches.
// - OpenMP splits batch × group × row blocks; each thread walks its rows in order and the ring keeps
//   the K·d rows a window needs, so every input row is copied once per block (halo only at block edges).
// - bf16/fp16 are widened to fp32 when staged and rounded once on store; double runs in double (gradcheck).
// - grad-input is computed in gather form (each input pixel sums over the output pixels that read it),
//   the same micro-kernel as the forward with w and grad_out staged in padded rings: no scatter, no atomics.
// - Inputs that are not NCHW-contiguous (channels_last, slices) are made contiguous by the caller
//   (`.contiguous()` in cpu.py); outputs are NCHW-contiguous.
// - The file has a plain C ABI and includes no torch header, so the first-use build takes seconds,
//   not the minutes that <torch/extension.h> costs; cpu.py allocates, validates and calls it via ctypes.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

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
// Channel (or tap) accumulators per micro-kernel: 8 accumulators + 2 operands fit 16 vector registers.
constexpr int kBlock = 8;

template <typename A>
struct SimdOf;
template <>
struct SimdOf<float> {
  typedef float type __attribute__((vector_size(kVecBytes)));
};
template <>
struct SimdOf<double> {
  typedef double type __attribute__((vector_size(kVecBytes)));
};

template <typename A>
struct Vec {
  using type = typename SimdOf<A>::type;
  static constexpr int n = kVecBytes / static_cast<int>(sizeof(A));
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
// buffer are dropped.
class PrefetchQueue {
 public:
  template <typename T>
  static int64_t capacity(int64_t rows, int64_t n) {
    return rows * (n * static_cast<int64_t>(sizeof(T)) / 64 + 2);
  }
  explicit PrefetchQueue(const char** lines) : lines_(lines) {}
  void reset() { n_ = next_ = 0; }
  template <typename T>
  void add_rows(const T* p, int64_t n, int64_t stride, int64_t rows) {
    const int64_t bytes = n * static_cast<int64_t>(sizeof(T));
    for (int64_t r = 0; r < rows; ++r) {
      const char* q = reinterpret_cast<const char*>(p + r * stride);
      const uintptr_t first = reinterpret_cast<uintptr_t>(q) & ~uintptr_t(63);
      const uintptr_t last = reinterpret_cast<uintptr_t>(q + bytes - 1) & ~uintptr_t(63);
      for (uintptr_t line = first; line <= last; line += 64) lines_[n_++] = reinterpret_cast<const char*>(line);
    }
  }
  int64_t size() const { return n_; }
  void issue(int64_t count) {
    for (; count > 0 && next_ < n_; --count) __builtin_prefetch(lines_[next_++], 0, 3);
  }
  void issue_all() { issue(n_ - next_); }

 private:
  const char** lines_;
  int64_t n_ = 0, next_ = 0;
};

// Store `count` (≤ one vector) lanes of `v` to dst[k·step].
template <typename T, typename A>
inline void store_lanes(T* dst, typename Vec<A>::type v, int64_t count, int64_t step) {
  if constexpr (std::is_same<T, A>::value) {
    if (count == Vec<A>::n && step == 1) {
      Vec<A>::store(dst, v);
      return;
    }
  }
  A lanes[Vec<A>::n];
  Vec<A>::store(lanes, v);
  for (int64_t k = 0; k < count; ++k) dst[k * step] = narrow<T>(lanes[k]);
}

// acc[c] = Σ_t wp[woff[t]] · xp[xoff[t] + c·cstride] for one vector of positions, CB channels.
// The forward and grad-input share it: each w vector is loaded once and used by CB channels.
template <int CB, typename A>
inline void tap_sum(int nt, const int64_t* xoff, const int64_t* woff, const A* xp, const A* wp, int64_t cstride,
                    typename Vec<A>::type* out) {
  using V = Vec<A>;
  typename V::type acc[CB];
#pragma GCC unroll 16
  for (int c = 0; c < CB; ++c) acc[c] = typename V::type{};
  for (int t = 0; t < nt; ++t) {
    const typename V::type wv = V::load(wp + woff[t]);
    const A* xq = xp + xoff[t];
#pragma GCC unroll 16
    for (int c = 0; c < CB; ++c) acc[c] += wv * V::load(xq + c * cstride);
  }
#pragma GCC unroll 16
  for (int c = 0; c < CB; ++c) out[c] = acc[c];
}

// acc[t] = Σ_{c<Cg} gp[c·gstride] · xp[xoff[t] + c·cstride]: TB taps of grad_w for one vector of positions.
template <int TB, typename A>
inline void channel_sum(int64_t Cg, const int64_t* xoff, const A* xp, int64_t cstride, const A* gp, int64_t gstride,
                        typename Vec<A>::type* out) {
  using V = Vec<A>;
  typename V::type acc[TB];
#pragma GCC unroll 16
  for (int t = 0; t < TB; ++t) acc[t] = typename V::type{};
  int64_t off[TB];
#pragma GCC unroll 16
  for (int t = 0; t < TB; ++t) off[t] = xoff[t];
  for (int64_t c = 0; c < Cg; ++c) {
    const typename V::type gv = V::load(gp + c * gstride);
    const A* xq = xp + c * cstride;
#pragma GCC unroll 16
    for (int t = 0; t < TB; ++t) acc[t] += gv * V::load(xq + off[t]);
  }
#pragma GCC unroll 16
  for (int t = 0; t < TB; ++t) out[t] = acc[t];
}

#define INVOBENCH_DISPATCH_BLOCK(n, FN, ...) \
  switch (n) {                               \
    case 1: FN<1>(__VA_ARGS__); break;       \
    case 2: FN<2>(__VA_ARGS__); break;       \
    case 3: FN<3>(__VA_ARGS__); break;       \
    case 4: FN<4>(__VA_ARGS__); break;       \
    case 5: FN<5>(__VA_ARGS__); break;       \
    case 6: FN<6>(__VA_ARGS__); break;       \
    case 7: FN<7>(__VA_ARGS__); break;       \
    default: FN<8>(__VA_ARGS__); break;      \
  }
static_assert(kBlock == 8, "INVOBENCH_DISPATCH_BLOCK covers blocks of 1..8");

// Ring of zero-padded, phase-split input rows of one group: row r lives in slot r mod `slots`;
// slot layout [phase][L], channel stride slots·s·L. Column m of phase ph holds x[·, r, m·s + ph − p].
template <typename T, typename A>
struct InputRing {
  const Geometry& g;
  int64_t L, slots, row_len, cstride;
  A* buf;
  InputRing(const Geometry& geom, int64_t wo_pad, A* ring_buffer) : g(geom), buf(ring_buffer) {
    L = round_up(wo_pad + (g.K - 1) * g.d / g.s, 16);
    slots = (g.K - 1) * g.d + 1;
    row_len = g.s * L;
    cstride = slots * row_len;
  }
  static int64_t elements(const Geometry& g, int64_t wo_pad) {
    return g.Cg * ((g.K - 1) * g.d + 1) * g.s * round_up(wo_pad + (g.K - 1) * g.d / g.s, 16);
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

template <typename T>
bool forward_kernel(const T* x, const T* w, T* out, const Geometry& g, int nthreads) {
  using A = typename AccOf<T>::type;
  using V = Vec<A>;
  const int64_t wo_pad = round_up(g.Wo, V::n);
  const int64_t images = g.B * g.G;
  const int64_t nblk = blocks_per_image(images, g.Ho, nthreads);
  const int64_t rows_per_blk = ceil_div(g.Ho, nblk);
  const int64_t plane = g.Ho * g.Wo;
  // fp32/double read w in place; only a partial last vector of a row is staged (zero-padded). 16-bit
  // types stage whole rows, widened to fp32.
  constexpr bool in_place = std::is_same<T, A>::value;
  const int64_t full_end = in_place ? g.Wo / V::n * V::n : 0;  // vectors before this read w in place
  const int64_t ring_n = InputRing<T, A>::elements(g, wo_pad);
  const int64_t pf_n = PrefetchQueue::capacity<T>(g.KK + g.Cg * g.s, std::max(g.W, g.Wo));
  Scratch scratch(Carver::bytes<A>(ring_n) + Carver::bytes<A>(g.KK * wo_pad) + 3 * Carver::bytes<int64_t>(g.KK) +
                      Carver::bytes<const char*>(pf_n),
                  nthreads);
  if (!scratch.ok()) return false;
  const int64_t kernel_calls = ceil_div(g.Cg, kBlock) * ceil_div(g.Wo, V::n);  // per output row

#pragma omp parallel num_threads(nthreads)
  {
    Carver carve(scratch.thread_part());
    InputRing<T, A> ring(g, wo_pad, carve.take<A>(ring_n));
    ring.clear();
    PrefetchQueue prefetch(carve.take<const char*>(pf_n));
    A* wbuf = carve.take<A>(g.KK * wo_pad);
    int64_t* xoff = carve.take<int64_t>(g.KK);
    int64_t* woff_buf = carve.take<int64_t>(g.KK);    // into wbuf
    int64_t* woff_place = carve.take<int64_t>(g.KK);  // into w itself
    const int64_t wbuf_stride = in_place ? V::n : wo_pad;
    typename V::type acc[kBlock];

#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < images * nblk; ++item) {
      const int64_t img = item / nblk, blk = item % nblk;
      const int64_t b = img / g.G, gi = img % g.G;
      const int64_t h0 = blk * rows_per_blk, h1 = std::min(g.Ho, h0 + rows_per_blk);
      const T* xg = x + (b * g.C + gi * g.Cg) * g.H * g.W;
      const T* wg = w + img * g.KK * plane;
      T* og = out + (b * g.C + gi * g.Cg) * plane;
      int64_t next_row = h0 * g.s - g.p;
      for (int64_t ho = h0; ho < h1; ++ho) {
        const int64_t r_lo = ho * g.s - g.p, r_hi = r_lo + (g.K - 1) * g.d;
        for (int64_t r = std::max(next_row, r_lo); r <= r_hi; ++r) ring.fill(xg, r);
        next_row = r_hi + 1;
        if (full_end < g.Wo) {
          for (int64_t tap = 0; tap < g.KK; ++tap)
            stage(wbuf + tap * wbuf_stride, wg + tap * plane + ho * g.Wo + full_end, g.Wo - full_end, wbuf_stride);
        }
        prefetch.reset();  // the previous row's calls issued all of its lines
        if (ho + 1 < h1) {
          prefetch.add_rows(wg + (ho + 1) * g.Wo, g.Wo, plane, g.KK);
          for (int64_t r = r_hi + 1; r <= std::min(r_hi + g.s, g.H - 1); ++r)
            prefetch.add_rows(xg + r * g.W, g.W, g.H * g.W, g.Cg);
        }
        const int64_t prefetch_per_call = ceil_div(prefetch.size(), kernel_calls);
        int nt = 0;
        for (int64_t i = 0; i < g.K; ++i) {
          const int64_t r = r_lo + i * g.d;
          if (r < 0 || r >= g.H) continue;
          for (int64_t j = 0; j < g.K; ++j) {
            xoff[nt] = ring.slot_offset(r) + ring.col_offset(j);
            woff_buf[nt] = (i * g.K + j) * wbuf_stride;
            woff_place[nt] = (i * g.K + j) * plane;
            ++nt;
          }
        }
        for (int64_t c0 = 0; c0 < g.Cg; c0 += kBlock) {
          const int cb = static_cast<int>(std::min<int64_t>(kBlock, g.Cg - c0));
          for (int64_t wv = 0; wv < g.Wo; wv += V::n) {
            const bool place = wv < full_end;
            const A* wp = place ? reinterpret_cast<const A*>(wg) + ho * g.Wo + wv : wbuf + (wv - full_end);
            prefetch.issue(prefetch_per_call);
            INVOBENCH_DISPATCH_BLOCK(cb, tap_sum, nt, xoff, place ? woff_place : woff_buf,
                                     ring.buf + c0 * ring.cstride + wv, wp, ring.cstride, acc)
            const int64_t count = std::min<int64_t>(V::n, g.Wo - wv);
            for (int c = 0; c < cb; ++c) store_lanes<T, A>(og + (c0 + c) * plane + ho * g.Wo + wv, acc[c], count, 1);
          }
        }
      }
    }
  }
  return true;
}

template <typename T>
bool grad_kernel_kernel(const T* gout, const T* x, T* gw, const Geometry& g, int nthreads) {
  using A = typename AccOf<T>::type;
  using V = Vec<A>;
  const int64_t wo_pad = round_up(g.Wo, V::n);
  const int64_t images = g.B * g.G;
  const int64_t nblk = blocks_per_image(images, g.Ho, nthreads);
  const int64_t rows_per_blk = ceil_div(g.Ho, nblk);
  const int64_t plane = g.Ho * g.Wo;
  const int64_t ring_n = InputRing<T, A>::elements(g, wo_pad);
  const int64_t pf_n = PrefetchQueue::capacity<T>(g.Cg + g.Cg * g.s, std::max(g.W, g.Wo));
  Scratch scratch(Carver::bytes<A>(ring_n) + Carver::bytes<A>(g.Cg * wo_pad) + 2 * Carver::bytes<int64_t>(g.KK) +
                      Carver::bytes<const char*>(pf_n),
                  nthreads);
  if (!scratch.ok()) return false;
  const int64_t kernel_calls = ceil_div(g.KK, kBlock) * ceil_div(g.Wo, V::n);  // per output row, at most

#pragma omp parallel num_threads(nthreads)
  {
    Carver carve(scratch.thread_part());
    InputRing<T, A> ring(g, wo_pad, carve.take<A>(ring_n));
    ring.clear();
    PrefetchQueue prefetch(carve.take<const char*>(pf_n));
    A* gbuf = carve.take<A>(g.Cg * wo_pad);
    zero(gbuf, g.Cg * wo_pad);  // the columns past Wo stay zero
    int64_t* xoff = carve.take<int64_t>(g.KK);
    int64_t* taps = carve.take<int64_t>(g.KK);
    typename V::type acc[kBlock];

#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < images * nblk; ++item) {
      const int64_t img = item / nblk, blk = item % nblk;
      const int64_t b = img / g.G, gi = img % g.G;
      const int64_t h0 = blk * rows_per_blk, h1 = std::min(g.Ho, h0 + rows_per_blk);
      const T* xg = x + (b * g.C + gi * g.Cg) * g.H * g.W;
      const T* gg = gout + (b * g.C + gi * g.Cg) * plane;
      T* gwg = gw + img * g.KK * plane;
      int64_t next_row = h0 * g.s - g.p;
      for (int64_t ho = h0; ho < h1; ++ho) {
        const int64_t r_lo = ho * g.s - g.p, r_hi = r_lo + (g.K - 1) * g.d;
        for (int64_t r = std::max(next_row, r_lo); r <= r_hi; ++r) ring.fill(xg, r);
        next_row = r_hi + 1;
        for (int64_t c = 0; c < g.Cg; ++c) stage(gbuf + c * wo_pad, gg + c * plane + ho * g.Wo, g.Wo, g.Wo);
        prefetch.issue_all();  // what the previous row's calls left (rows whose taps were skipped)
        prefetch.reset();
        if (ho + 1 < h1) {
          prefetch.add_rows(gg + (ho + 1) * g.Wo, g.Wo, plane, g.Cg);
          for (int64_t r = r_hi + 1; r <= std::min(r_hi + g.s, g.H - 1); ++r)
            prefetch.add_rows(xg + r * g.W, g.W, g.H * g.W, g.Cg);
        }
        const int64_t prefetch_per_call = ceil_div(prefetch.size(), kernel_calls);
        int nt = 0;
        for (int64_t i = 0; i < g.K; ++i) {
          const int64_t r = r_lo + i * g.d;
          const bool inside = r >= 0 && r < g.H;
          for (int64_t j = 0; j < g.K; ++j) {
            if (!inside) {  // the tap reads only padding: its gradient is zero
              std::fill_n(gwg + (i * g.K + j) * plane + ho * g.Wo, g.Wo, narrow<T>(A(0)));
              continue;
            }
            xoff[nt] = ring.slot_offset(r) + ring.col_offset(j);
            taps[nt] = i * g.K + j;
            ++nt;
          }
        }
        for (int t0 = 0; t0 < nt; t0 += kBlock) {
          const int tb = std::min(kBlock, nt - t0);
          for (int64_t wv = 0; wv < g.Wo; wv += V::n) {
            prefetch.issue(prefetch_per_call);
            INVOBENCH_DISPATCH_BLOCK(tb, channel_sum, g.Cg, xoff + t0, ring.buf + wv, ring.cstride, gbuf + wv,
                                     wo_pad, acc)
            const int64_t count = std::min<int64_t>(V::n, g.Wo - wv);
            for (int t = 0; t < tb; ++t) store_lanes<T, A>(gwg + taps[t0 + t] * plane + ho * g.Wo + wv, acc[t], count, 1);
          }
        }
      }
    }
  }
  return true;
}

// grad_x in gather form. Input column x' = m·s + r (phase r) receives tap j from output column
// wo = m + e_j with e_j = (r + p − j·d)/s, for the j where that division is exact; rows likewise.
template <typename T>
bool grad_input_kernel(const T* gout, const T* w, T* gx, const Geometry& g, int nthreads) {
  using A = typename AccOf<T>::type;
  using V = Vec<A>;
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
  const int64_t pad_left = -e_min;
  const int64_t Lg = round_up(pad_left + m_pad + e_max, 16);
  const int64_t slots = (g.K - 1) * g.d / g.s + 2;  // output rows one input row can need, plus one
  const int64_t images = g.B * g.G;
  const int64_t nblk = blocks_per_image(images, g.H, nthreads);
  const int64_t rows_per_blk = ceil_div(g.H, nblk);
  const int64_t plane = g.Ho * g.Wo;
  // Channel stride of the grad_out ring and tap stride of the w ring; the extra cache line keeps the
  // 49 tap rows one output row reads from landing in the same few L1 sets (slots·Lg is often 2 KiB).
  const int64_t gstride = slots * Lg + 16;

  const int64_t pf_n = PrefetchQueue::capacity<T>(g.Cg + g.KK, g.Wo);
  Scratch scratch(Carver::bytes<A>(g.Cg * gstride) + Carver::bytes<A>(g.KK * gstride) + 2 * Carver::bytes<int64_t>(g.KK) +
                      Carver::bytes<const char*>(pf_n),
                  nthreads);
  if (!scratch.ok()) return false;
  const int64_t kernel_calls = g.s * ceil_div(g.Cg, kBlock) * ceil_div(ceil_div(g.W, g.s), V::n);  // per input row

#pragma omp parallel num_threads(nthreads)
  {
    Carver carve(scratch.thread_part());
    A* gring = carve.take<A>(g.Cg * gstride);
    A* wring = carve.take<A>(g.KK * gstride);
    zero(gring, g.Cg * gstride);  // padding columns are never written again: rows copy only their Wo values
    zero(wring, g.KK * gstride);
    int64_t* goff = carve.take<int64_t>(g.KK);
    int64_t* woff = carve.take<int64_t>(g.KK);
    PrefetchQueue prefetch(carve.take<const char*>(pf_n));
    typename V::type acc[kBlock];

#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < images * nblk; ++item) {
      const int64_t img = item / nblk, blk = item % nblk;
      const int64_t b = img / g.G, gi = img % g.G;
      const int64_t y0 = blk * rows_per_blk, y1 = std::min(g.H, y0 + rows_per_blk);
      const T* gg = gout + (b * g.C + gi * g.Cg) * plane;
      const T* wg = w + img * g.KK * plane;
      T* gxg = gx + (b * g.C + gi * g.Cg) * g.H * g.W;
      int64_t next_ho = std::max<int64_t>(0, ceil_div(y0 + g.p - (g.K - 1) * g.d, g.s));
      for (int64_t y = y0; y < y1; ++y) {
        const int64_t ho_hi = std::min(g.Ho - 1, floor_div(y + g.p, g.s));
        prefetch.issue_all();
        prefetch.reset();
        if (ho_hi + 1 < g.Ho && y + 1 < y1 && floor_div(y + 1 + g.p, g.s) > ho_hi) {  // the next row needs a new one
          prefetch.add_rows(gg + (ho_hi + 1) * g.Wo, g.Wo, plane, g.Cg);
          prefetch.add_rows(wg + (ho_hi + 1) * g.Wo, g.Wo, plane, g.KK);
        }
        const int64_t prefetch_per_call = ceil_div(prefetch.size(), kernel_calls);
        for (; next_ho <= ho_hi; ++next_ho) {
          const int64_t slot = (next_ho % slots) * Lg;
          for (int64_t c = 0; c < g.Cg; ++c) {
            A* dst = gring + c * gstride + slot;
            stage(dst + pad_left, gg + c * plane + next_ho * g.Wo, g.Wo, g.Wo);
          }
          for (int64_t tap = 0; tap < g.KK; ++tap) {
            A* dst = wring + tap * gstride + slot;
            stage(dst + pad_left, wg + tap * plane + next_ho * g.Wo, g.Wo, g.Wo);
          }
        }
        for (int64_t r = 0; r < g.s; ++r) {
          const int64_t m_r = ceil_div(g.W - r, g.s);  // columns of this phase
          if (m_r <= 0) continue;
          int nt = 0;
          for (int64_t i = 0; i < g.K; ++i) {
            const int64_t t = y + g.p - i * g.d;
            if (floor_div(t, g.s) * g.s != t) continue;
            const int64_t ho = floor_div(t, g.s);
            if (ho < 0 || ho >= g.Ho) continue;
            const int64_t slot = (ho % slots) * Lg;
            for (const auto& [j, e] : col_taps[r]) {
              goff[nt] = slot + pad_left + e;
              woff[nt] = (i * g.K + j) * gstride + slot + pad_left + e;
              ++nt;
            }
          }
          for (int64_t c0 = 0; c0 < g.Cg; c0 += kBlock) {
            const int cb = static_cast<int>(std::min<int64_t>(kBlock, g.Cg - c0));
            for (int64_t mv = 0; mv < m_r; mv += V::n) {
              prefetch.issue(prefetch_per_call);
              INVOBENCH_DISPATCH_BLOCK(cb, tap_sum, nt, goff, woff, gring + c0 * gstride + mv, wring + mv,
                                       gstride, acc)
              const int64_t count = std::min<int64_t>(V::n, m_r - mv);
              for (int c = 0; c < cb; ++c)
                store_lanes<T, A>(gxg + (c0 + c) * g.H * g.W + y * g.W + mv * g.s + r, acc[c], count, g.s);
            }
          }
        }
      }
    }
  }
  return true;
}


// The C ABI: plain pointers to NCHW-contiguous tensors that the caller (cpu.py) has validated
// (invobench.shapes.check_involution_args) and allocated. No torch headers: the build takes seconds.
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

// Threads worth waking for a call: about 1M MACs each, so a small call does not pay a fork/join
// (which, on a busy machine, can cost a scheduler time slice) for microseconds of work.
int useful_threads(const Geometry& g, int nthreads) {
  const int64_t macs = g.B * g.C * g.Ho * g.Wo * g.KK;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nthreads, macs >> 20)));
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

template <typename T>
struct Forward {
  static bool run(const void* x, const void* w, void* out, const Geometry& g, int n) {
    return forward_kernel<T>(static_cast<const T*>(x), static_cast<const T*>(w), static_cast<T*>(out), g, n);
  }
};
template <typename T>
struct GradInput {
  static bool run(const void* gout, const void* w, void* gx, const Geometry& g, int n) {
    return grad_input_kernel<T>(static_cast<const T*>(gout), static_cast<const T*>(w), static_cast<T*>(gx), g, n);
  }
};
template <typename T>
struct GradKernel {
  static bool run(const void* gout, const void* x, void* gw, const Geometry& g, int n) {
    return grad_kernel_kernel<T>(static_cast<const T*>(gout), static_cast<const T*>(x), static_cast<T*>(gw), g, n);
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
                                  " block=" + std::to_string(invobench_cpu::kBlock) +
                                  " openmp=" + std::to_string(_OPENMP);
  return info.c_str();
}

}  // extern "C"
