// SIMD layer: the build's vector widths, GCC/Clang vector types, masked loads and stores where the
// ISA has them, and register_barrier.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
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
// On Zen 4, which runs a 512-bit operation as two 256-bit halves, a padded lane costs as much as a
// used one, so fewer padded lanes is less time (docs/cpu.md); where both widths pad alike (14, 28,
// 112) the wider one is kept.
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

// The first `count` lanes of `v` to dst[0..count) with one masked store, where the ISA has one.
// A partial vector is every row's last at 7×7, 14×14 and 28×28, and grad_kernel stores K² of them
// per row: stored lane by lane through the stack they slowed grad_kernel at those sizes. Returns
// false where there is no masked store (the caller falls back).
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

}  // namespace invobench_cpu
