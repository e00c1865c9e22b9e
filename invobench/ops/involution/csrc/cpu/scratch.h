// Per-thread scratch memory: one aligned allocation for all threads, carved into typed arrays.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "geometry.h"

namespace invobench_cpu {

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

}  // namespace invobench_cpu
