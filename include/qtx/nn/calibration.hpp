#pragma once
// Calibrating an encoder layer for W8A8: the tensors its quantized form stores as uint8
// (layer_point), their quantization parameters (layer_calibration), and the observer an FP32
// forward pass feeds (layer_observer; layer_calibrator records running min-max ranges).
//
//   encoder_layer fp32(...);  layer_calibrator cal;
//   for (batch : calibration_set) fp32.forward(x, ws, &cal);
//   quantized_encoder_layer w8a8(fp32, cal.result());
#include <algorithm>
#include <array>
#include <optional>
#include <variant>
#include <vector>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../quant/observers.hpp"
#include "../quant/params.hpp"
#include "../quant/smoothing.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::nn {

/// The tensors of one encoder layer that W8A8 quantizes, in forward order of a pre-LN layer.
/// `input` is the layer's input: a post-LN layer reads it as uint8 (the previous LN's output);
/// a pre-LN layer reads the float residual stream and never observes it.
enum class layer_point : int {
  input,
  attention_ln,
  q,
  k,
  v,
  context,
  attention_residual,
  ffn_ln,
  ffn_hidden,
  ffn_residual,
};

/// The number of layer_point values.
inline constexpr int layer_points = 10;

/// The point's name as error messages and reports show it ("attention_residual").
inline const char* layer_point_name(layer_point p) {
  static constexpr const char* names[layer_points] = {"input",   "attention_ln",       "q",      "k",
                                                      "v",       "context",            "attention_residual",
                                                      "ffn_ln",  "ffn_hidden",         "ffn_residual"};
  const int i = int(p);
  return i >= 0 && i < layer_points ? names[i] : "unknown layer_point";
}

/// Receives the float tensor of every quantization point during an FP32 forward pass.
class layer_observer {
 public:
  virtual ~layer_observer() = default;
  /// Called once per point and forward call with that call's (tokens, width) tensor.
  virtual void observe(layer_point point, matrix_view<const float> tensor) = 0;
};

/// uint8 quantization parameters of a layer's points; a point without a value was never calibrated.
struct layer_calibration {
  std::array<std::optional<quant_params>, layer_points> points;  ///< indexed by layer_point
  /// Per-channel ranges of the points (what SmoothQuant-style smoothing needs), where recorded.
  std::array<std::optional<channel_range>, layer_points> channels;

  /// The parameters of `p`, which a W8A8 layer needs.
  /// @param fn the function named by the error.
  /// @throws qtx::error when `p` was not calibrated.
  quant_params at(layer_point p, const char* fn) const {
    const auto& v = points[std::size_t(p)];
    check(v.has_value(), fn, ": calibration has no range for point '", layer_point_name(p),
          "' (run calibration batches through the FP32 layer first)");
    return *v;
  }
  /// Sets the parameters of `p`.
  void set(layer_point p, quant_params params) { points[std::size_t(p)] = params; }
  /// The per-channel ranges of `p`.
  /// @throws qtx::error naming fn when they were not recorded.
  const channel_range& channels_at(layer_point p, const char* fn) const {
    const auto& v = channels[std::size_t(p)];
    check(v.has_value(), fn, ": calibration has no per-channel ranges for point '", layer_point_name(p),
          "' (layer_calibrator records them)");
    return *v;
  }
  /// Parameters of `p` per group of `groups` equal runs of its channels (per head, for the attention
  /// context): each group's own [min, max] from the per-channel ranges, clipped to the range the
  /// point's parameters represent, so a group never gets a coarser grid than the whole tensor's and a
  /// quiet group (a head its gate scales down) a finer one.
  /// @throws qtx::error naming fn when `p` lacks either range or `groups` does not divide its channels.
  std::vector<quant_params> group_params(layer_point p, index_t groups, const char* fn) const {
    const quant_params tensor = at(p, fn);
    const channel_range& ch = channels_at(p, fn);
    check(groups > 0 && ch.channels() % groups == 0, fn, ": ", groups, " groups do not divide the ", ch.channels(),
          " channels of point '", layer_point_name(p), "'");
    const float tensor_lo = tensor.scale * float(0 - tensor.zero_point);
    const float tensor_hi = tensor.scale * float(255 - tensor.zero_point);
    const index_t width = ch.channels() / groups;
    std::vector<quant_params> params;
    for (index_t g = 0; g < groups; ++g) {
      float lo = 0.0f, hi = 0.0f;
      for (index_t j = g * width; j < (g + 1) * width; ++j)
        lo = std::min(lo, ch.lo[std::size_t(j)]), hi = std::max(hi, ch.hi[std::size_t(j)]);
      params.push_back(asymmetric_params<uint8_t>(std::max(lo, tensor_lo), std::min(hi, tensor_hi)));
    }
    return params;
  }
};

/// The range estimators of quant/observers.hpp a layer_calibrator can use at a point.
enum class range_estimator {
  running_minmax,  ///< the paper's: EMA of each batch's min and max
  minmax,          ///< min and max over everything (clips nothing)
  percentile,      ///< the 99.999th percentiles (clips the rarest outliers)
  mse,             ///< the range that minimises the uint8 round-trip error
};

/// A layer_observer that keeps a range estimate of every point it sees (one observe() call = one
/// batch; the paper's running min-max unless use() chose another for the point) and turns them into
/// asymmetric uint8 parameters, and each point's per-channel [min, max] (for smoothing).
class layer_calibrator final : public layer_observer {
 public:
  /// Estimates the range of `point` with `estimator`.
  /// @throws qtx::error once the point has been observed (its statistics would be lost).
  void use(layer_point point, range_estimator estimator) {
    auto& o = observers_[std::size_t(point)];
    check(std::visit([](const auto& obs) { return obs.empty(); }, o), "layer_calibrator::use: point '",
          layer_point_name(point), "' has been observed already; choose its estimator before calibrating");
    switch (estimator) {
      case range_estimator::running_minmax: o = running_minmax_observer{}; break;
      case range_estimator::minmax: o = minmax_observer{}; break;
      case range_estimator::percentile: o = percentile_observer{}; break;
      case range_estimator::mse: o = mse_observer<uint8_t>{}; break;
      default: check(false, "layer_calibrator::use: unknown range_estimator (", int(estimator), ")");
    }
  }
  /// use() for every point.
  void use(range_estimator estimator) {
    for (int i = 0; i < layer_points; ++i) use(layer_point(i), estimator);
  }
  /// Records `tensor` as one batch of `point`.
  void observe(layer_point point, matrix_view<const float> tensor) override {
    std::visit([&](auto& obs) { obs.observe(tensor); }, observers_[std::size_t(point)]);
    channels_[std::size_t(point)].observe(tensor);
  }
  /// Parameters of every point observed at least once (finite values only).
  layer_calibration result() const {
    layer_calibration c;
    for (int i = 0; i < layer_points; ++i)
      std::visit(
          [&](const auto& obs) {
            if (!obs.empty()) c.points[std::size_t(i)] = obs.template params<uint8_t>();
          },
          observers_[std::size_t(i)]);
    for (int i = 0; i < layer_points; ++i)
      if (!channels_[std::size_t(i)].empty()) c.channels[std::size_t(i)] = channels_[std::size_t(i)].range();
    return c;
  }

 private:
  using any_observer = std::variant<running_minmax_observer, minmax_observer, percentile_observer, mse_observer<uint8_t>>;
  std::array<any_observer, layer_points> observers_;
  std::array<channel_minmax_observer, layer_points> channels_;
};

}  // namespace qtx::nn
