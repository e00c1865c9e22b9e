// Accumulator vectors to the output: narrowed to the storage type, whole, lane by lane or masked.
#pragma once

#include <cstdint>
#include <type_traits>

#include "convert.h"
#include "simd.h"

namespace invobench_cpu {

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
// masked store it measured slower at 7²–28², for a reason we have not found (its stores are rarer
// than grad_kernel's: Cg per K² FMAs, not K² per Cg).
template <typename T, typename A, int NB>
inline void store_row(T* dst, typename Vec<A, NB>::type v, int64_t count) {
  if constexpr (std::is_same<T, A>::value) {
    if (count < Vec<A, NB>::n && masked_store<A, NB>(dst, v, count)) return;
  }
  store_lanes<T, A, NB>(dst, v, count, 1);
}

}  // namespace invobench_cpu
