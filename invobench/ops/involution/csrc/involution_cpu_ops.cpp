// The `cpu` variant's two ops, `invobench::involution_cpu` and `invobench::involution_cpu_backward`,
// implemented for the dispatcher in C++: a CPU kernel for each and an Autograd kernel for the forward.
//
// Why C++ and not torch.library.custom_op: at batch 1 the kernels are short, and the Python layers of
// a custom op (its dispatch wrapper, its autograd.Function, the backward op's own wrapper) add a
// sizeable share of their time to every call, more when the interpreter's code and data are out of
// cache, as they are between the calls of a benchmark that interleaves variants (docs/cpu.md,
// "Per-call cost"). Here a call goes Python → dispatcher → C++.
//
// The schemas are defined in Python (cpu.py, with their fake kernels and FLOP formulas, so
// torch.compile, FlopCounterMode and fvcore see the ops before this library is built); this file only
// registers implementations. The kernels themselves are the C ABI of involution_cpu.cpp (declared in
// cpu/abi.h), linked into the same library. The op namespace comes from cpu.py
// (-DINVOBENCH_OPS_NAMESPACE=invobench): an A/B run loads an older checkout beside this one as the
// package `invobench_base`, whose ops live in `invobench_base::`, built into a library of its own.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <cstdint>
#include <tuple>

#include "cpu/abi.h"

#ifndef INVOBENCH_OPS_NAMESPACE
#error "build with -DINVOBENCH_OPS_NAMESPACE=<the ops' namespace> (cpu.py does)"
#endif
#define INVOBENCH_STR_(x) #x
#define INVOBENCH_STR(x) INVOBENCH_STR_(x)
#define INVOBENCH_OP(name) INVOBENCH_STR(INVOBENCH_OPS_NAMESPACE) "::" name

namespace {

using at::Tensor;
using KernelFn = int (*)(int, const int64_t*, int, const void*, const void*, void*);

int dtype_code(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return 0;
    case at::kDouble: return 1;
    case at::kBFloat16: return 2;
    case at::kHalf: return 3;
    default:
      TORCH_CHECK_TYPE(false, "x.dtype=", t, " is not supported by involution.cpu (supports: float64, float32, bfloat16, float16)");
  }
}

// (n + 2p − d(K−1) − 1) / s + 1 with the spec's padding p = d(K−1)/2, K odd: (n − 1) / s + 1, none for n = 0.
int64_t out_size(int64_t n, int64_t s) { return n < 1 ? 0 : (n - 1) / s + 1; }

// The checks that keep the kernels in bounds, for callers of torch.ops.invobench.* directly;
// involution() and cpu.py check first, with the messages of invobench.shapes.
void check_args(const Tensor& x, const Tensor& kernel, int64_t K, int64_t s, int64_t d) {
  TORCH_CHECK_VALUE(K >= 1 && K % 2 == 1, "kernel_size=", K, " must be a positive odd integer");
  TORCH_CHECK_VALUE(s >= 1 && d >= 1, "stride=", s, " and dilation=", d, " must be positive");
  TORCH_CHECK_VALUE(x.dim() == 4, "x has shape ", x.sizes(), "; expected 4-D (B, C, H, W)");
  TORCH_CHECK_VALUE(kernel.dim() == 5, "kernel has shape ", kernel.sizes(), "; expected 5-D (B, G, K*K, Ho, Wo)");
  TORCH_CHECK_TYPE(x.scalar_type() == kernel.scalar_type(), "dtype mismatch: x is ", x.scalar_type(), " but kernel is ",
                   kernel.scalar_type(), "; pass both in one dtype");
  TORCH_CHECK_VALUE(x.device().is_cpu() && kernel.device().is_cpu(), "x is on ", x.device(), " and kernel on ",
                    kernel.device(), "; involution.cpu runs on CPU tensors only");
  dtype_code(x.scalar_type());
  const int64_t C = x.size(1), G = kernel.size(1);
  TORCH_CHECK_VALUE(G >= 1 && C % G == 0, "channels C=", C, " is not divisible by groups G=", G, " (kernel.shape[1])");
  const int64_t Ho = out_size(x.size(2), s), Wo = out_size(x.size(3), s);
  TORCH_CHECK_VALUE(Ho >= 1 && Wo >= 1, "output would be empty: Ho=", Ho, ", Wo=", Wo, " for x of shape ", x.sizes());
  const std::vector<int64_t> expected{x.size(0), G, K * K, Ho, Wo};
  TORCH_CHECK_VALUE(kernel.sizes() == at::IntArrayRef(expected), "kernel has shape ", kernel.sizes(),
                    "; expected (B, G, K*K, Ho, Wo) = ", at::IntArrayRef(expected), " for x of shape ", x.sizes(),
                    ", kernel_size=", K, ", stride=", s, ", dilation=", d);
}

void launch(const char* name, KernelFn fn, const Tensor& x, const Tensor& kernel, int64_t K, int64_t s, int64_t d,
            const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t shape[8] = {x.size(0), x.size(1), x.size(2), x.size(3), kernel.size(1), K, s, d};
  const int status = fn(dtype_code(x.scalar_type()), shape, at::get_num_threads(), a.data_ptr(), b.data_ptr(), out.data_ptr());
  TORCH_CHECK(status == 0, "involution.cpu ", name, " failed: ",
              status == 2 ? "out of memory for the per-thread scratch buffers" : "invalid arguments");
}

Tensor forward_cpu(const Tensor& x_in, const Tensor& kernel_in, int64_t K, int64_t s, int64_t d) {
  check_args(x_in, kernel_in, K, s, d);
  const Tensor x = x_in.contiguous(), kernel = kernel_in.contiguous();
  Tensor out = at::empty({x.size(0), x.size(1), kernel.size(3), kernel.size(4)}, x.options());
  if (out.numel()) launch("forward", invobench_involution_forward, x, kernel, K, s, d, x, kernel, out);
  return out;
}

std::tuple<Tensor, Tensor> backward_cpu(const Tensor& grad_out_in, const Tensor& x_in, const Tensor& kernel_in, int64_t K,
                                        int64_t s, int64_t d) {
  check_args(x_in, kernel_in, K, s, d);
  const std::vector<int64_t> expected{x_in.size(0), x_in.size(1), kernel_in.size(3), kernel_in.size(4)};
  TORCH_CHECK_VALUE(grad_out_in.sizes() == at::IntArrayRef(expected) && grad_out_in.scalar_type() == x_in.scalar_type() &&
                        grad_out_in.device().is_cpu(),
                    "grad_out has shape ", grad_out_in.sizes(), " and dtype ", grad_out_in.scalar_type(), "; expected ",
                    at::IntArrayRef(expected), " ", x_in.scalar_type(), " on the CPU");
  const Tensor grad_out = grad_out_in.contiguous(), x = x_in.contiguous(), kernel = kernel_in.contiguous();
  if (!grad_out.numel()) return {at::zeros(x.sizes(), x.options()), at::zeros(kernel.sizes(), kernel.options())};
  Tensor grad_x = at::empty(x.sizes(), x.options()), grad_w = at::empty(kernel.sizes(), kernel.options());
  launch("grad_input", invobench_involution_grad_input, x, kernel, K, s, d, grad_out, kernel, grad_x);
  launch("grad_kernel", invobench_involution_grad_kernel, x, kernel, K, s, d, grad_out, x, grad_w);
  return {grad_x, grad_w};
}

// Both ops are called through the dispatcher, not directly, so that profilers, FlopCounterMode and
// tracing see the forward and the backward op as every other variant's.
const c10::TypedOperatorHandle<decltype(forward_cpu)>& forward_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow(INVOBENCH_OP("involution_cpu"), "").typed<decltype(forward_cpu)>();
  return op;
}
const c10::TypedOperatorHandle<decltype(backward_cpu)>& backward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow(INVOBENCH_OP("involution_cpu_backward"), "")
                             .typed<decltype(backward_cpu)>();
  return op;
}

class InvolutionCpuFunction : public torch::autograd::Function<InvolutionCpuFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& kernel, int64_t K, int64_t s,
                        int64_t d) {
    ctx->save_for_backward({x, kernel});
    ctx->saved_data["K"] = K;
    ctx->saved_data["s"] = s;
    ctx->saved_data["d"] = d;
    at::AutoDispatchBelowADInplaceOrView below_autograd;  // to the CPU kernel, not back to this one
    return forward_op().call(x, kernel, K, s, d);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    auto [grad_x, grad_w] = backward_op().call(grad_outputs[0].contiguous(), saved[0], saved[1], ctx->saved_data["K"].toInt(),
                                               ctx->saved_data["s"].toInt(), ctx->saved_data["d"].toInt());
    return {grad_x, grad_w, Tensor(), Tensor(), Tensor()};
  }
};

Tensor forward_autograd(const Tensor& x, const Tensor& kernel, int64_t K, int64_t s, int64_t d) {
  return InvolutionCpuFunction::apply(x, kernel, K, s, d);
}

}  // namespace

TORCH_LIBRARY_IMPL(INVOBENCH_OPS_NAMESPACE, CPU, m) {
  m.impl("involution_cpu", forward_cpu);
  m.impl("involution_cpu_backward", backward_cpu);
}

TORCH_LIBRARY_IMPL(INVOBENCH_OPS_NAMESPACE, Autograd, m) { m.impl("involution_cpu", forward_autograd); }
