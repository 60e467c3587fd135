#pragma once
// Glue between an example model and the qtx::nn encoder layers: the model's own numbering of the
// quantization points (its observer API and calibration tables).
#include <qtx/core/types.hpp>
#include <qtx/core/view.hpp>
#include <qtx/nn/calibration.hpp>

#include <array>
#include <functional>
#include <optional>

namespace demo {

using qtx::index_t;

// A model's observer: (layer, point, tensor) at every quantization point of the FP32 forward.
using model_observer = std::function<void(index_t, int, qtx::matrix_view<const float>)>;

// The model's point number of each qtx::nn::layer_point (−1: the model does not report it).
using point_map = std::array<int, qtx::nn::layer_points>;

// Reports one library layer's points to a model observer under the model's numbering.
class point_reporter final : public qtx::nn::layer_observer {
 public:
  point_reporter(const model_observer& report, index_t layer, const point_map& map)
      : report_(report), layer_(layer), map_(map) {}
  void observe(qtx::nn::layer_point p, qtx::matrix_view<const float> t) override {
    if (const int point = map_[std::size_t(p)]; point >= 0) report_(layer_, point, t);
  }

  // The reporter for `layer`, or none (a null observer) when the model has no observer.
  static std::optional<point_reporter> make(const model_observer* report, index_t layer, const point_map& map) {
    if (!report) return std::nullopt;
    return std::optional<point_reporter>(std::in_place, *report, layer, map);
  }

 private:
  const model_observer& report_;
  index_t layer_;
  const point_map& map_;
};

// A layer's calibration from a model's table of params (indexed by its point numbers).
template <std::size_t N>
qtx::nn::layer_calibration layer_calibration_from(const std::array<qtx::quant_params, N>& table, const point_map& map) {
  qtx::nn::layer_calibration c;
  for (int p = 0; p < qtx::nn::layer_points; ++p)
    if (map[std::size_t(p)] >= 0) c.set(qtx::nn::layer_point(p), table[std::size_t(map[std::size_t(p)])]);
  return c;
}

}  // namespace demo
