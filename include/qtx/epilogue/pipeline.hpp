#pragma once
/// @file
/// pipeline<Stages...>: the epilogue chain, applied left to right to each accumulator, then stored.
///
///   auto ep = qtx::epilogue::make_pipeline(epilogue::bias<int32_t>{b},
///                                          epilogue::requantize<epilogue::per_n>{m, zp});
///
/// The store is implied by the destination type: float values store to float; int32 values store
/// to int32 unchanged or saturate to int8/uint8. Storing a float into an integer destination is a
/// compile error (add a quantize stage). A recursive struct rather than std::tuple, so the same
/// object can be passed by value into CUDA kernels. Every stage must satisfy epilogue::stage
/// (stages.hpp); validate() checks them all, as ops::gemm does once per call.
#include <type_traits>

#include "stages.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::epilogue {

/// A chain of epilogue stages, applied left to right; itself a stage (so pipelines nest).
template <class... Stages>
struct pipeline;

/// The empty pipeline: the accumulator is stored as it is.
template <>
struct pipeline<> {
  static constexpr int size = 0;  ///< number of stages
  /// Returns v unchanged.
  template <class V>
  QTX_HOST_DEVICE V operator()(V v, index_t, index_t) const {
    return v;
  }
  /// Nothing to check.
  void validate(const gemm_call&) const {}
};

/// First, then the rest of the chain.
template <class First, class... Rest>
struct pipeline<First, Rest...> {
  static_assert(stage<First>,
                "epilogue::pipeline: every stage must be trivially copyable and have a member "
                "`void validate(const qtx::epilogue::gemm_call&) const` that checks its data against the "
                "GEMM (an empty one if the stage holds no data); see qtx/epilogue/stages.hpp");
  static constexpr int size = 1 + sizeof...(Rest);  ///< number of stages
  First first;                                      ///< applied first
  pipeline<Rest...> rest;                           ///< applied to first's result

  /// The value after every stage, for the accumulator v at output (m, n).
  template <class V>
  QTX_HOST_DEVICE auto operator()(V v, index_t m, index_t n) const {
    return rest(first(v, m, n), m, n);
  }
  /// Validates every stage, left to right; throws the first stage's qtx::error.
  void validate(const gemm_call& call) const {
    first.validate(call);
    rest.validate(call);
  }
};

namespace detail {
template <class First, class... Rest>
QTX_HOST_DEVICE pipeline<First, Rest...> make_pipeline_impl(First first, Rest... rest) {
  pipeline<First, Rest...> p;
  p.first = first;
  if constexpr (sizeof...(Rest) > 0) p.rest = make_pipeline_impl(rest...);
  return p;
}
}  // namespace detail

/// The pipeline of `stages`, in order; each must satisfy epilogue::stage (a static_assert says so).
template <class... Stages>
QTX_HOST_DEVICE pipeline<Stages...> make_pipeline(Stages... stages) {
  if constexpr (sizeof...(Stages) == 0) {
    return {};
  } else {
    return detail::make_pipeline_impl(stages...);
  }
}

/// The value type after the pipeline runs on an accumulator of type Acc.
template <class Pipeline, class Acc>
using result_t = decltype(std::declval<const Pipeline&>()(std::declval<Acc>(), index_t{}, index_t{}));

/// Final cast of a pipeline value V (int32 or float) into the destination element type Out:
/// float → float, int32 → float, or int32 saturated to int32 / int8 / uint8.
template <class Out, class V>
QTX_HOST_DEVICE Out store_cast(V v) {
  if constexpr (std::is_same_v<V, float>) {
    static_assert(std::is_same_v<Out, float>,
                  "epilogue: a float value cannot be stored to an integer destination; "
                  "end the pipeline with epilogue::quantize");
    return v;
  } else {
    static_assert(std::is_same_v<V, int32_t>, "epilogue: values are int32 or float");
    if constexpr (std::is_same_v<Out, float>) {
      return float(v);
    } else {
      return saturate_cast<Out>(v);
    }
  }
}

/// The full scalar semantics: one accumulator at output (m, n) → one stored element.
template <class Out, class Pipeline, class Acc>
QTX_HOST_DEVICE Out evaluate(const Pipeline& p, Acc acc, index_t m, index_t n) {
  return store_cast<Out>(p(acc, m, n));
}

}  // namespace qtx::epilogue
