// OPT demo: causal LM perplexity FP32 vs W8A8 on held-out text, the FP32 model's outlier statistics
// (max inf-norm, average kurtosis of every layer's output), and greedy generation.
//
//   opt MODEL_DIR TEXT_DIR [--sentences N] [--calibration N] [--prompt TEXT] [--out DIR] [--vocab FILE]
//   opt --help
//
// MODEL_DIR: model.safetensors (Hugging Face OPT names), config.json (with optional qtx_softmax_gamma,
// qtx_gate) and vocab.txt (WordPiece, as the models of tools/train use), or --vocab names the vocabulary
// (checkpoints/vocab.txt, shared by the committed checkpoints). TEXT_DIR as for the BERT demo.
// Activation ranges: running min-max (momentum 0.9) over `calibration` training sentences. DIR receives
// summary.json and layer_stats.csv (what tools/train/evaluate.py tabulates and plots).
#include "../common/cli.hpp"
#include "../common/demo.hpp"
#include "../common/w8a8.hpp"
#include "opt.hpp"

#include <qtx/quant/observers.hpp>

#include <cmath>
#include <cstdio>

namespace {
using ids_t = std::vector<qtx::io::token_id>;
using qtx::index_t;

// Mean negative log-likelihood of each next token, from logits (T, V).
double nll_sum(const qtx::aligned_buffer<float>& logits, const ids_t& ids, index_t V) {
  double total = 0;
  for (std::size_t t = 0; t + 1 < ids.size(); ++t) {
    const float* row = logits.data() + t * V;
    const float mx = *std::max_element(row, row + V);
    double z = 0;
    for (index_t c = 0; c < V; ++c) z += std::exp(double(row[c] - mx));
    total += std::log(z) + mx - row[ids[t + 1]];
  }
  return total;
}
}  // namespace

int main(int argc, char** argv) try {
  std::filesystem::path model_dir, text_dir, out_dir = "opt_out", vocab;
  index_t sentences = 200, calibration = 64;
  std::string prompt = "the congress of the united states";
  bool per_head_context = false;
  CLI::App app{"qtx OPT demo: causal-LM perplexity FP32 vs W8A8, outlier statistics, greedy generation.", "opt"};
  demo::add_directory(app, "MODEL_DIR", model_dir, "model.safetensors, config.json (and vocab.txt)");
  demo::add_directory(app, "TEXT_DIR", text_dir, "sotu_calibration.txt, sotu_heldout.txt");
  demo::add_count(app, "--sentences", sentences, "held-out sentences for the perplexity");
  demo::add_count(app, "--calibration", calibration, "calibration sentences (running min-max)");
  app.add_option("--prompt", prompt, "start of the greedy generation")->capture_default_str();
  app.add_option("--out", out_dir, "output folder")->capture_default_str();
  app.add_flag("--per-head-context", per_head_context,
               "W8A8: quantize the attention context per head, each head on its own grid (gated models)");
  app.add_option("--vocab", vocab, "WordPiece vocabulary [default: MODEL_DIR/vocab.txt]")->check(CLI::ExistingFile);
  demo::parse_or_exit(app, argc, argv);
  if (vocab.empty()) vocab = model_dir / "vocab.txt";
  opt::model<> model(model_dir);
  const auto tok = qtx::io::wordpiece_tokenizer::from_file(vocab);
  const auto& cfg = model.cfg();
  const index_t max_len = std::min<index_t>(cfg.max_positions, 128);
  auto encode = [&](const std::string& s) { return tok.encode(s, max_len); };

  std::filesystem::create_directories(out_dir);
  std::printf("qtx OPT: %ld layers, hidden %ld, %ld heads, gamma %g, gate %s, backend %s\n", long(cfg.layers),
              long(cfg.hidden), long(cfg.heads), cfg.gamma, cfg.gate.c_str(), qtx::cpu::native::name());

  // 1. FP32 on training sentences: running min-max ranges and outlier statistics per layer.
  qtx::running_minmax_observer embeddings;
  std::vector<std::array<qtx::running_minmax_observer, opt::points>> observers(cfg.layers);
  std::vector<qtx::channel_minmax_observer> context_channels(cfg.layers);
  std::vector<qtx::outlier_stats> stats(cfg.layers);
  demo::outlier_locations locations(cfg.layers);
  const opt::model<>::observer record = [&](index_t layer, int point, qtx::matrix_view<const float> t) {
    if (layer < 0) return embeddings.observe(t);
    observers[layer][point].observe(t);
    if (point == opt::context) context_channels[layer].observe(t);
    if (point == opt::ffn_residual) stats[layer].add_sequence(t), locations.add_sequence(layer, t);
  };
  qtx::aligned_buffer<float> logits;
  {
    demo::progress bar("calibrating (FP32)", calibration);
    for (const auto& s : demo::read_lines(text_dir / "sotu_calibration.txt", calibration, 13)) {
      const auto ids = encode(s);
      auto st = model.new_state<float>(index_t(ids.size()));
      model.forward(ids, st, logits, &record);
      bar.tick();
    }
  }
  opt::calibration cal;
  cal.embeddings = embeddings.params<uint8_t>();
  for (const auto& layer : observers) {
    cal.layers.emplace_back();
    for (int p = 0; p < opt::points; ++p) cal.layers.back()[p] = layer[p].params<uint8_t>();
  }
  for (const auto& c : context_channels) cal.contexts.push_back(c.range());
  qtx::nn::quantized_layer_options w8a8;
  w8a8.per_head_context = per_head_context;
  model.quantize(cal, w8a8);
  double nll_fp32 = 0, nll_w8a8 = 0, count = 0;
  {
    demo::progress bar("held-out perplexity", sentences);
    for (const auto& s : demo::read_lines(text_dir / "sotu_heldout.txt", sentences, 3)) {
      const auto ids = encode(s);
      auto st = model.new_state<float>(index_t(ids.size()));
      model.forward(ids, st, logits);
      nll_fp32 += nll_sum(logits, ids, cfg.vocab);
      auto qst = model.new_state<uint8_t>(index_t(ids.size()));
      model.forward_w8a8(ids, qst, logits);
      nll_w8a8 += nll_sum(logits, ids, cfg.vocab);
      count += double(ids.size() - 1);
      bar.tick();
    }
  }
  const double ppl_fp32 = std::exp(nll_fp32 / count), ppl_w8a8 = std::exp(nll_w8a8 / count);
  std::printf("\nOutlier statistics of the FP32 model (layer outputs = residual stream, %ld calibration sentences):\n",
              long(calibration));
  const auto outliers = demo::report_layer_stats(stats, out_dir / "layer_stats.csv");
  locations.print();
  std::printf("\nperplexity FP32 %.3f, W8A8 %.3f over %.0f tokens\n", ppl_fp32, ppl_w8a8, count);
  std::ofstream(out_dir / "summary.json") << "{\"metric\": \"ppl\", \"fp32\": " << ppl_fp32 << ", \"w8a8\": " << ppl_w8a8
                                          << ", \"max_inf_norm\": " << outliers.max_inf_norm
                                          << ", \"avg_kurtosis\": " << outliers.avg_kurtosis << ", \"tokens\": " << count
                                          << "}\n";
  auto ids = tok.encode(prompt, max_len);
  ids.pop_back();  // drop [SEP]: continue the prompt
  const auto out = opt::generate_greedy(model, ids, 20);
  std::printf("greedy continuation of \"%s\":", prompt.c_str());
  for (std::size_t i = ids.size(); i < out.size(); ++i) std::printf(" %s", tok.token_of(out[i]).c_str());
  std::printf("\n");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "opt: %s\n", e.what());
  return 1;
}
