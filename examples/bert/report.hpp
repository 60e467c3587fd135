#pragma once
// The BERT demo's printed summary and per-layer CSVs (the data of the inf-norm plot): the layer
// outputs (post-LN) and the residual sums before each LN, where MiniLM's outliers are.
#include "../common/demo.hpp"
#include "../common/w8a8.hpp"

#include <qtx/quant/outlier_stats.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

namespace demo {

// One W8A8 mode's results on the held-out sentences and the probe's test emails.
struct mode_result {
  std::string name;
  std::vector<double> cosines;  // FP32 vs W8A8 per held-out sentence
  double ms = 0;                // per sentence, batch 1
  double probe = 0;             // spam-probe accuracy on this mode's embeddings
};

struct report {
  std::vector<qtx::outlier_stats> layer_stats;     // FP32, output of each layer
  std::vector<qtx::outlier_stats> attention_residual_stats;  // FP32, x + attention(x): the first LN's input
  std::vector<qtx::outlier_stats> residual_stats;  // FP32, each layer's FFN residual sum (its last LN's input)
  std::vector<mode_result> modes;  // per W8A8 mode (w8a8_modes), the paper's first
  double probe_fp32 = 0, ms_fp32 = 0, mean_tokens = 0;
  // --reference: the model every cosine and the probe's training refer to (empty: this model's
  // FP32), and this model's FP32 embeddings against it.
  std::string reference;
  std::vector<double> fp32_cosines;
  index_t probe_train = 0, probe_test = 0;
  // The held-out sentences again in batches of batch_size (qtx::nn::packed_sequences).
  index_t batch_size = 0;
  double ms_fp32_batched = 0, ms_w8a8_batched = 0;
  bool batches_identical = false;  // every batched embedding equals its one-at-a-time one

  // Prints the summary and writes into out_dir the per-layer CSVs (the data of the inf-norm plot:
  // layer_stats.csv for the layer outputs, residual_stats.csv for both residual sums of each layer)
  // and summary.json (every number of the printed tables; tools/train/evaluate_retrofit.py reads it).
  void print(const std::filesystem::path& out_dir) const {
    write_summary(out_dir / "summary.json");
    std::printf("\nOutlier statistics of the FP32 model (layer outputs, per sequence, averaged):\n");
    report_layer_stats(layer_stats, out_dir / "layer_stats.csv");
    write_residual_stats(out_dir / "residual_stats.csv");
    const std::string baseline = reference.empty() ? "FP32" : "the FP32 reference " + reference;
    std::printf("\n%s vs W8A8 on %zu held-out sentences (mean %.1f tokens), spam probe on %ld test emails "
                "(logistic regression trained on %ld embeddings of %s):\n",
                baseline.c_str(), modes.empty() ? std::size_t(0) : modes[0].cosines.size(), mean_tokens,
                long(probe_test), long(probe_train), baseline.c_str());
    std::printf("  %-44s %12s %10s %10s %14s\n", "W8A8 mode", "cosine mean", "min", "probe %", "ms/sentence");
    if (reference.empty())
      std::printf("  %-44s %12s %10s %10.2f %14.2f\n", "FP32", "1", "1", 100 * probe_fp32, ms_fp32);
    else
      std::printf("  %-44s %12.5f %10.5f %10.2f %14.2f\n", "FP32 (this model)", mean(fp32_cosines),
                  lowest(fp32_cosines), 100 * probe_fp32, ms_fp32);
    for (const auto& m : modes)
      std::printf("  %-44s %12.5f %10.5f %10.2f %14.2f\n", m.name.c_str(), mean(m.cosines), lowest(m.cosines),
                  100 * m.probe, m.ms);
    std::printf("Batches of %ld sentences packed without padding: FP32 %.2f ms, W8A8 (%s) %.2f ms per sentence "
                "(%.0f and %.0f sentences/s); embeddings identical to one at a time: %s\n",
                long(batch_size), ms_fp32_batched, modes.empty() ? "" : modes[0].name.c_str(), ms_w8a8_batched,
                1e3 / ms_fp32_batched, 1e3 / ms_w8a8_batched, batches_identical ? "yes" : "NO");
  }

 private:
  static double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }
  static double lowest(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

  void write_summary(const std::filesystem::path& path) const {
    auto stats = [](const std::vector<qtx::outlier_stats>& per_layer) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& s : per_layer) j.push_back({{"max_inf_norm", s.max_inf_norm()}, {"avg_kurtosis", s.mean_kurtosis()}});
      return j;
    };
    auto cosine_summary = [](const std::vector<double>& c) { return nlohmann::json{{"mean", mean(c)}, {"min", lowest(c)}}; };
    nlohmann::json j{{"reference", reference},
                     {"sentences", modes.empty() ? std::size_t(0) : modes[0].cosines.size()},
                     {"mean_tokens", mean_tokens},
                     {"fp32", {{"probe", probe_fp32}, {"ms", ms_fp32}}},
                     {"layer_outputs", stats(layer_stats)},
                     {"attention_residual_sums", stats(attention_residual_stats)},
                     {"ffn_residual_sums", stats(residual_stats)},
                     {"batched", {{"size", batch_size}, {"ms_fp32", ms_fp32_batched}, {"ms_w8a8", ms_w8a8_batched}}}};
    if (!fp32_cosines.empty()) j["fp32"]["cosine"] = cosine_summary(fp32_cosines);
    for (const auto& m : modes)
      j["w8a8"].push_back({{"mode", m.name}, {"cosine", cosine_summary(m.cosines)}, {"probe", m.probe}, {"ms", m.ms}});
    std::ofstream out(path);
    qtx::check(out.good(), "cannot write '", path.string(), "'");
    out << j.dump(2) << '\n';
  }

  // The residual sums, the LN inputs: max / mean inf-norm and kurtosis per layer, printed and as CSV.
  void write_residual_stats(const std::filesystem::path& csv_path) const {
    std::ofstream csv(csv_path);
    qtx::check(csv.good(), "cannot write '", csv_path.string(), "'");
    csv << "layer,attention_sum_max_inf_norm,attention_sum_mean_inf_norm,attention_sum_avg_kurtosis,"
           "ffn_sum_max_inf_norm,ffn_sum_mean_inf_norm,ffn_sum_avg_kurtosis\n";
    std::printf("  residual sums (the LN inputs):  x + attention      x + FFN\n"
                "  layer                        max inf  kurtosis   max inf  kurtosis\n");
    for (std::size_t i = 0; i < residual_stats.size(); ++i) {
      const auto &a = attention_residual_stats[i], &f = residual_stats[i];
      std::printf("  %5zu                      %9.1f %9.1f %9.1f %9.1f\n", i, a.max_inf_norm(), a.mean_kurtosis(),
                  f.max_inf_norm(), f.mean_kurtosis());
      csv << i << ',' << a.max_inf_norm() << ',' << a.mean_inf_norm() << ',' << a.mean_kurtosis() << ','
          << f.max_inf_norm() << ',' << f.mean_inf_norm() << ',' << f.mean_kurtosis() << '\n';
    }
  }
};

}  // namespace demo
