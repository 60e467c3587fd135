// The integer GEMM's pipelines (the grammar of gemm.hpp, uint8 A).
#include "intrinsics_first.hpp"

#include <qtx/epilogue/pipeline.hpp>

#include "gemm.hpp"

namespace qtx::python {

namespace ep = qtx::epilogue;

namespace {

// Runs the pipeline of `stages` into c, whose element type must be one the pipeline stores:
// float for a float result, int32 for the raw accumulator, 8 bit after (re)quantization.
template <bool eight_bit, class... Stages>
void run(matrix_view<const uint8_t> a, const packed_int8& b, const any_output& c, int32_t za,
         std::bool_constant<eight_bit>, Stages... stages) {
  const auto pipeline = ep::make_pipeline(stages...);
  using value = ep::result_t<decltype(pipeline), int32_t>;
  std::visit(
      [&](auto c_view) {
        using TC = typename decltype(c_view)::value_type;
        constexpr bool is_float = std::is_same_v<TC, float>, is_int32 = std::is_same_v<TC, int32_t>;
        if constexpr (std::is_same_v<value, float>) {
          check(is_float, "gemm: a dequantized result is stored as float32 (end with quantize for 8 bit), got ",
                dtype_name<TC>());
          if constexpr (is_float) run_kernel([&] { ops::gemm(arch{}, a, b, c_view, pipeline, za); });
        } else {
          constexpr bool storable = !is_float && is_int32 != eight_bit;
          check(storable, "gemm: this epilogue stores ",
                eight_bit ? "uint8 or int8 (after requantize / quantize)" : "int32 (the accumulator)", ", got ",
                dtype_name<TC>());
          if constexpr (storable) run_kernel([&] { ops::gemm(arch{}, a, b, c_view, pipeline, za); });
        }
      },
      c);
}

// The per-row grammar: [subtract_row_zero_point] (dequantize | dequantize_rows) [bias(float32)].
void gemm_per_row(matrix_view<const uint8_t> a, const packed_int8& b, const any_output& c, const parsed_epilogue& e,
                  int32_t za) {
  const ep::span<const float> dequant(e.dequant_scales.data(), index_t(e.dequant_scales.size()));
  const auto finish = [&](auto... s) { run(a, b, c, za, std::false_type{}, s...); };
  const auto float_bias_step = [&](auto... s) {
    if (e.bias_float)
      finish(s..., ep::bias<float>{ep::span<const float>(e.bias_float->data, e.bias_float->size)});
    else
      finish(s...);
  };
  const auto dequantize_step = [&](auto... s) {
    if (e.row_scales)
      float_bias_step(s..., ep::dequantize_rows<ep::per_n>{
                                ep::span<const float>(e.row_scales->data, e.row_scales->size), dequant});
    else
      float_bias_step(s..., ep::dequantize<ep::per_n>{dequant});
  };
  if (e.row_zero_points)
    dequantize_step(ep::subtract_row_zero_point{
        ep::span<const int32_t>(e.row_zero_points->data, e.row_zero_points->size),
        ep::span<const int32_t>(e.column_sums->data, e.column_sums->size)});
  else
    dequantize_step();
}

}  // namespace

void gemm_uint8(matrix_view<const uint8_t> a, const packed_int8& b, any_output c, const parsed_epilogue& e,
                int32_t za) {
  if (e.per_row()) return gemm_per_row(a, b, c, e, za);
  const ep::span<const float> requant(e.requant_multipliers.data(), index_t(e.requant_multipliers.size()));
  const ep::span<const float> dequant(e.dequant_scales.data(), index_t(e.dequant_scales.size()));
  // Each step appends its optional stage and hands the chain to the next step.
  auto finish = [&](auto eight_bit, auto... s) { run(a, b, c, za, eight_bit, s...); };
  auto quantize_step = [&](auto... s) {
    if (e.quantize)
      finish(std::true_type{}, s..., ep::quantize{e.quantize->inv_scale(), e.quantize->zero_point});
    else
      finish(std::false_type{}, s...);
  };
  auto residual_step = [&](auto... s) {
    if (e.residual)
      quantize_step(s..., ep::residual_add{e.residual->view});
    else
      quantize_step(s...);
  };
  auto float_step = [&](auto... s) {
    switch (e.act) {
      case activation::none: return residual_step(s..., ep::dequantize<ep::per_n>{dequant});
      case activation::relu: return residual_step(s..., ep::dequantize<ep::per_n>{dequant}, ep::relu{});
      case activation::gelu_erf: return residual_step(s..., ep::dequantize<ep::per_n>{dequant}, ep::gelu_erf{});
      case activation::gelu_tanh: return residual_step(s..., ep::dequantize<ep::per_n>{dequant}, ep::gelu_tanh{});
    }
  };
  auto integer_step = [&](auto... s) {
    if (e.requantizes())
      finish(std::true_type{}, s..., ep::requantize<ep::per_n>{requant, e.requant_zero_point});
    else
      finish(std::false_type{}, s...);
  };
  auto after_bias = [&](auto... s) {
    if (e.dequantizes())
      float_step(s...);
    else if (e.relu_acc)
      integer_step(s..., ep::relu{});
    else
      integer_step(s...);
  };
  if (e.bias_int)
    after_bias(ep::bias<int32_t>{ep::span<const int32_t>(e.bias_int->data, e.bias_int->size)});
  else
    after_bias();
}

}  // namespace qtx::python
