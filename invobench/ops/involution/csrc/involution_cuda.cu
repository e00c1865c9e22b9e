// Involution apply (docs/spec.md §1) in CUDA C++: forward, grad-input and grad-kernel.
//
//   out[b, g·Cg+c, ho, wo]  = Σ_{i,j<K} w[b, g, i·K+j, ho, wo] · x[b, g·Cg+c, ho·s−p+i·d, wo·s−p+j·d]
//   grad_x[b, g·Cg+c, y, x] = Σ over (i, j, ho, wo) with ho·s−p+i·d = y, wo·s−p+j·d = x of w[b, g, i·K+j, ho, wo] · gout[b, g·Cg+c, ho, wo]
//   grad_w[b, g, i·K+j, ho, wo] = Σ_{c<Cg} gout[b, g·Cg+c, ho, wo] · x[b, g·Cg+c, ho·s−p+i·d, wo·s−p+j·d]
//
// x is (B, C, H, W), w is (B, G, K·K, Ho, Wo), both contiguous; x = 0 outside the image.
//
// Two designs, both compiled from this file:
//   simple  one thread per element of the result, no reuse: the design of the paper's CuPy kernels.
//   tiled   a block owns a tile of pixels of one (b, g); it stages the tile of the source plane it
//           reads (x, or gout for grad-input) with its halo in shared memory, CHUNK channels at a
//           time, with 16-byte loads; each thread keeps its pixels' per-pixel kernel taps in
//           registers and reuses them across the chunk's channels, and (stride = dilation = 1)
//           reuses each staged value across the OUTPUTS_PER_THREAD neighbouring pixels it owns.
//
// The per-thread work of every kernel is a __host__ __device__ function, so the host harness in
// tests/harness/cuda runs it for every thread index of a grid on the CPU. What only a GPU runs is
// the thin __global__ shell below each design: blockIdx/threadIdx, the extern shared buffer and the
// __syncthreads() between the staging and compute phases.
//
// Types: T ∈ {float, __half, __nv_bfloat16} accumulate in float; T = double in double.
// K is a template parameter (odd, ≤ 11). The loader compiles one module per (T, K, arch) by
// defining INVOLUTION_SCALAR and INVOLUTION_K, which instantiates the extern "C" entry points at
// the bottom of this file. Offsets into tensors are 64-bit (index_t); per-axis sizes fit in int.

#include <cuda_fp16.h>
#include <cuda_bf16.h>

namespace involution {

typedef long long index_t;

// pixels along W owned by one thread of the tiled forward and grad-input kernels
constexpr int OUTPUTS_PER_THREAD = 4;
// bytes of one vectorised global load when staging a tile
constexpr int STAGE_LOAD_BYTES = 16;

// ---------------------------------------------------------------------------------------------
// Types and conversions
// ---------------------------------------------------------------------------------------------

template <typename T> struct Accum { typedef float type; };
template <> struct Accum<double> { typedef double type; };

// Channels staged per pass of the tiled kernels: the accumulators are CHUNK × OUTPUTS_PER_THREAD
// registers, so double takes half as many to keep its register count under the fp32 one.
template <typename T> struct Chunk { static constexpr int value = 8; };
template <> struct Chunk<double> { static constexpr int value = 4; };

// Blocks of 128 threads the tiled kernels must fit per SM (their __launch_bounds__): 4 caps them
// at 128 registers. Double (a test dtype, twice the bytes per value) and K ≥ 9 (81 or 121 grad-kernel
// accumulators per thread; 16-bit types spilled 12–64 bytes at K = 9 and all types ~300 bytes at
// K = 11 under the 128 cap, measured) get 2.
template <typename T, int K> struct TiledBlocksPerSM { static constexpr int value = K >= 9 ? 2 : 4; };
template <int K> struct TiledBlocksPerSM<double, K> { static constexpr int value = 2; };

__host__ __device__ inline float to_acc(float v) { return v; }
__host__ __device__ inline double to_acc(double v) { return v; }
__host__ __device__ inline float to_acc(__half v) { return __half2float(v); }
__host__ __device__ inline float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __host__ __device__ inline T from_acc(typename Accum<T>::type v);
template <> __host__ __device__ inline float from_acc<float>(float v) { return v; }
template <> __host__ __device__ inline double from_acc<double>(double v) { return v; }
template <> __host__ __device__ inline __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <> __host__ __device__ inline __nv_bfloat16 from_acc<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// N consecutive elements as one aligned unit, so one load/store instruction moves them (up to 16 B).
template <typename T, int N>
struct alignas(sizeof(T) * N < 16 ? sizeof(T) * N : 16) Packed {
  T e[N];
};

template <typename T, int N>
__host__ __device__ inline bool is_aligned(const T* p) {
  return reinterpret_cast<unsigned long long>(p) % alignof(Packed<T, N>) == 0;
}

// out[k] = p[k] for k < n, 0 beyond; one vector load when all N are wanted and p is aligned.
template <typename T, int N>
__host__ __device__ inline void load_run(const T* p, int n, typename Accum<T>::type (&out)[N]) {
  typedef typename Accum<T>::type Acc;
  if (n == N && is_aligned<T, N>(p)) {
    const Packed<T, N> v = *reinterpret_cast<const Packed<T, N>*>(p);
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = to_acc(v.e[k]);
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = k < n ? to_acc(p[k]) : Acc(0);
  }
}

// p[k] = v[k] for k < n; one vector store when all N are written and p is aligned.
template <typename T, int N>
__host__ __device__ inline void store_run(T* p, int n, const typename Accum<T>::type (&v)[N]) {
  if (n == N && is_aligned<T, N>(p)) {
    Packed<T, N> out;
#pragma unroll
    for (int k = 0; k < N; ++k) out.e[k] = from_acc<T>(v[k]);
    *reinterpret_cast<Packed<T, N>*>(p) = out;
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k)
      if (k < n) p[k] = from_acc<T>(v[k]);
  }
}

__host__ __device__ inline int imin(int a, int b) { return a < b ? a : b; }
__host__ __device__ inline int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }  // b > 0
__host__ __device__ inline int ceil_div(int a, int b) { return -floor_div(-a, b); }                   // b > 0
__host__ __device__ inline int round_up(int a, int b) { return (a + b - 1) / b * b; }                 // a ≥ 0

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

struct Shape {
  int B, C, H, W;  // x
  int G;           // groups; Cg = C / G channels share one per-pixel kernel
  int Ho, Wo;      // output
  int stride, dilation, pad;
};

__host__ __device__ inline Shape make_shape(int B, int C, int H, int W, int G, int Ho, int Wo, int stride,
                                            int dilation, int K) {
  Shape s;
  s.B = B; s.C = C; s.H = H; s.W = W; s.G = G; s.Ho = Ho; s.Wo = Wo;
  s.stride = stride; s.dilation = dilation; s.pad = dilation * (K - 1) / 2;
  return s;
}

__host__ __device__ inline index_t nchw(const Shape& s, int b, int c, int y, int x, int rows, int cols) {
  return ((static_cast<index_t>(b) * s.C + c) * rows + y) * cols + x;
}

// Offset of w[b, g, tap, 0, 0].
template <int K>
__host__ __device__ inline index_t kernel_plane(const Shape& s, int b, int g, int tap) {
  return ((static_cast<index_t>(b) * s.G + g) * (K * K) + tap) * (static_cast<index_t>(s.Ho) * s.Wo);
}

// =============================================================================================
// Design "simple": one thread per element of the result
// =============================================================================================

// out[index], index over (B, C, Ho, Wo).
template <typename T, int K>
__host__ __device__ inline void fwd_simple_point(const T* __restrict__ x, const T* __restrict__ w,
                                                 T* __restrict__ out, const Shape& s, index_t index) {
  typedef typename Accum<T>::type Acc;
  const int wo = static_cast<int>(index % s.Wo);
  index_t rest = index / s.Wo;
  const int ho = static_cast<int>(rest % s.Ho);
  rest /= s.Ho;
  const int c = static_cast<int>(rest % s.C);
  const int b = static_cast<int>(rest / s.C);
  const int g = c / (s.C / s.G);
  const T* xc = x + nchw(s, b, c, 0, 0, s.H, s.W);
  const T* wp = w + kernel_plane<K>(s, b, g, 0) + static_cast<index_t>(ho) * s.Wo + wo;
  const index_t plane = static_cast<index_t>(s.Ho) * s.Wo;
  Acc acc = 0;
#pragma unroll
  for (int i = 0; i < K; ++i) {
    const int y = ho * s.stride - s.pad + i * s.dilation;
    if (y < 0 || y >= s.H) continue;
#pragma unroll
    for (int j = 0; j < K; ++j) {
      const int xx = wo * s.stride - s.pad + j * s.dilation;
      if (xx < 0 || xx >= s.W) continue;
      acc += to_acc(wp[(i * K + j) * plane]) * to_acc(xc[static_cast<index_t>(y) * s.W + xx]);
    }
  }
  out[index] = from_acc<T>(acc);
}

// grad_x[index], index over (B, C, H, W): gathers the taps whose window covers the pixel (no atomics).
template <typename T, int K>
__host__ __device__ inline void bwd_input_simple_point(const T* __restrict__ gout, const T* __restrict__ w,
                                                       T* __restrict__ grad_x, const Shape& s, index_t index) {
  typedef typename Accum<T>::type Acc;
  const int xx = static_cast<int>(index % s.W);
  index_t rest = index / s.W;
  const int y = static_cast<int>(rest % s.H);
  rest /= s.H;
  const int c = static_cast<int>(rest % s.C);
  const int b = static_cast<int>(rest / s.C);
  const int g = c / (s.C / s.G);
  const T* gc = gout + nchw(s, b, c, 0, 0, s.Ho, s.Wo);
  const T* wb = w + kernel_plane<K>(s, b, g, 0);
  const index_t plane = static_cast<index_t>(s.Ho) * s.Wo;
  Acc acc = 0;
#pragma unroll
  for (int i = 0; i < K; ++i) {
    const int hnum = y + s.pad - i * s.dilation;  // = ho·s
    if (hnum < 0 || hnum % s.stride) continue;
    const int ho = hnum / s.stride;
    if (ho >= s.Ho) continue;
#pragma unroll
    for (int j = 0; j < K; ++j) {
      const int wnum = xx + s.pad - j * s.dilation;
      if (wnum < 0 || wnum % s.stride) continue;
      const int wo = wnum / s.stride;
      if (wo >= s.Wo) continue;
      const index_t at = static_cast<index_t>(ho) * s.Wo + wo;
      acc += to_acc(wb[(i * K + j) * plane + at]) * to_acc(gc[at]);
    }
  }
  grad_x[index] = from_acc<T>(acc);
}

// grad_w[index], index over (B, G, K·K, Ho, Wo): a loop over the group's Cg channels.
template <typename T, int K>
__host__ __device__ inline void bwd_kernel_simple_point(const T* __restrict__ gout, const T* __restrict__ x,
                                                        T* __restrict__ grad_w, const Shape& s, index_t index) {
  typedef typename Accum<T>::type Acc;
  const int wo = static_cast<int>(index % s.Wo);
  index_t rest = index / s.Wo;
  const int ho = static_cast<int>(rest % s.Ho);
  rest /= s.Ho;
  const int tap = static_cast<int>(rest % (K * K));
  rest /= K * K;
  const int g = static_cast<int>(rest % s.G);
  const int b = static_cast<int>(rest / s.G);
  const int y = ho * s.stride - s.pad + (tap / K) * s.dilation;
  const int xx = wo * s.stride - s.pad + (tap % K) * s.dilation;
  Acc acc = 0;
  if (y >= 0 && y < s.H && xx >= 0 && xx < s.W) {
    const int Cg = s.C / s.G;
    const T* gp = gout + nchw(s, b, g * Cg, ho, wo, s.Ho, s.Wo);
    const T* xp = x + nchw(s, b, g * Cg, y, xx, s.H, s.W);
    const index_t gstep = static_cast<index_t>(s.Ho) * s.Wo, xstep = static_cast<index_t>(s.H) * s.W;
    for (int c = 0; c < Cg; ++c) acc += to_acc(gp[c * gstep]) * to_acc(xp[c * xstep]);
  }
  grad_w[index] = from_acc<T>(acc);
}

// =============================================================================================
// Design "tiled": shared-memory tile with halo, per-pixel kernel reused across channels
// =============================================================================================

// The pixels one block owns: rows [row0, row0 + tile_h), columns [col0, col0 + tile_w) of one (b, g).
struct Tile {
  int b, g, row0, col0;
};

__host__ __device__ inline Tile tile_of_block(int block_x, int block_y, int block_z, int owned_cols, int tile_h,
                                              int tile_w) {
  const int tiles_w = (owned_cols + tile_w - 1) / tile_w;
  Tile t;
  t.b = block_z;
  t.g = block_y;
  t.row0 = (block_x / tiles_w) * tile_h;
  t.col0 = (block_x % tiles_w) * tile_w;
  return t;
}

// A rectangle of a source plane staged in shared memory as CHUNK × rows × pitch accumulator values.
// Source (row0 + r, col0 + q) sits at shared (r, q); col0 is a multiple of the load width so that
// the 16-byte loads are aligned; pitch is odd so that rows read together fall in different banks.
struct Window {
  int row0, col0;  // source coordinates of shared element (0, 0)
  int rows;        // staged rows
  int cols;        // staged columns (a multiple of the load width; ≤ pitch − 1)
  int pitch;       // shared row pitch, in elements
};

// Rows [need_row0, need_row0 + rows) and columns [need_col0, need_col0 + span) of the source.
// `span` is the most columns any block of the launch needs, so pitch (and the shared size the host
// computes with tiled_shared_elements) is the same for every block.
__host__ __device__ inline Window make_window(int need_row0, int rows, int need_col0, int span, int load_elems) {
  Window win;
  win.row0 = need_row0;
  win.rows = rows;
  win.col0 = floor_div(need_col0, load_elems) * load_elems;
  win.cols = round_up(need_col0 - win.col0 + span, load_elems);
  win.pitch = round_up(load_elems - 1 + span, load_elems) + 1;
  return win;
}

template <typename T>
__host__ __device__ inline int stage_load_elems() {
  return STAGE_LOAD_BYTES / static_cast<int>(sizeof(T));
}

// Forward and grad-kernel read x at (row·s − p + i·d, col·s − p + j·d) for the owned output pixels.
template <typename T, int K>
__host__ __device__ inline Window gather_window(const Shape& s, const Tile& t, int tile_h, int tile_w) {
  const int rows = (tile_h - 1) * s.stride + (K - 1) * s.dilation + 1;
  const int span = (tile_w - 1) * s.stride + (K - 1) * s.dilation + 1;
  return make_window(t.row0 * s.stride - s.pad, rows, t.col0 * s.stride - s.pad, span, stage_load_elems<T>());
}

// Grad-input reads gout at ho = (y + p − i·d)/s for the owned input rows y (likewise columns).
template <typename T, int K>
__host__ __device__ inline Window scatter_window(const Shape& s, const Tile& t, int tile_h, int tile_w) {
  const int reach = (K - 1) * s.dilation;
  const int rows = (tile_h - 1 + reach) / s.stride + 1;
  const int span = (tile_w - 1 + reach) / s.stride + 1;
  return make_window(ceil_div(t.row0 + s.pad - reach, s.stride), rows, ceil_div(t.col0 + s.pad - reach, s.stride),
                     span, stage_load_elems<T>());
}

// Shared-memory elements (of Accum<T>) a tiled launch needs: the host sizes the dynamic buffer with
// this (the loader mirrors it in Python; the harness checks the two agree). kind: 0 gather, 1 scatter.
template <typename T, int K>
__host__ __device__ inline index_t tiled_shared_elements(const Shape& s, int kind, int tile_h, int tile_w) {
  Tile origin;
  origin.b = origin.g = origin.row0 = origin.col0 = 0;
  const Window win = kind == 0 ? gather_window<T, K>(s, origin, tile_h, tile_w)
                               : scatter_window<T, K>(s, origin, tile_h, tile_w);
  return static_cast<index_t>(Chunk<T>::value) * win.rows * win.pitch;
}

// Staging, the part of thread `rank` of `nthreads`: copy channels [0, nc) of `src` (planes of
// rows × cols, `src` pointing at the chunk's first plane) inside the window to shared memory,
// zero outside the plane. Consecutive threads take consecutive 16-byte pieces of a row; each thread
// issues STAGE_BATCH loads before its first store, so that many are in flight at once.
template <typename T>
__host__ __device__ inline void stage_piece_load(const T* __restrict__ src, index_t plane, int src_rows, int src_cols,
                                                 const Window& win, int piece_index, int pieces_per_row,
                                                 typename Accum<T>::type (&vals)[STAGE_LOAD_BYTES / sizeof(T)]) {
  typedef typename Accum<T>::type Acc;
  constexpr int L = STAGE_LOAD_BYTES / sizeof(T);
  const int piece = piece_index % pieces_per_row;
  const int r = (piece_index / pieces_per_row) % win.rows;
  const int c = piece_index / (pieces_per_row * win.rows);
  const int gy = win.row0 + r, gx = win.col0 + piece * L;
  if (gy < 0 || gy >= src_rows) {
#pragma unroll
    for (int k = 0; k < L; ++k) vals[k] = Acc(0);
    return;
  }
  const T* row = src + c * plane + static_cast<index_t>(gy) * src_cols;
  if (gx >= 0 && gx + L <= src_cols) {
    load_run<T, L>(row + gx, L, vals);
  } else {
#pragma unroll
    for (int k = 0; k < L; ++k) vals[k] = (gx + k >= 0 && gx + k < src_cols) ? to_acc(row[gx + k]) : Acc(0);
  }
}

constexpr int STAGE_BATCH = 4;

template <typename T>
__host__ __device__ inline void stage_window_part(const T* __restrict__ src, int nc, int src_rows, int src_cols,
                                                  const Window& win, typename Accum<T>::type* __restrict__ tile,
                                                  int rank, int nthreads) {
  typedef typename Accum<T>::type Acc;
  constexpr int L = STAGE_LOAD_BYTES / sizeof(T);
  const int pieces_per_row = win.cols / L;
  const int total = nc * win.rows * pieces_per_row;
  const index_t plane = static_cast<index_t>(src_rows) * src_cols;
  for (int first = rank; first < total; first += STAGE_BATCH * nthreads) {
    Acc vals[STAGE_BATCH][L];
#pragma unroll
    for (int n = 0; n < STAGE_BATCH; ++n)
      if (first + n * nthreads < total)
        stage_piece_load<T>(src, plane, src_rows, src_cols, win, first + n * nthreads, pieces_per_row, vals[n]);
#pragma unroll
    for (int n = 0; n < STAGE_BATCH; ++n) {
      const int e = first + n * nthreads;
      if (e >= total) break;
      const int piece = e % pieces_per_row, rc = e / pieces_per_row;  // rc = c · rows + r
      Acc* dst = tile + static_cast<index_t>(rc) * win.pitch + piece * L;
#pragma unroll
      for (int k = 0; k < L; ++k) dst[k] = vals[n][k];
    }
  }
}

// Forward, compute phase of thread (tx, ty) for channels [c0, c0 + nc) of the group, x staged.
// The thread owns output row t.row0 + ty, columns t.col0 + tx·V + [0, V); its kernel values are
// loaded once per chunk and applied to every staged channel.
// UNIT (s = d = 1): per row i of taps, the K × V kernel values sit in registers and the K + V − 1
// staged values of each channel's row serve all K taps × V pixels.
// Otherwise: per tap (i, j), V kernel values, applied at staged offsets j·d + v·s.
template <typename T, int K, bool UNIT>
__host__ __device__ inline void fwd_tiled_thread(const T* __restrict__ w, T* __restrict__ out, const Shape& s,
                                                 const Tile& t, const Window& win, int c0, int nc,
                                                 const typename Accum<T>::type* __restrict__ tile, int tx, int ty) {
  typedef typename Accum<T>::type Acc;
  constexpr int V = OUTPUTS_PER_THREAD;
  constexpr int CHUNK = Chunk<T>::value;
  const int oy = t.row0 + ty, ox = t.col0 + tx * V;
  if (oy >= s.Ho || ox >= s.Wo) return;
  const int nv = imin(V, s.Wo - ox);
  const index_t plane = static_cast<index_t>(s.Ho) * s.Wo;
  const index_t chunk_stride = static_cast<index_t>(win.rows) * win.pitch;
  const T* wp = w + kernel_plane<K>(s, t.b, t.g, 0) + static_cast<index_t>(oy) * s.Wo + ox;
  // shared offset of tap (0, 0) for pixel v = 0
  const Acc* origin = tile + static_cast<index_t>(oy * s.stride - s.pad - win.row0) * win.pitch +
                      (ox * s.stride - s.pad - win.col0);

  Acc acc[CHUNK][V];
#pragma unroll
  for (int c = 0; c < CHUNK; ++c)
#pragma unroll
    for (int v = 0; v < V; ++v) acc[c][v] = Acc(0);

  // The tap loops stay rolled: unrolled, the scheduler hoists the loads of every row and the
  // register count passes 200 (ptxas -v), for no gain in a memory-bound kernel.
  if (UNIT) {
#pragma unroll 1
    for (int i = 0; i < K; ++i) {
      Acc wrow[K][V];
#pragma unroll
      for (int j = 0; j < K; ++j) load_run<T, V>(wp + (i * K + j) * plane, nv, wrow[j]);
#pragma unroll
      for (int c = 0; c < CHUNK; ++c) {
        if (c >= nc) break;
        const Acc* r = origin + c * chunk_stride + i * win.pitch;
        Acc seg[K + V - 1];
#pragma unroll
        for (int m = 0; m < K + V - 1; ++m) seg[m] = r[m];
#pragma unroll
        for (int j = 0; j < K; ++j)
#pragma unroll
          for (int v = 0; v < V; ++v) acc[c][v] += wrow[j][v] * seg[j + v];
      }
    }
  } else {
#pragma unroll 1
    for (int tap = 0; tap < K * K; ++tap) {
      const int i = tap / K, j = tap % K;
      Acc wv[V];
      load_run<T, V>(wp + tap * plane, nv, wv);
      const Acc* r = origin + (i * s.dilation) * win.pitch + j * s.dilation;
#pragma unroll
      for (int c = 0; c < CHUNK; ++c) {
        if (c >= nc) break;
#pragma unroll
        for (int v = 0; v < V; ++v) acc[c][v] += wv[v] * r[c * chunk_stride + v * s.stride];
      }
    }
  }
  const int Cg = s.C / s.G;
#pragma unroll
  for (int c = 0; c < CHUNK; ++c) {
    if (c >= nc) break;
    store_run<T, V>(out + nchw(s, t.b, t.g * Cg + c0 + c, oy, ox, s.Ho, s.Wo), nv, acc[c]);
  }
}

// Grad-input, compute phase of thread (tx, ty) for channels [c0, c0 + nc), gout staged.
// The thread owns input row t.row0 + ty, columns t.col0 + tx·V + [0, V); tap (i, j) of pixel (y, x)
// reads w and gout at (ho, wo) = ((y + p − i·d)/s, (x + p − j·d)/s) when those divide exactly.
// UNIT (s = d = 1): gout column x + v + p − j is staged value v + K − 1 − j of a K + V − 1 run.
template <typename T, int K, bool UNIT>
__host__ __device__ inline void bwd_input_tiled_thread(const T* __restrict__ w, T* __restrict__ grad_x,
                                                       const Shape& s, const Tile& t, const Window& win, int c0,
                                                       int nc, const typename Accum<T>::type* __restrict__ tile,
                                                       int tx, int ty) {
  typedef typename Accum<T>::type Acc;
  constexpr int V = OUTPUTS_PER_THREAD;
  constexpr int CHUNK = Chunk<T>::value;
  const int y = t.row0 + ty, x0 = t.col0 + tx * V;
  if (y >= s.H || x0 >= s.W) return;
  const int nv = imin(V, s.W - x0);
  const index_t plane = static_cast<index_t>(s.Ho) * s.Wo;
  const T* wb = w + kernel_plane<K>(s, t.b, t.g, 0);

  Acc acc[CHUNK][V];
#pragma unroll
  for (int c = 0; c < CHUNK; ++c)
#pragma unroll
    for (int v = 0; v < V; ++v) acc[c][v] = Acc(0);

#pragma unroll 1
  for (int i = 0; i < K; ++i) {  // rolled, as in fwd_tiled_thread
    const int hnum = y + s.pad - i * s.dilation;
    if (hnum < 0 || (!UNIT && hnum % s.stride)) continue;
    const int ho = UNIT ? hnum : hnum / s.stride;
    if (ho >= s.Ho) continue;
    const index_t row_off = static_cast<index_t>(ho) * s.Wo;
    const index_t srow_off = static_cast<index_t>(ho - win.row0) * win.pitch;
    const index_t chunk_stride = static_cast<index_t>(win.rows) * win.pitch;
    if (UNIT) {
      Acc wrow[K][V];
#pragma unroll
      for (int j = 0; j < K; ++j)
#pragma unroll
        for (int v = 0; v < V; ++v) {
          const int wo = x0 + v + s.pad - j;
          wrow[j][v] = (v < nv && wo >= 0 && wo < s.Wo) ? to_acc(wb[(i * K + j) * plane + row_off + wo]) : Acc(0);
        }
      const int scol = x0 - s.pad - win.col0;  // staged column of gout at x0 − p (j = K − 1, v = 0)
#pragma unroll
      for (int c = 0; c < CHUNK; ++c) {
        if (c >= nc) break;
        const Acc* r = tile + c * chunk_stride + srow_off + scol;
        Acc seg[K + V - 1];
#pragma unroll
        for (int m = 0; m < K + V - 1; ++m) seg[m] = r[m];
#pragma unroll
        for (int j = 0; j < K; ++j)
#pragma unroll
          for (int v = 0; v < V; ++v) acc[c][v] += wrow[j][v] * seg[v + K - 1 - j];
      }
    } else {
#pragma unroll
      for (int j = 0; j < K; ++j)
#pragma unroll
        for (int v = 0; v < V; ++v) {
          const int wnum = x0 + v + s.pad - j * s.dilation;
          if (v >= nv || wnum < 0 || wnum % s.stride) continue;
          const int wo = wnum / s.stride;
          if (wo >= s.Wo) continue;
          const Acc wv = to_acc(wb[(i * K + j) * plane + row_off + wo]);
          const Acc* r = tile + srow_off + (wo - win.col0);
#pragma unroll
          for (int c = 0; c < CHUNK; ++c) {
            if (c >= nc) break;
            acc[c][v] += wv * r[c * chunk_stride];
          }
        }
    }
  }
  const int Cg = s.C / s.G;
#pragma unroll
  for (int c = 0; c < CHUNK; ++c) {
    if (c >= nc) break;
    store_run<T, V>(grad_x + nchw(s, t.b, t.g * Cg + c0 + c, y, x0, s.H, s.W), nv, acc[c]);
  }
}

// Grad-kernel, compute phase of thread (tx, ty) for channels [c0, c0 + nc), x staged: adds the
// chunk's Σ_c gout·x to the thread's K·K accumulators for its one output pixel (t.row0 + ty, t.col0 + tx).
// Channels are the outer, rolled loop so that only the K·K accumulators stay live across it.
// UNIT (s = d = 1) makes every tap's shared offset a compile-time multiple of the pitch.
template <typename T, int K, bool UNIT>
__host__ __device__ inline void bwd_kernel_tiled_accumulate(const T* __restrict__ gout, const Shape& s,
                                                            const Tile& t, const Window& win, int c0, int nc,
                                                            const typename Accum<T>::type* __restrict__ tile, int tx,
                                                            int ty, typename Accum<T>::type (&acc)[K * K]) {
  typedef typename Accum<T>::type Acc;
  const int oy = t.row0 + ty, ox = t.col0 + tx;
  if (oy >= s.Ho || ox >= s.Wo) return;
  const int Cg = s.C / s.G;
  const int step = UNIT ? 1 : s.stride, dil = UNIT ? 1 : s.dilation;
  const index_t gstep = static_cast<index_t>(s.Ho) * s.Wo;
  const T* gp = gout + nchw(s, t.b, t.g * Cg + c0, oy, ox, s.Ho, s.Wo);
  const Acc* base = tile + static_cast<index_t>(oy * step - s.pad - win.row0) * win.pitch + (ox * step - s.pad - win.col0);
  const index_t chunk_stride = static_cast<index_t>(win.rows) * win.pitch;
#pragma unroll 1
  for (int c = 0; c < nc; ++c) {
    const Acc g = to_acc(gp[c * gstep]);
    const Acc* r = base + c * chunk_stride;
#pragma unroll
    for (int i = 0; i < K; ++i)
#pragma unroll
      for (int j = 0; j < K; ++j) acc[i * K + j] += g * r[(i * dil) * win.pitch + j * dil];
  }
}

template <typename T, int K>
__host__ __device__ inline void bwd_kernel_tiled_store(T* __restrict__ grad_w, const Shape& s, const Tile& t,
                                                       int tx, int ty, const typename Accum<T>::type (&acc)[K * K]) {
  const int oy = t.row0 + ty, ox = t.col0 + tx;
  if (oy >= s.Ho || ox >= s.Wo) return;
  const index_t at = static_cast<index_t>(oy) * s.Wo + ox;
#pragma unroll
  for (int tap = 0; tap < K * K; ++tap) grad_w[kernel_plane<K>(s, t.b, t.g, tap) + at] = from_acc<T>(acc[tap]);
}

// =============================================================================================
// GPU-only shells: grid-stride loops (simple) and the stage / sync / compute loop (tiled).
// Block (tx, ty) = (threadIdx.x, threadIdx.y); grid = (tiles, G, B) for the tiled kernels.
// =============================================================================================

#ifdef __CUDACC__

template <typename T, int K>
__device__ void fwd_simple_grid(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ out, Shape s) {
  const index_t n = static_cast<index_t>(s.B) * s.C * s.Ho * s.Wo;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<index_t>(blockDim.x) * gridDim.x)
    fwd_simple_point<T, K>(x, w, out, s, i);
}

template <typename T, int K>
__device__ void bwd_input_simple_grid(const T* __restrict__ gout, const T* __restrict__ w, T* __restrict__ grad_x,
                                      Shape s) {
  const index_t n = static_cast<index_t>(s.B) * s.C * s.H * s.W;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<index_t>(blockDim.x) * gridDim.x)
    bwd_input_simple_point<T, K>(gout, w, grad_x, s, i);
}

template <typename T, int K>
__device__ void bwd_kernel_simple_grid(const T* __restrict__ gout, const T* __restrict__ x, T* __restrict__ grad_w,
                                       Shape s) {
  const index_t n = static_cast<index_t>(s.B) * s.G * K * K * s.Ho * s.Wo;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<index_t>(blockDim.x) * gridDim.x)
    bwd_kernel_simple_point<T, K>(gout, x, grad_w, s, i);
}

template <typename T>
__device__ inline typename Accum<T>::type* shared_tile() {
  extern __shared__ __align__(16) unsigned char involution_shared[];
  return reinterpret_cast<typename Accum<T>::type*>(involution_shared);
}

template <typename T, int K, bool UNIT>
__device__ void fwd_tiled_block(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ out, Shape s) {
  constexpr int CHUNK = Chunk<T>::value;
  typename Accum<T>::type* tile = shared_tile<T>();
  const int tile_h = blockDim.y, tile_w = blockDim.x * OUTPUTS_PER_THREAD;
  const Tile t = tile_of_block(blockIdx.x, blockIdx.y, blockIdx.z, s.Wo, tile_h, tile_w);
  const Window win = gather_window<T, K>(s, t, tile_h, tile_w);
  const int rank = threadIdx.y * blockDim.x + threadIdx.x, nthreads = blockDim.x * blockDim.y;
  const int Cg = s.C / s.G;
  for (int c0 = 0; c0 < Cg; c0 += CHUNK) {
    const int nc = imin(CHUNK, Cg - c0);
    stage_window_part<T>(x + nchw(s, t.b, t.g * Cg + c0, 0, 0, s.H, s.W), nc, s.H, s.W, win, tile, rank, nthreads);
    __syncthreads();
    fwd_tiled_thread<T, K, UNIT>(w, out, s, t, win, c0, nc, tile, threadIdx.x, threadIdx.y);
    __syncthreads();
  }
}

template <typename T, int K, bool UNIT>
__device__ void bwd_input_tiled_block(const T* __restrict__ gout, const T* __restrict__ w, T* __restrict__ grad_x,
                                      Shape s) {
  constexpr int CHUNK = Chunk<T>::value;
  typename Accum<T>::type* tile = shared_tile<T>();
  const int tile_h = blockDim.y, tile_w = blockDim.x * OUTPUTS_PER_THREAD;
  const Tile t = tile_of_block(blockIdx.x, blockIdx.y, blockIdx.z, s.W, tile_h, tile_w);
  const Window win = scatter_window<T, K>(s, t, tile_h, tile_w);
  const int rank = threadIdx.y * blockDim.x + threadIdx.x, nthreads = blockDim.x * blockDim.y;
  const int Cg = s.C / s.G;
  for (int c0 = 0; c0 < Cg; c0 += CHUNK) {
    const int nc = imin(CHUNK, Cg - c0);
    stage_window_part<T>(gout + nchw(s, t.b, t.g * Cg + c0, 0, 0, s.Ho, s.Wo), nc, s.Ho, s.Wo, win, tile, rank,
                         nthreads);
    __syncthreads();
    bwd_input_tiled_thread<T, K, UNIT>(w, grad_x, s, t, win, c0, nc, tile, threadIdx.x, threadIdx.y);
    __syncthreads();
  }
}

template <typename T, int K, bool UNIT>
__device__ void bwd_kernel_tiled_block(const T* __restrict__ gout, const T* __restrict__ x, T* __restrict__ grad_w,
                                       Shape s) {
  constexpr int CHUNK = Chunk<T>::value;
  typename Accum<T>::type* tile = shared_tile<T>();
  const Tile t = tile_of_block(blockIdx.x, blockIdx.y, blockIdx.z, s.Wo, blockDim.y, blockDim.x);
  const Window win = gather_window<T, K>(s, t, blockDim.y, blockDim.x);
  const int rank = threadIdx.y * blockDim.x + threadIdx.x, nthreads = blockDim.x * blockDim.y;
  const int Cg = s.C / s.G;
  typename Accum<T>::type acc[K * K];
#pragma unroll
  for (int tap = 0; tap < K * K; ++tap) acc[tap] = 0;
  for (int c0 = 0; c0 < Cg; c0 += CHUNK) {
    const int nc = imin(CHUNK, Cg - c0);
    stage_window_part<T>(x + nchw(s, t.b, t.g * Cg + c0, 0, 0, s.H, s.W), nc, s.H, s.W, win, tile, rank, nthreads);
    __syncthreads();
    bwd_kernel_tiled_accumulate<T, K, UNIT>(gout, s, t, win, c0, nc, tile, threadIdx.x, threadIdx.y, acc);
    __syncthreads();
  }
  bwd_kernel_tiled_store<T, K>(grad_w, s, t, threadIdx.x, threadIdx.y, acc);
}

#endif  // __CUDACC__

}  // namespace involution

// ---------------------------------------------------------------------------------------------
// Entry points of one module: the loader defines INVOLUTION_SCALAR (float, __half,
// __nv_bfloat16, double) and INVOLUTION_K. Unmangled names, so ptxas -v and profilers show them
// as they are, and so the loader finds them without name expressions.
// Blocks: simple SIMPLE_THREADS (1-D); tiled forward and grad-input (tx, ty) with at most
// TILED_THREADS, grad-kernel at most twice that (its threads own one pixel each). The second
// __launch_bounds__ figure (TiledBlocksPerSM) caps registers at 128 per thread for the float
// types, so that four 128-thread blocks (or two 256-thread ones) fit an SM's 64K registers: the
// kernels are memory-bound and need warps in flight.
// ---------------------------------------------------------------------------------------------

#if defined(__CUDACC__) && defined(INVOLUTION_SCALAR) && defined(INVOLUTION_K)

#define INVOLUTION_SHAPE_PARAMS int B, int C, int H, int W, int G, int Ho, int Wo, int stride, int dilation
#define INVOLUTION_SHAPE involution::make_shape(B, C, H, W, G, Ho, Wo, stride, dilation, INVOLUTION_K)

typedef INVOLUTION_SCALAR involution_scalar_t;

#define SIMPLE_THREADS 256
#define TILED_THREADS 128
#define TILED_BLOCKS_PER_SM (involution::TiledBlocksPerSM<involution_scalar_t, INVOLUTION_K>::value)

static_assert(INVOLUTION_K % 2 == 1 && INVOLUTION_K <= 11, "INVOLUTION_K must be odd and at most 11");

extern "C" __global__ void __launch_bounds__(SIMPLE_THREADS)
    involution_fwd_simple(const involution_scalar_t* __restrict__ x, const involution_scalar_t* __restrict__ w,
                          involution_scalar_t* __restrict__ out, INVOLUTION_SHAPE_PARAMS) {
  involution::fwd_simple_grid<involution_scalar_t, INVOLUTION_K>(x, w, out, INVOLUTION_SHAPE);
}

extern "C" __global__ void __launch_bounds__(SIMPLE_THREADS)
    involution_bwd_input_simple(const involution_scalar_t* __restrict__ gout, const involution_scalar_t* __restrict__ w,
                                involution_scalar_t* __restrict__ grad_x, INVOLUTION_SHAPE_PARAMS) {
  involution::bwd_input_simple_grid<involution_scalar_t, INVOLUTION_K>(gout, w, grad_x, INVOLUTION_SHAPE);
}

extern "C" __global__ void __launch_bounds__(SIMPLE_THREADS)
    involution_bwd_kernel_simple(const involution_scalar_t* __restrict__ gout, const involution_scalar_t* __restrict__ x,
                                 involution_scalar_t* __restrict__ grad_w, INVOLUTION_SHAPE_PARAMS) {
  involution::bwd_kernel_simple_grid<involution_scalar_t, INVOLUTION_K>(gout, x, grad_w, INVOLUTION_SHAPE);
}

extern "C" __global__ void __launch_bounds__(TILED_THREADS, TILED_BLOCKS_PER_SM)
    involution_fwd_tiled(const involution_scalar_t* __restrict__ x, const involution_scalar_t* __restrict__ w,
                         involution_scalar_t* __restrict__ out, INVOLUTION_SHAPE_PARAMS) {
  involution::fwd_tiled_block<involution_scalar_t, INVOLUTION_K, false>(x, w, out, INVOLUTION_SHAPE);
}

// stride = dilation = 1 only
extern "C" __global__ void __launch_bounds__(TILED_THREADS, TILED_BLOCKS_PER_SM)
    involution_fwd_tiled_unit(const involution_scalar_t* __restrict__ x, const involution_scalar_t* __restrict__ w,
                              involution_scalar_t* __restrict__ out, INVOLUTION_SHAPE_PARAMS) {
  involution::fwd_tiled_block<involution_scalar_t, INVOLUTION_K, true>(x, w, out, INVOLUTION_SHAPE);
}

extern "C" __global__ void __launch_bounds__(TILED_THREADS, TILED_BLOCKS_PER_SM)
    involution_bwd_input_tiled(const involution_scalar_t* __restrict__ gout, const involution_scalar_t* __restrict__ w,
                               involution_scalar_t* __restrict__ grad_x, INVOLUTION_SHAPE_PARAMS) {
  involution::bwd_input_tiled_block<involution_scalar_t, INVOLUTION_K, false>(gout, w, grad_x, INVOLUTION_SHAPE);
}

// stride = dilation = 1 only
extern "C" __global__ void __launch_bounds__(TILED_THREADS, TILED_BLOCKS_PER_SM)
    involution_bwd_input_tiled_unit(const involution_scalar_t* __restrict__ gout,
                                    const involution_scalar_t* __restrict__ w,
                                    involution_scalar_t* __restrict__ grad_x, INVOLUTION_SHAPE_PARAMS) {
  involution::bwd_input_tiled_block<involution_scalar_t, INVOLUTION_K, true>(gout, w, grad_x, INVOLUTION_SHAPE);
}

extern "C" __global__ void __launch_bounds__(2 * TILED_THREADS, TILED_BLOCKS_PER_SM / 2)
    involution_bwd_kernel_tiled(const involution_scalar_t* __restrict__ gout, const involution_scalar_t* __restrict__ x,
                                involution_scalar_t* __restrict__ grad_w, INVOLUTION_SHAPE_PARAMS) {
  involution::bwd_kernel_tiled_block<involution_scalar_t, INVOLUTION_K, false>(gout, x, grad_w, INVOLUTION_SHAPE);
}

// stride = dilation = 1 only
extern "C" __global__ void __launch_bounds__(2 * TILED_THREADS, TILED_BLOCKS_PER_SM / 2)
    involution_bwd_kernel_tiled_unit(const involution_scalar_t* __restrict__ gout,
                                     const involution_scalar_t* __restrict__ x,
                                     involution_scalar_t* __restrict__ grad_w, INVOLUTION_SHAPE_PARAMS) {
  involution::bwd_kernel_tiled_block<involution_scalar_t, INVOLUTION_K, true>(gout, x, grad_w, INVOLUTION_SHAPE);
}

#endif
