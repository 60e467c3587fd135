#pragma once
// pipeline<Stages...>: the epilogue chain, applied left to right to each accumulator, then stored.
//
//   auto ep = qtx::epilogue::make_pipeline(epilogue::bias<int32_t>{b},
//                                          epilogue::requantize<epilogue::per_n>{m, zp});
//
// The store is implied by the destination type: float values store to float; int32 values store
// to int32 unchanged or saturate to int8/uint8. Storing a float into an integer destination is a
// compile error (add a quantize stage). A recursive struct rather than std::tuple, so the same
// object can be passed by value into CUDA kernels.
#include <type_traits>

#include "stages.hpp"

namespace qtx::epilogue {

template <class... Stages>
struct pipeline;

template <>
struct pipeline<> {
  static constexpr int size = 0;
  template <class V>
  QTX_HOST_DEVICE V operator()(V v, index_t, index_t) const {
    return v;
  }
};

template <class First, class... Rest>
struct pipeline<First, Rest...> {
  static constexpr int size = 1 + sizeof...(Rest);
  First first;
  pipeline<Rest...> rest;

  template <class V>
  QTX_HOST_DEVICE auto operator()(V v, index_t m, index_t n) const {
    return rest(first(v, m, n), m, n);
  }
};

template <class First, class... Rest>
QTX_HOST_DEVICE pipeline<First, Rest...> make_pipeline_impl(First first, Rest... rest) {
  pipeline<First, Rest...> p;
  p.first = first;
  if constexpr (sizeof...(Rest) > 0) p.rest = make_pipeline_impl(rest...);
  return p;
}

template <class... Stages>
QTX_HOST_DEVICE pipeline<Stages...> make_pipeline(Stages... stages) {
  if constexpr (sizeof...(Stages) == 0) {
    return {};
  } else {
    return make_pipeline_impl(stages...);
  }
}

// The value type after the pipeline runs on an accumulator of type Acc.
template <class Pipeline, class Acc>
using result_t = decltype(std::declval<const Pipeline&>()(std::declval<Acc>(), index_t{}, index_t{}));

// Final cast of a pipeline value into the destination element type.
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

// The full scalar semantics: one accumulator at output (m, n) → one stored element.
template <class Out, class Pipeline, class Acc>
QTX_HOST_DEVICE Out evaluate(const Pipeline& p, Acc acc, index_t m, index_t n) {
  return store_cast<Out>(p(acc, m, n));
}

}  // namespace qtx::epilogue
