// BERT demo: a real pretrained sentence encoder (all-MiniLM-L6-v2) on real text, FP32 vs W8A8.
//
//   bert MODEL_DIR TEXT_DIR [--heldout N] [--calibration N] [--probe N] [--out DIR] [--vocab FILE]
//        [--reference REF_DIR]
//   bert MODEL_DIR TEXT_DIR --mlm-eval [--heldout N] [--calibration N] [--out DIR] [--vocab FILE]
//   bert --help
//
// --mlm-eval: for masked-LM checkpoints (tools/train/bert_mlm.py), the paper's Table 2 row instead:
// MLM perplexity FP32 vs W8A8 on held-out text, max inf-norm, avg kurtosis (see mlm_eval.hpp).
//
// MODEL_DIR holds model.safetensors, config.json and vocab.txt (scripts/setup-minilm.sh), or --vocab
// names the vocabulary (checkpoints/vocab.txt, shared by the checkpoints of tools/train);
// TEXT_DIR holds sotu_calibration.txt, sotu_heldout.txt and spam.tsv (tools/prepare_text.py).
// It calibrates activation ranges with running min-max on calibration sentences, quantizes the
// model to W8A8 in each activation mode (the paper's static uint8 points; a float residual stream;
// dynamic per-tensor and per-token GEMM inputs) and reports: per-layer outlier statistics of the
// FP32 model (the paper's max inf-norm and average kurtosis), per mode the FP32-vs-W8A8 embedding
// cosine on held-out sentences, a logistic-regression spam probe trained on FP32 embeddings and
// evaluated on each mode's, and the latency per sentence. With --reference, the cosines and the
// probe's training embeddings come from another model's FP32 forward (a retrofitted model against
// its original), and the FP32 row shows this model's own FP32 against it.
//
// Built with run-time dispatch (examples/common/dispatch_main.cpp): this file is compiled once per
// ISA and the program runs the best variant the CPU supports (QTX_ISA=avx2 caps it).
#include "bert.hpp"
#include "../common/cli.hpp"
#include "../common/probe.hpp"
#include "mlm_eval.hpp"
#include "report.hpp"

#include <qtx/quant/observers.hpp>
#include <qtx/quant/outlier_stats.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using qtx::index_t;

struct options {
  std::filesystem::path model_dir, text_dir, out_dir = "bert_out", vocab, reference;
  index_t heldout = 1000, calibration = 256, probe = 2000, max_tokens = 128;
  bool mlm_eval = false, per_head_context = false, calibrate_masked = false;
  int weight_bits = 8;
  int mlm_mode = 0;
};

options parse(int argc, char** argv) {
  options o;
  CLI::App app{"qtx BERT demo: FP32 vs W8A8 (real int8 kernels) on a Hugging Face BERT checkpoint.", "bert"};
  demo::add_directory(app, "MODEL_DIR", o.model_dir, "model.safetensors, config.json (and vocab.txt)");
  demo::add_directory(app, "TEXT_DIR", o.text_dir, "sotu_calibration.txt, sotu_heldout.txt, spam.tsv");
  demo::add_count(app, "--heldout", o.heldout, "held-out sentences");
  demo::add_count(app, "--calibration", o.calibration, "calibration sentences (running min-max)");
  demo::add_count(app, "--probe", o.probe, "emails for the spam probe");
  app.add_option("--out", o.out_dir, "output folder")->capture_default_str();
  app.add_option("--vocab", o.vocab, "WordPiece vocabulary [default: MODEL_DIR/vocab.txt]")->check(CLI::ExistingFile);
  app.add_option("--weight-bits", o.weight_bits,
                 "W8A8 weight bits: 8, or 7 (ONNX Runtime's reduce_range: AVX2 runs it with vpmaddubsw, exactly)")
      ->check(CLI::Range(2, 8))
      ->capture_default_str();
  app.add_option("--reference", o.reference,
                 "compare with this model's FP32 embeddings instead of MODEL_DIR's own (e.g. the original of a "
                 "retrofitted model, tools/train/retrofit_minilm.py); same tokenizer and hidden size")
      ->check(CLI::ExistingDirectory);
  app.add_flag("--per-head-context", o.per_head_context,
               "W8A8 with a static context: quantize it per head, each head on its own grid (gated models)");
  app.add_option("--mlm-mode", o.mlm_mode,
                 "--mlm-eval's W8A8 mode, an index into the demo's mode table: 0 static (paper), 1 float residual "
                 "stream, 2 dynamic per tensor, 3 per token, 4 static + smoothing, 5 per token + smoothing")
      ->check(CLI::Range(0, 5))
      ->capture_default_str();
  app.add_flag("--calibrate-masked", o.calibrate_masked,
               "--mlm-eval: calibrate on sentences masked as the evaluated ones are (the [MASK] token's activations "
               "in the calibration ranges)");
  app.add_flag("--mlm-eval", o.mlm_eval, "masked-LM perplexity FP32 vs W8A8 instead (tools/train/bert_mlm.py models)");
  demo::parse_or_exit(app, argc, argv);
  if (o.vocab.empty()) o.vocab = o.model_dir / "vocab.txt";
  return o;
}

using ids_t = std::vector<qtx::io::token_id>;
using clock_type = std::chrono::steady_clock;

}  // namespace

namespace qtx_example::QTX_ABI {

int main(int argc, char** argv) try {
  const options opt = parse(argc, argv);
  std::filesystem::create_directories(opt.out_dir);
  bert::model<> model(opt.model_dir);
  const auto tok = qtx::io::wordpiece_tokenizer::from_file(opt.vocab);
  const auto& cfg = model.cfg();
  if (opt.mlm_eval) {
    std::printf("qtx BERT MLM evaluation: %ld layers, hidden %ld, %ld heads, gamma %g, gate %s, backend %s\n",
                long(cfg.layers), long(cfg.hidden), long(cfg.heads), cfg.gamma, cfg.gate.c_str(),
                qtx::cpu::native::name());
    auto w8a8 = demo::w8a8_modes(opt.weight_bits).at(std::size_t(opt.mlm_mode)).options;
    w8a8.per_head_context = opt.per_head_context && !qtx::is_dynamic(w8a8.context);
    const auto r = bert::mlm_eval(model, tok, opt.text_dir, opt.heldout, opt.calibration, opt.max_tokens, w8a8,
                                  opt.calibrate_masked);
    bert::write_mlm_report(r, opt.out_dir);
    return 0;
  }
  std::printf("qtx BERT demo: %ld layers, hidden %ld, %ld heads, backend %s, %d threads\n", long(cfg.layers),
              long(cfg.hidden), long(cfg.heads), qtx::cpu::native::name(), qtx::max_threads());

  auto encode_all = [&](const std::vector<std::string>& texts) {
    std::vector<ids_t> out;
    for (const auto& t : texts) out.push_back(tok.encode(t, opt.max_tokens));
    return out;
  };
  const auto calib_ids = encode_all(demo::read_lines(opt.text_dir / "sotu_calibration.txt", opt.calibration, 7));
  const auto heldout_ids = encode_all(demo::read_lines(opt.text_dir / "sotu_heldout.txt", opt.heldout, 1));
  const auto spam = demo::read_spam(opt.text_dir / "spam.tsv", opt.probe);

  // 1. FP32 on calibration text: running min-max ranges and the paper's outlier statistics.
  const index_t L = cfg.layers;
  bert::calibration_recorder recorder(L);
  std::vector<qtx::outlier_stats> layer_stats(L), attention_residual_stats(L), residual_stats(L);
  const bert::model<>::observer record = [&](index_t layer, int point, qtx::matrix_view<const float> t) {
    recorder(layer, point, t);
    if (layer < 0) return;
    if (point == bert::ffn_ln) layer_stats[layer].add_sequence(t);
    if (point == bert::attention_residual) attention_residual_stats[layer].add_sequence(t);  // the LN inputs
    if (point == bert::ffn_residual) residual_stats[layer].add_sequence(t);
  };
  qtx::aligned_buffer<float> hidden;
  demo::progress bar("calibrating (FP32)", index_t(calib_ids.size()));
  for (const auto& ids : calib_ids) {
    model.forward(ids, hidden, &record);
    bar.tick();
  }
  const bert::calibration cal = recorder.result();

  // 2. Held-out sentences: FP32 embeddings and latency, then each W8A8 mode's.
  std::vector<std::vector<float>> fp32_embeddings;
  double fp32_seconds = 0;
  for (const auto& ids : heldout_ids) {
    const auto t0 = clock_type::now();
    model.forward(ids, hidden);
    fp32_seconds += std::chrono::duration<double>(clock_type::now() - t0).count();
    fp32_embeddings.push_back(bert::mean_pool_normalize(hidden.data(), index_t(ids.size()), cfg.hidden));
  }
  // What the modes are compared with: this model's FP32, or the reference model's.
  std::optional<bert::model<>> reference;
  if (!opt.reference.empty()) {
    reference.emplace(opt.reference);
    qtx::check(reference->cfg().hidden == cfg.hidden, "--reference: hidden size ", reference->cfg().hidden,
               " differs from the model's ", cfg.hidden);
  }
  auto embedding = [&](bert::model<>& m, const ids_t& ids) {
    m.forward(ids, hidden);
    return bert::mean_pool_normalize(hidden.data(), index_t(ids.size()), cfg.hidden);
  };
  auto baseline_embedding = [&](const ids_t& ids) { return embedding(reference ? *reference : model, ids); };
  std::vector<std::vector<float>> baseline_embeddings;
  if (reference)
    for (const auto& ids : heldout_ids) baseline_embeddings.push_back(baseline_embedding(ids));
  const auto& baseline = reference ? baseline_embeddings : fp32_embeddings;
  // The spam probe's emails: logistic regression on the baseline's FP32 embeddings, evaluated on
  // this model's FP32 and each mode's.
  std::vector<std::vector<float>> train_x, test_fp32;
  std::vector<ids_t> test_ids;
  std::vector<int> train_y, test_y;
  demo::progress bar3("spam probe embeddings (FP32)", index_t(spam.size()));
  for (const auto& e : spam) {
    auto ids = tok.encode(e.text, opt.max_tokens);
    if (e.train) {
      train_x.push_back(baseline_embedding(ids));
      train_y.push_back(e.spam);
    } else {
      test_fp32.push_back(embedding(model, ids));
      test_y.push_back(e.spam);
      test_ids.push_back(std::move(ids));
    }
    bar3.tick();
  }
  const demo::logistic_regression probe(train_x, train_y);

  demo::report r;
  for (auto mode : demo::w8a8_modes(opt.weight_bits)) {
    if (opt.per_head_context && !qtx::is_dynamic(mode.options.context)) {
      mode.options.per_head_context = true;
      mode.name += ", per-head context";
    }
    model.quantize(cal, mode.options);
    demo::mode_result m{mode.name, {}, 0, 0};
    std::vector<std::vector<float>> embeddings, test_w8a8;
    double seconds = 0;
    demo::progress bar2("held-out W8A8 " + mode.name, index_t(heldout_ids.size()));
    for (const auto& ids : heldout_ids) {
      const auto t0 = clock_type::now();
      model.forward_w8a8(ids, hidden);
      seconds += std::chrono::duration<double>(clock_type::now() - t0).count();
      embeddings.push_back(bert::mean_pool_normalize(hidden.data(), index_t(ids.size()), cfg.hidden));
      bar2.tick();
    }
    for (const auto& ids : test_ids) {
      model.forward_w8a8(ids, hidden);
      test_w8a8.push_back(bert::mean_pool_normalize(hidden.data(), index_t(ids.size()), cfg.hidden));
    }
    m.cosines = demo::cosines(baseline, embeddings);
    m.ms = 1e3 * seconds / double(heldout_ids.size());
    m.probe = probe.accuracy(test_w8a8, test_y);
    r.modes.push_back(std::move(m));
    if (r.modes.size() > 1) continue;
    // The paper's mode: the same sentences in batches of 32 of similar length, packed without
    // padding: throughput, and the check that batching changes no embedding.
    constexpr std::size_t batch_size = 32;
    double fp32_batch_seconds = 0, w8a8_batch_seconds = 0;
    bool batches_identical = true;
    for (const auto& batch : bert::length_sorted_batches(heldout_ids, batch_size)) {
      for (bool w8a8 : {false, true}) {
        const auto t0 = clock_type::now();
        w8a8 ? model.forward_w8a8(batch.ids, hidden) : model.forward(batch.ids, hidden);
        (w8a8 ? w8a8_batch_seconds : fp32_batch_seconds) += std::chrono::duration<double>(clock_type::now() - t0).count();
        const auto batched = bert::mean_pool_normalize(hidden.data(), batch.ids, cfg.hidden);
        for (std::size_t i = 0; i < batched.size(); ++i)
          batches_identical &= batched[i] == (w8a8 ? embeddings : fp32_embeddings)[batch.index[i]];
      }
    }
    r.batch_size = index_t(batch_size);
    r.ms_fp32_batched = 1e3 * fp32_batch_seconds / double(heldout_ids.size());
    r.ms_w8a8_batched = 1e3 * w8a8_batch_seconds / double(heldout_ids.size());
    r.batches_identical = batches_identical;
  }

  demo::write_matrix(opt.out_dir / "heldout_ids.txt", heldout_ids);
  demo::write_matrix(opt.out_dir / "heldout_fp32_embeddings.txt", fp32_embeddings);

  r.layer_stats = layer_stats;
  r.attention_residual_stats = attention_residual_stats;
  r.residual_stats = residual_stats;
  r.probe_fp32 = probe.accuracy(test_fp32, test_y);
  if (reference) {
    r.reference = opt.reference.string();
    r.fp32_cosines = demo::cosines(baseline, fp32_embeddings);
  }
  r.probe_train = index_t(train_x.size());
  r.probe_test = index_t(test_y.size());
  r.ms_fp32 = 1e3 * fp32_seconds / double(heldout_ids.size());
  double tokens = 0;
  for (const auto& ids : heldout_ids) tokens += double(ids.size());
  r.mean_tokens = tokens / double(heldout_ids.size());
  r.print(opt.out_dir);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bert: %s\n", e.what());
  return 1;
}

}  // namespace qtx_example::QTX_ABI
