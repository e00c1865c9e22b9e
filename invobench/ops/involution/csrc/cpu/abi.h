// The C ABI of the CPU kernels, defined in involution_cpu.cpp: plain pointers to NCHW-contiguous
// tensors that the caller has validated and allocated (involution_cpu_ops.cpp's check_args). C and C++
// callers include this header; it needs no torch header and none of the kernel headers.
//
//   dtype   0 float32, 1 float64, 2 bfloat16, 3 float16 (x, w and the outputs all of it)
//   shape   {B, C, H, W, G, K, stride, dilation}; padding d·(K−1)/2, K odd
//   return  0 ok, 1 bad argument, 2 out of memory (the per-thread scratch buffers)
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// out (B, C, Ho, Wo) = involution(x (B, C, H, W), w (B, G, K², Ho, Wo)).
int invobench_involution_forward(int dtype, const int64_t* shape, int nthreads, const void* x, const void* w, void* out);

// grad_x (B, C, H, W) from grad_out (B, C, Ho, Wo) and w.
int invobench_involution_grad_input(int dtype, const int64_t* shape, int nthreads, const void* grad_out, const void* w,
                                    void* grad_x);

// grad_w (B, G, K², Ho, Wo) from grad_out and x.
int invobench_involution_grad_kernel(int dtype, const int64_t* shape, int nthreads, const void* grad_out, const void* x,
                                     void* grad_w);

// The build's SIMD width and blocking, e.g. "isa=avx2 vector_bytes=32 block=8 pair_block=6 openmp=201511".
const char* invobench_involution_build_info(void);

#ifdef __cplusplus
}  // extern "C"
#endif
