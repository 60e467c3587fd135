// The float GEMM's pipelines (the grammar of gemm.hpp, float32 A).
#include "intrinsics_first.hpp"

#include <qtx/epilogue/pipeline.hpp>

#include "gemm.hpp"

namespace qtx::python {

namespace ep = qtx::epilogue;

void gemm_float(matrix_view<const float> a, const packed_float& b, matrix_view<float> c, const parsed_epilogue& e) {
  auto finish = [&](auto... s) {
    const auto pipeline = ep::make_pipeline(s...);
    run_kernel([&] { ops::gemm(arch{}, a, b, c, pipeline); });
  };
  auto residual_step = [&](auto... s) {
    if (e.residual)
      finish(s..., ep::residual_add{e.residual->view});
    else
      finish(s...);
  };
  auto activation_step = [&](auto... s) {
    switch (e.act) {
      case activation::none: return residual_step(s...);
      case activation::relu: return residual_step(s..., ep::relu{});
      case activation::gelu_erf: return residual_step(s..., ep::gelu_erf{});
      case activation::gelu_tanh: return residual_step(s..., ep::gelu_tanh{});
    }
  };
  auto scale_step = [&](auto... s) {
    if (e.scale)
      activation_step(s..., ep::scale{*e.scale});
    else
      activation_step(s...);
  };
  if (e.bias_float)
    scale_step(ep::bias<float>{ep::span<const float>(e.bias_float->data, e.bias_float->size)});
  else
    scale_step();
}

}  // namespace qtx::python
