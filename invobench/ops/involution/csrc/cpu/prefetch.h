// PrefetchQueue: the next row step's cache lines, prefetched a few at a time between micro-kernel calls.
#pragma once

#include <cstdint>
#include <limits>

namespace invobench_cpu {

// The next row step's cache lines, requested a few at a time between micro-kernel calls: a burst of
// K²·Wo/16 prefetches at once overflows the core's miss buffers, and prefetches that find no free
// buffer are dropped. Reads are fetched into L2, not L1 (locality 1: prefetcht2; our reading, with no
// performance counters on these hosts: the next step's lines then no longer evict the current step's
// ring and w rows from the 32 KiB L1). Issuing all of a step's prefetches at once, to L2, was slower.
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
  // and the hardware prefetchers follow planes that small on their own; planes of 1 KiB (16² fp32)
  // and up were slower without the queue, so they keep it (docs/cpu.md, "Prefetching small planes").
  // The queue holds the blocks, not their line addresses: issue() walks them line by line. Writing
  // every line's address to an array, as add_rows once did (hundreds per row step), made that loop
  // and the array's reads a large share of grad_input's and grad_kernel's own time.
  // next_row is forced inline: out of line the stride-2 forward was slower.
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

}  // namespace invobench_cpu
