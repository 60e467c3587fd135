// Model files from Python: safetensors checkpoints (read by qtx's own parser, which checks the
// header, the offsets and the shapes) and BERT's WordPiece tokenizer.
#include "intrinsics_first.hpp"

#include <pybind11/stl.h>

#include <qtx/io/safetensors.hpp>
#include <qtx/io/wordpiece.hpp>

#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "common.hpp"

namespace qtx::python {
namespace {

using namespace pybind11::literals;

// numpy's dtype for a safetensors integer type (floating types are read as float32).
const char* numpy_dtype(io::dtype t) {
  switch (t) {
    case io::dtype::boolean:
      return "bool";
    case io::dtype::u8:
      return "uint8";
    case io::dtype::i8:
      return "int8";
    case io::dtype::u16:
      return "uint16";
    case io::dtype::i16:
      return "int16";
    case io::dtype::u32:
      return "uint32";
    case io::dtype::i32:
      return "int32";
    case io::dtype::u64:
      return "uint64";
    case io::dtype::i64:
      return "int64";
    default:
      return nullptr;
  }
}

py::dict load_safetensors(const std::string& path) {
  const auto file = io::safetensors_file::open(path);
  py::dict out;
  for (const auto& [name, info] : file.tensors()) {
    std::vector<py::ssize_t> shape(info.shape.begin(), info.shape.end());
    py::array a;
    if (io::is_floating(info.type)) {
      a = py::array_t<float>(shape);
      file.to_float(name, std::span<float>(static_cast<float*>(a.mutable_data()), std::size_t(info.numel())));
    } else {
      a = py::array(py::dtype(numpy_dtype(info.type)), shape);
      std::memcpy(a.mutable_data(), info.bytes.data(), info.bytes.size());
    }
    out[py::str(std::string(name))] = std::move(a);
  }
  return out;
}

}  // namespace

void bind_io(py::module_& m) {
  m.def("load_safetensors", &load_safetensors, "path"_a,
        R"doc(Every tensor of a .safetensors file as a dict of NumPy arrays (copies).

Floating tensors (F16, BF16, F32, F64) become float32; integer and bool tensors keep their type.
Raises ValueError naming the file for a malformed header, out-of-range offsets or wrong sizes.)doc");

  using tokenizer = io::wordpiece_tokenizer;
  py::class_<tokenizer>(m, "WordPiece", R"doc(BERT's tokenizer (basic splitting + greedy longest-match WordPiece).

Matches Hugging Face's BertTokenizer on its vocabularies. vocab: the checkpoint's vocab.txt.
lowercase: the 'uncased' normalisation (lowercase and strip accents).)doc")
      .def(py::init([](const std::string& vocab, bool lowercase) {
             return tokenizer::from_file(vocab, io::wordpiece_options{lowercase});
           }),
           "vocab"_a, py::kw_only(), "lowercase"_a = true)
      .def_property_readonly("vocab_size", &tokenizer::vocab_size, "Number of tokens in the vocabulary.")
      .def_property_readonly("cls_id", &tokenizer::cls_id, "Id of [CLS].")
      .def_property_readonly("sep_id", &tokenizer::sep_id, "Id of [SEP].")
      .def_property_readonly("pad_id", &tokenizer::pad_id, "Id of [PAD].")
      .def(
          "id_of", [](const tokenizer& t, const std::string& token) { return t.id_of(token); }, "token"_a,
          "The id of a vocabulary entry (e.g. '[MASK]'), or -1 when the vocabulary has none.")
      .def(
          "tokenize", [](const tokenizer& t, const std::string& text) { return t.tokenize(text); }, "text"_a,
          "The word pieces of text (no special tokens).")
      .def(
          "encode",
          [](const tokenizer& t, const std::string& text, index_t max_len) { return t.encode(text, max_len); },
          "text"_a, "max_len"_a = 512,
          "[CLS] pieces [SEP] as token ids, the pieces truncated to at most max_len ids in all.");
}

}  // namespace qtx::python
