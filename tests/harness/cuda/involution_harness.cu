// Host harness for invobench/ops/involution/csrc/involution_cuda.cu.
//
// Compiled by the tests with `nvcc -x cu` for the host (nvcc so that cuda_fp16.h / cuda_bf16.h and
// the __host__ __device__ qualifiers mean what they mean on the GPU). It runs each kernel's
// per-thread function for every thread index of the kernel's grid on the CPU, in the order a GPU
// block would after each __syncthreads(): the staging part of every thread, then the compute part
// of every thread. Shared memory is a host buffer filled with NaN before each staging pass, so a
// compute phase that reads anything it did not stage poisons the result and the test fails.
//
// Usage:
//   involution_harness run DTYPE K B C H W G STRIDE DILATION TX TY TXW TYW DIR
//       reads DIR/{x,w,gout}.bin (raw DTYPE, contiguous), writes DIR/<result>.bin for each of
//       fwd_simple fwd_tiled fwd_tiled_general gx_simple gx_tiled gx_tiled_general gw_simple gw_tiled
//       gw_tiled_general.
//       (TX, TY): block of the tiled forward / grad-input kernels; (TXW, TYW): grad-kernel block.
//       *_tiled uses the kernel the loader picks (the _unit one when stride = dilation = 1);
//       *_tiled_general always the general one.
//   involution_harness geometry DTYPE K STRIDE DILATION TILE_H TILE_W KIND
//       prints the shared-memory elements of a tiled launch (KIND: gather | scatter), which the
//       Python loader computes on its own to size the dynamic buffer.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "involution_cuda.cu"

using namespace involution;

namespace {

struct Args {
  std::string dtype;
  int K, B, C, H, W, G, stride, dilation, tx, ty, txw, tyw;
  std::string dir;
};

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "involution_harness: %s\n", message.c_str());
  std::exit(2);
}

template <typename T>
std::vector<T> read_tensor(const std::string& path, size_t n) {
  std::vector<T> data(n);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot open " + path);
  const size_t got = std::fread(data.data(), sizeof(T), n, f);
  std::fclose(f);
  if (got != n) fail(path + ": expected " + std::to_string(n) + " elements, read " + std::to_string(got));
  return data;
}

template <typename T>
void write_tensor(const std::string& path, const std::vector<T>& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail("cannot write " + path);
  std::fwrite(data.data(), sizeof(T), data.size(), f);
  std::fclose(f);
}

int out_size(int n, int K, int stride, int dilation) {
  const int pad = dilation * (K - 1) / 2;
  return (n + 2 * pad - dilation * (K - 1) - 1) / stride + 1;
}

template <typename T>
void poison(std::vector<typename Accum<T>::type>& tile) {
  for (auto& v : tile) v = std::numeric_limits<typename Accum<T>::type>::quiet_NaN();
}

// Tiled forward over the whole grid (tiles, G, B) with block (tx, ty).
template <typename T, int K, bool UNIT>
void fwd_tiled_grid(const T* x, const T* w, T* out, const Shape& s, int btx, int bty) {
  typedef typename Accum<T>::type Acc;
  const int tile_h = bty, tile_w = btx * OUTPUTS_PER_THREAD, nthreads = btx * bty, Cg = s.C / s.G;
  const int tiles = ((s.Ho + tile_h - 1) / tile_h) * ((s.Wo + tile_w - 1) / tile_w);
  std::vector<Acc> tile(tiled_shared_elements<T, K>(s, 0, tile_h, tile_w));
  for (int bz = 0; bz < s.B; ++bz)
    for (int by = 0; by < s.G; ++by)
      for (int bx = 0; bx < tiles; ++bx) {
        const Tile t = tile_of_block(bx, by, bz, s.Wo, tile_h, tile_w);
        const Window win = gather_window<T, K>(s, t, tile_h, tile_w);
        for (int c0 = 0; c0 < Cg; c0 += Chunk<T>::value) {
          const int nc = imin(Chunk<T>::value, Cg - c0);
          poison<T>(tile);
          for (int rank = 0; rank < nthreads; ++rank)
            stage_window_part<T>(x + nchw(s, t.b, t.g * Cg + c0, 0, 0, s.H, s.W), nc, s.H, s.W, win, tile.data(),
                                 rank, nthreads);
          for (int ty = 0; ty < bty; ++ty)
            for (int tx = 0; tx < btx; ++tx)
              fwd_tiled_thread<T, K, UNIT>(w, out, s, t, win, c0, nc, tile.data(), tx, ty);
        }
      }
}

template <typename T, int K, bool UNIT>
void bwd_input_tiled_grid(const T* gout, const T* w, T* grad_x, const Shape& s, int btx, int bty) {
  typedef typename Accum<T>::type Acc;
  const int tile_h = bty, tile_w = btx * OUTPUTS_PER_THREAD, nthreads = btx * bty, Cg = s.C / s.G;
  const int tiles = ((s.H + tile_h - 1) / tile_h) * ((s.W + tile_w - 1) / tile_w);
  std::vector<Acc> tile(tiled_shared_elements<T, K>(s, 1, tile_h, tile_w));
  for (int bz = 0; bz < s.B; ++bz)
    for (int by = 0; by < s.G; ++by)
      for (int bx = 0; bx < tiles; ++bx) {
        const Tile t = tile_of_block(bx, by, bz, s.W, tile_h, tile_w);
        const Window win = scatter_window<T, K>(s, t, tile_h, tile_w);
        for (int c0 = 0; c0 < Cg; c0 += Chunk<T>::value) {
          const int nc = imin(Chunk<T>::value, Cg - c0);
          poison<T>(tile);
          for (int rank = 0; rank < nthreads; ++rank)
            stage_window_part<T>(gout + nchw(s, t.b, t.g * Cg + c0, 0, 0, s.Ho, s.Wo), nc, s.Ho, s.Wo, win,
                                 tile.data(), rank, nthreads);
          for (int ty = 0; ty < bty; ++ty)
            for (int tx = 0; tx < btx; ++tx)
              bwd_input_tiled_thread<T, K, UNIT>(w, grad_x, s, t, win, c0, nc, tile.data(), tx, ty);
        }
      }
}

template <typename T, int K, bool UNIT>
void bwd_kernel_tiled_grid(const T* gout, const T* x, T* grad_w, const Shape& s, int btx, int bty) {
  typedef typename Accum<T>::type Acc;
  const int nthreads = btx * bty, Cg = s.C / s.G;
  const int tiles = ((s.Ho + bty - 1) / bty) * ((s.Wo + btx - 1) / btx);
  std::vector<Acc> tile(tiled_shared_elements<T, K>(s, 0, bty, btx));
  struct Accumulators {
    Acc v[K * K];
  };
  std::vector<Accumulators> acc(nthreads);
  for (int bz = 0; bz < s.B; ++bz)
    for (int by = 0; by < s.G; ++by)
      for (int bx = 0; bx < tiles; ++bx) {
        const Tile t = tile_of_block(bx, by, bz, s.Wo, bty, btx);
        const Window win = gather_window<T, K>(s, t, bty, btx);
        for (auto& a : acc)
          for (auto& v : a.v) v = Acc(0);
        for (int c0 = 0; c0 < Cg; c0 += Chunk<T>::value) {
          const int nc = imin(Chunk<T>::value, Cg - c0);
          poison<T>(tile);
          for (int rank = 0; rank < nthreads; ++rank)
            stage_window_part<T>(x + nchw(s, t.b, t.g * Cg + c0, 0, 0, s.H, s.W), nc, s.H, s.W, win, tile.data(),
                                 rank, nthreads);
          for (int ty = 0; ty < bty; ++ty)
            for (int tx = 0; tx < btx; ++tx)
              bwd_kernel_tiled_accumulate<T, K, UNIT>(gout, s, t, win, c0, nc, tile.data(), tx, ty, acc[ty * btx + tx].v);
        }
        for (int ty = 0; ty < bty; ++ty)
          for (int tx = 0; tx < btx; ++tx) bwd_kernel_tiled_store<T, K>(grad_w, s, t, tx, ty, acc[ty * btx + tx].v);
      }
}

// Fills results with a value no kernel computes from finite inputs, so elements a kernel forgets to
// write stand out.
template <typename T>
std::vector<T> unwritten(size_t n) {
  return std::vector<T>(n, from_acc<T>(typename Accum<T>::type(1e30)));
}

template <typename T, int K>
void run(const Args& a) {
  const int Ho = out_size(a.H, K, a.stride, a.dilation), Wo = out_size(a.W, K, a.stride, a.dilation);
  const Shape s = make_shape(a.B, a.C, a.H, a.W, a.G, Ho, Wo, a.stride, a.dilation, K);
  const size_t n_x = size_t(a.B) * a.C * a.H * a.W, n_out = size_t(a.B) * a.C * Ho * Wo;
  const size_t n_w = size_t(a.B) * a.G * K * K * Ho * Wo;
  const std::vector<T> x = read_tensor<T>(a.dir + "/x.bin", n_x);
  const std::vector<T> w = read_tensor<T>(a.dir + "/w.bin", n_w);
  const std::vector<T> gout = read_tensor<T>(a.dir + "/gout.bin", n_out);
  const bool unit = a.stride == 1 && a.dilation == 1;

  std::vector<T> r = unwritten<T>(n_out);
  for (size_t i = 0; i < n_out; ++i) fwd_simple_point<T, K>(x.data(), w.data(), r.data(), s, index_t(i));
  write_tensor(a.dir + "/fwd_simple.bin", r);

  r = unwritten<T>(n_out);
  if (unit)
    fwd_tiled_grid<T, K, true>(x.data(), w.data(), r.data(), s, a.tx, a.ty);
  else
    fwd_tiled_grid<T, K, false>(x.data(), w.data(), r.data(), s, a.tx, a.ty);
  write_tensor(a.dir + "/fwd_tiled.bin", r);

  r = unwritten<T>(n_out);
  fwd_tiled_grid<T, K, false>(x.data(), w.data(), r.data(), s, a.tx, a.ty);
  write_tensor(a.dir + "/fwd_tiled_general.bin", r);

  r = unwritten<T>(n_x);
  for (size_t i = 0; i < n_x; ++i) bwd_input_simple_point<T, K>(gout.data(), w.data(), r.data(), s, index_t(i));
  write_tensor(a.dir + "/gx_simple.bin", r);

  r = unwritten<T>(n_x);
  if (unit)
    bwd_input_tiled_grid<T, K, true>(gout.data(), w.data(), r.data(), s, a.tx, a.ty);
  else
    bwd_input_tiled_grid<T, K, false>(gout.data(), w.data(), r.data(), s, a.tx, a.ty);
  write_tensor(a.dir + "/gx_tiled.bin", r);

  r = unwritten<T>(n_x);
  bwd_input_tiled_grid<T, K, false>(gout.data(), w.data(), r.data(), s, a.tx, a.ty);
  write_tensor(a.dir + "/gx_tiled_general.bin", r);

  r = unwritten<T>(n_w);
  for (size_t i = 0; i < n_w; ++i) bwd_kernel_simple_point<T, K>(gout.data(), x.data(), r.data(), s, index_t(i));
  write_tensor(a.dir + "/gw_simple.bin", r);

  r = unwritten<T>(n_w);
  if (unit)
    bwd_kernel_tiled_grid<T, K, true>(gout.data(), x.data(), r.data(), s, a.txw, a.tyw);
  else
    bwd_kernel_tiled_grid<T, K, false>(gout.data(), x.data(), r.data(), s, a.txw, a.tyw);
  write_tensor(a.dir + "/gw_tiled.bin", r);

  r = unwritten<T>(n_w);
  bwd_kernel_tiled_grid<T, K, false>(gout.data(), x.data(), r.data(), s, a.txw, a.tyw);
  write_tensor(a.dir + "/gw_tiled_general.bin", r);
}

template <typename T, int K>
void geometry(int stride, int dilation, int tile_h, int tile_w, int kind) {
  // Only K, stride and dilation enter the window's extent; the image size does not.
  const Shape s = make_shape(1, 1, 64, 64, 1, 64, 64, stride, dilation, K);
  std::printf("%lld\n", static_cast<long long>(tiled_shared_elements<T, K>(s, kind, tile_h, tile_w)));
}

// Calls F<T, K>::call(args...) for the DTYPE and K named at run time.
template <template <typename, int> class F, typename T, typename... A>
void with_k(int K, A... args) {
  switch (K) {
    case 1: F<T, 1>::call(args...); break;
    case 3: F<T, 3>::call(args...); break;
    case 5: F<T, 5>::call(args...); break;
    case 7: F<T, 7>::call(args...); break;
    default: fail("K=" + std::to_string(K) + " is not compiled into the harness (1, 3, 5, 7)");
  }
}

template <template <typename, int> class F, typename... A>
void dispatch(const std::string& dtype, int K, A... args) {
  if (dtype == "float32") with_k<F, float>(K, args...);
  else if (dtype == "float64") with_k<F, double>(K, args...);
  else if (dtype == "float16") with_k<F, __half>(K, args...);
  else if (dtype == "bfloat16") with_k<F, __nv_bfloat16>(K, args...);
  else fail("unknown dtype " + dtype + " (float32, float64, float16, bfloat16)");
}

template <typename T, int K> struct Run {
  static void call(const Args* a) { run<T, K>(*a); }
};
template <typename T, int K> struct Geometry {
  static void call(int stride, int dilation, int tile_h, int tile_w, int kind) {
    geometry<T, K>(stride, dilation, tile_h, tile_w, kind);
  }
};

int to_int(const char* s) { return std::atoi(s); }

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "run" && argc == 16) {
    Args a;
    a.dtype = argv[2];
    a.K = to_int(argv[3]);
    a.B = to_int(argv[4]); a.C = to_int(argv[5]); a.H = to_int(argv[6]); a.W = to_int(argv[7]);
    a.G = to_int(argv[8]); a.stride = to_int(argv[9]); a.dilation = to_int(argv[10]);
    a.tx = to_int(argv[11]); a.ty = to_int(argv[12]); a.txw = to_int(argv[13]); a.tyw = to_int(argv[14]);
    a.dir = argv[15];
    if (a.G < 1 || a.C % a.G) fail("C must be a multiple of G");
    dispatch<Run>(a.dtype, a.K, static_cast<const Args*>(&a));
    return 0;
  }
  if (mode == "geometry" && argc == 9) {
    const std::string kind = argv[8];
    if (kind != "gather" && kind != "scatter") fail("KIND must be gather or scatter");
    dispatch<Geometry>(std::string(argv[2]), to_int(argv[3]), to_int(argv[4]), to_int(argv[5]), to_int(argv[6]),
                       to_int(argv[7]), kind == "gather" ? 0 : 1);
    return 0;
  }
  std::fprintf(stderr,
               "usage: involution_harness run DTYPE K B C H W G STRIDE DILATION TX TY TXW TYW DIR\n"
               "       involution_harness geometry DTYPE K STRIDE DILATION TILE_H TILE_W gather|scatter\n");
  return 2;
}
