#pragma once
// The per-layer outlier report of an example model in FP32 (the paper's Table 2 columns), which its
// W8A8 results are read against. (The uint8 grid of the activations is qtx/nn/grid.hpp.)
#include <qtx/core/view.hpp>
#include <qtx/nn/encoder_layer.hpp>
#include <qtx/quant/outlier_stats.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace demo {

using qtx::index_t;
using qtx::matrix_view;

// A W8A8 configuration the demos compare.
struct w8a8_mode {
  std::string name;
  qtx::nn::quantized_layer_options options;
};

// The paper's W8A8 (every point static, residual sums on their uint8 grid), then what a pretrained
// model without clipped softmax or gates calls for: a float residual stream, GEMM inputs quantized
// per call (per tensor, as ONNX Runtime's dynamic quantization; per token), and SmoothQuant-style
// smoothing (α = 0.5) of the LN outputs that feed GEMMs.
inline std::vector<w8a8_mode> w8a8_modes(int weight_bits) {
  qtx::nn::quantized_layer_options paper;
  paper.weight_bits = weight_bits;
  auto float_stream = paper;
  float_stream.round_residuals = false;
  auto per_tensor = float_stream, per_token = float_stream;
  per_tensor.set_activations(qtx::activation_scaling::dynamic_tensor);
  per_token.set_activations(qtx::activation_scaling::dynamic_token);
  auto smoothed = float_stream, per_token_smoothed = per_token;
  smoothed.smoothing_alpha = per_token_smoothed.smoothing_alpha = 0.5f;
  return {{"static (paper: uint8 residual sums)", paper},
          {"static, float residual stream", float_stream},
          {"dynamic per tensor, float residual stream", per_tensor},
          {"dynamic per token, float residual stream", per_token},
          {"static + smoothing 0.5, float residual stream", smoothed},
          {"per token + smoothing 0.5, float stream", per_token_smoothed}};
}

// Where each sequence's largest |x| sits (token, channel), per layer: the paper's outliers gather on
// the tokens no-op heads attend to (the first token — [CLS] / BOS — or the last, [SEP]) in a few
// fixed channels.
class outlier_locations {
 public:
  explicit outlier_locations(index_t layers)
      : at_first_(layers, 0), at_last_(layers, 0), channels_(layers), sequences_(layers, 0) {}
  void add_sequence(index_t layer, matrix_view<const float> x) {
    index_t best_t = 0, best_c = 0;
    for (index_t t = 0; t < x.rows; ++t)
      for (index_t c = 0; c < x.cols; ++c)
        if (std::abs(x(t, c)) > std::abs(x(best_t, best_c))) best_t = t, best_c = c;
    at_first_[layer] += best_t == 0;
    at_last_[layer] += best_t == x.rows - 1 && x.rows > 1;
    ++channels_[layer][best_c];
    ++sequences_[layer];
  }
  void print() const {
    std::printf("  where each sequence's largest |x| sits:\n");
    for (std::size_t l = 0; l < sequences_.size(); ++l) {
      const auto top = std::max_element(channels_[l].begin(), channels_[l].end(),
                                        [](const auto& a, const auto& b) { return a.second < b.second; });
      if (top == channels_[l].end()) continue;
      std::printf("  layer %zu: first token in %ld, last token in %ld of %ld sequences; channel %ld in %ld\n", l,
                  long(at_first_[l]), long(at_last_[l]), long(sequences_[l]), long(top->first), long(top->second));
    }
  }

 private:
  std::vector<index_t> at_first_, at_last_;
  std::vector<std::map<index_t, index_t>> channels_;
  std::vector<index_t> sequences_;
};

struct outlier_summary {
  double max_inf_norm = 0, avg_kurtosis = 0;
};

// Prints the per-layer table, writes it as CSV (the data of the per-layer plot) and returns the model
// columns: max over layers of the inf-norm, mean over layers of the kurtosis.
inline outlier_summary report_layer_stats(const std::vector<qtx::outlier_stats>& stats, const std::filesystem::path& csv_path) {
  outlier_summary s;
  std::ofstream csv(csv_path);
  csv << "layer,max_inf_norm,mean_inf_norm,avg_kurtosis\n";
  std::printf("  layer  max inf-norm  mean inf-norm  avg kurtosis\n");
  for (std::size_t i = 0; i < stats.size(); ++i) {
    const auto& l = stats[i];
    std::printf("  %5zu  %12.2f  %13.2f  %12.1f\n", i, l.max_inf_norm(), l.mean_inf_norm(), l.mean_kurtosis());
    csv << i << ',' << l.max_inf_norm() << ',' << l.mean_inf_norm() << ',' << l.mean_kurtosis() << '\n';
    s.max_inf_norm = std::max(s.max_inf_norm, double(l.max_inf_norm()));
    s.avg_kurtosis += l.mean_kurtosis() / double(stats.size());
  }
  std::printf("  model: max inf-norm %.2f, avg kurtosis %.1f\n", s.max_inf_norm, s.avg_kurtosis);
  return s;
}

}  // namespace demo
