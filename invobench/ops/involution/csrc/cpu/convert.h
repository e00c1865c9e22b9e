// Element types: the accumulation type of each storage type, and the bf16/fp16 storage types with
// their widening to fp32 and rounding back.
#pragma once

#include <cstdint>
#include <cstring>

namespace invobench_cpu {

// Accumulation type: fp32 for fp32/bf16/fp16, double for double.
template <typename T>
struct AccOf {
  using type = float;  // fp32, bf16, fp16
};
template <>
struct AccOf<double> {
  using type = double;
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

}  // namespace invobench_cpu
