#pragma once
// Masked-LM evaluation of a BertForMaskedLM checkpoint (the checkpoints of tools/train/bert_mlm.py),
// FP32 vs W8A8 — the paper's Table 2 row for one model:
//
//   MLM perplexity = exp(mean over masked positions of −log p(token | sentence with [MASK]s))
//
// Masking is deterministic so that runs (and the PyTorch trainer's held-out number) compare
// exactly: in sentence s of the held-out sample, every position 1 ≤ t ≤ T−2 with
// (t + s) % mask_period == 0 becomes [MASK]. The held-out sample is every ⌊N/count⌋-th line of
// sotu_heldout.txt (N lines), the first `count` of them. Activation ranges come from running
// min-max over calibration sentences of the training split; outlier statistics (inf-norm,
// kurtosis) are measured at every layer's output on the same calibration pass.
#include "bert.hpp"
#include "../common/demo.hpp"

#include <qtx/quant/observers.hpp>
#include <qtx/quant/outlier_stats.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdio>
#include <fstream>

namespace bert {

inline constexpr index_t mask_period = 7;

struct mlm_result {
  double ppl_fp32 = 0, ppl_w8a8 = 0, masked_tokens = 0;
  std::vector<qtx::outlier_stats> layer_stats;
  demo::outlier_locations locations{0};
};

// −log softmax(row)[target], in double.
inline double token_nll(const float* row, index_t vocab, index_t target) {
  const float mx = *std::max_element(row, row + vocab);
  double z = 0;
  for (index_t c = 0; c < vocab; ++c) z += std::exp(double(row[c]) - mx);
  return std::log(z) + mx - row[target];
}

// The deterministic masking of sentence s: position t (1 ≤ t ≤ T−2) becomes [MASK] when
// (t + s) % mask_period == 0. Returns the masked positions.
inline std::vector<index_t> mask_tokens(std::vector<qtx::io::token_id>& ids, index_t s, qtx::io::token_id mask_id) {
  std::vector<index_t> positions;
  for (index_t t = 1; t + 1 < index_t(ids.size()); ++t)
    if ((t + s) % mask_period == 0) ids[std::size_t(t)] = mask_id, positions.push_back(t);
  return positions;
}

template <class Model>
mlm_result mlm_eval(Model& model, const qtx::io::wordpiece_tokenizer& tok, const std::filesystem::path& text_dir,
                    index_t heldout, index_t calibration_sentences, index_t max_tokens,
                    const qtx::nn::quantized_layer_options& w8a8 = {}, bool calibrate_masked = false) {
  qtx::check(model.has_mlm_head(), "bert --mlm-eval: the checkpoint has no cls.predictions.* (MLM head) tensors");
  const auto& cfg = model.cfg();
  const index_t L = cfg.layers;
  const auto mask_id = tok.id_of("[MASK]");

  calibration_recorder recorder(L);
  mlm_result r;
  r.layer_stats.resize(L);
  r.locations = demo::outlier_locations(L);
  const typename Model::observer record = [&](index_t layer, int point, qtx::matrix_view<const float> t) {
    recorder(layer, point, t);
    if (layer < 0) return;
    if (point == ffn_ln) r.layer_stats[layer].add_sequence(t), r.locations.add_sequence(layer, t);
  };
  qtx::aligned_buffer<float> hidden, logits;
  const auto calib = demo::read_lines(text_dir / "sotu_calibration.txt", calibration_sentences, 7);
  {
    demo::progress bar("calibrating (FP32)", index_t(calib.size()));
    for (std::size_t s = 0; s < calib.size(); ++s) {
      auto ids = tok.encode(calib[s], max_tokens);
      if (calibrate_masked) mask_tokens(ids, index_t(s), mask_id);
      model.forward(ids, hidden, &record);
      bar.tick();
    }
  }
  model.quantize(recorder.result(), w8a8);

  const auto all = demo::read_lines(text_dir / "sotu_heldout.txt", std::numeric_limits<index_t>::max(), 1);
  const index_t stride = std::max<index_t>(1, index_t(all.size()) / std::max<index_t>(heldout, 1));
  double nll_fp32 = 0, nll_w8a8 = 0;
  demo::progress bar("held-out MLM FP32 vs W8A8", std::min<index_t>(heldout, (index_t(all.size()) + stride - 1) / stride));
  for (index_t s = 0; s < heldout && s * stride < index_t(all.size()); ++s) {
    const auto ids = tok.encode(all[s * stride], max_tokens);
    const index_t T = index_t(ids.size());
    auto masked = ids;
    const std::vector<index_t> positions = mask_tokens(masked, s, mask_id);
    auto score = [&](double& nll) {
      model.mlm_logits(qtx::make_view(hidden.data(), T, cfg.hidden), logits);
      for (const index_t t : positions) nll += token_nll(logits.data() + t * cfg.vocab, cfg.vocab, ids[t]);
    };
    model.forward(masked, hidden);
    score(nll_fp32);
    model.forward_w8a8(masked, hidden);
    score(nll_w8a8);
    r.masked_tokens += double(positions.size());
    bar.tick();
  }
  r.ppl_fp32 = std::exp(nll_fp32 / r.masked_tokens);
  r.ppl_w8a8 = std::exp(nll_w8a8 / r.masked_tokens);
  return r;
}

inline void write_mlm_report(const mlm_result& r, const std::filesystem::path& out_dir) {
  std::printf("\nOutlier statistics of the FP32 model (layer outputs, calibration text):\n");
  const auto outliers = demo::report_layer_stats(r.layer_stats, out_dir / "layer_stats.csv");
  r.locations.print();
  std::printf("\nMLM perplexity over %.0f masked held-out tokens: FP32 %.3f, W8A8 %.3f; max inf-norm %.2f, avg kurtosis %.1f\n",
              r.masked_tokens, r.ppl_fp32, r.ppl_w8a8, outliers.max_inf_norm, outliers.avg_kurtosis);
  std::ofstream(out_dir / "summary.json") << "{\"metric\": \"mlm_ppl\", \"fp32\": " << r.ppl_fp32
                                         << ", \"w8a8\": " << r.ppl_w8a8 << ", \"max_inf_norm\": " << outliers.max_inf_norm
                                         << ", \"avg_kurtosis\": " << outliers.avg_kurtosis
                                         << ", \"masked_tokens\": " << r.masked_tokens << "}\n";
}

}  // namespace bert
