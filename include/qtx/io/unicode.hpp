#pragma once
/// @file
/// The Unicode pieces BERT's basic tokenizer needs: tolerant UTF-8 decoding and encoding, and the
/// character classes and mappings of BertNormalizer / BertPreTokenizer (HuggingFace tokenizers).
///
/// Scope (see tools/gen_unicode_tables.py, which generates detail/unicode_tables.hpp):
///  - categories P*, Mn, Cc/Cf/Co and the lowercase mapping cover all of Unicode 14;
///  - accent stripping (NFD, then drop Mn) is tabulated for Latin (Latin-1 Supplement, Extended-A/B,
///    Extended Additional), Greek (+ Extended), Cyrillic, kana, letterlike symbols (Ohm, Kelvin,
///    Angstrom signs), arrows and mathematical operators (≠ → =);
///    Hangul syllables are decomposed into conjoining jamo arithmetically. Other canonical
///    decompositions (Indic two-part vowels, CJK compatibility ideographs, ...) are not applied;
///  - unassigned code points (Cn) are kept, whereas HuggingFace drops them as "other".
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <string_view>

#include "detail/unicode_tables.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::io::unicode {

/// U+FFFD, substituted for ill-formed UTF-8 and invalid code points.
inline constexpr char32_t replacement_character = 0xFFFD;
/// The largest Unicode code point.
inline constexpr char32_t max_code_point = 0x10FFFF;

/// Decodes UTF-8; every ill-formed sequence (stray continuation byte, truncated sequence, overlong
/// form, surrogate, value past U+10FFFF) becomes one U+FFFD per maximal invalid prefix, as the
/// Unicode standard recommends (§3.9, "U+FFFD substitution of maximal subparts"). Never reads past
/// the input.
inline std::u32string decode_utf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  std::size_t i = 0;
  while (i < text.size()) {
    const unsigned char lead = byte(i);
    if (lead < 0x80) {
      out.push_back(lead);
      ++i;
      continue;
    }
    // Sequence length and the valid range of the second byte (which excludes overlongs,
    // surrogates and values past U+10FFFF); 0 marks a byte that cannot start a sequence.
    int length = 0;
    unsigned char second_lo = 0x80, second_hi = 0xBF;
    char32_t value = 0;
    if (lead >= 0xC2 && lead <= 0xDF) length = 2, value = lead & 0x1F;
    else if (lead >= 0xE0 && lead <= 0xEF) length = 3, value = lead & 0x0F;
    else if (lead >= 0xF0 && lead <= 0xF4) length = 4, value = lead & 0x07;
    if (lead == 0xE0) second_lo = 0xA0;
    if (lead == 0xED) second_hi = 0x9F;
    if (lead == 0xF0) second_lo = 0x90;
    if (lead == 0xF4) second_hi = 0x8F;
    std::size_t consumed = 1;
    bool valid = length != 0;
    for (int k = 1; valid && k < length; ++k) {
      const std::size_t at = i + static_cast<std::size_t>(k);
      const unsigned char lo = k == 1 ? second_lo : 0x80, hi = k == 1 ? second_hi : 0xBF;
      if (at >= text.size() || byte(at) < lo || byte(at) > hi) {
        valid = false;
        break;
      }
      value = (value << 6) | (byte(at) & 0x3F);
      ++consumed;
    }
    out.push_back(valid ? value : replacement_character);
    i += consumed;
  }
  return out;
}

/// Appends c as UTF-8; surrogates and values past U+10FFFF become U+FFFD.
inline void append_utf8(std::string& out, char32_t c) {
  if (c > max_code_point || (c >= 0xD800 && c <= 0xDFFF)) c = replacement_character;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

namespace detail {
template <class Range>
constexpr bool in_ranges(std::span<const Range> ranges, char32_t c) {
  const auto it = std::upper_bound(ranges.begin(), ranges.end(), c,
                                   [](char32_t v, const Range& r) { return v < r.first; });
  return it != ranges.begin() && c <= std::prev(it)->last;
}
}  // namespace detail

/// Whitespace as BERT sees it: tab, newline, carriage return (technically controls) and Unicode White_Space.
constexpr bool is_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

/// Controls BERT deletes: Cc, Cf, Co except the three whitespace controls.
constexpr bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return detail::in_ranges<io::detail::code_range>(io::detail::control_ranges, c);
}

/// BERT splits on every ASCII symbol (so "$", "+", "<", "^", "`", "|", "~" count) and on P*.
constexpr bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return true;
  return detail::in_ranges<io::detail::code_range>(io::detail::punctuation_ranges, c);
}

/// Category Mn (combining marks): what accent stripping removes after NFD.
constexpr bool is_nonspacing_mark(char32_t c) {
  return detail::in_ranges<io::detail::code_range>(io::detail::nonspacing_mark_ranges, c);
}

/// The CJK Unified Ideographs blocks BERT isolates as single-character words (not kana or Hangul).
constexpr bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/// Simple lowercase mapping (Unicode's, one code point to one), as Python's str.lower for BERT's vocabularies.
constexpr char32_t to_lower(char32_t c) {
  const std::span<const io::detail::case_run> runs(io::detail::lowercase_runs);
  const auto it = std::upper_bound(runs.begin(), runs.end(), c,
                                   [](char32_t v, const io::detail::case_run& r) { return v < r.first; });
  if (it == runs.begin()) return c;
  const auto& run = *std::prev(it);
  if (c > run.last || (c - run.first) % static_cast<char32_t>(run.stride) != 0) return c;
  return static_cast<char32_t>(static_cast<std::int32_t>(c) + run.delta);
}

/// Appends c with its accents removed (NFD, then drop Mn): nothing for a mark, the base letter for a
/// tabulated precomposed letter, leading + vowel (+ trailing) jamo for a Hangul syllable.
inline void append_without_accents(std::u32string& out, char32_t c) {
  if (is_nonspacing_mark(c)) return;
  // Hangul syllables: S = 0xAC00 + (L·21 + V)·28 + T  (Unicode §3.12).
  constexpr char32_t s_base = 0xAC00, l_base = 0x1100, v_base = 0x1161, t_base = 0x11A7;
  constexpr char32_t v_count = 21, t_count = 28, s_count = 19 * v_count * t_count;
  if (c >= s_base && c < s_base + s_count) {
    const char32_t s = c - s_base;
    out.push_back(l_base + s / (v_count * t_count));
    out.push_back(v_base + s % (v_count * t_count) / t_count);
    if (s % t_count != 0) out.push_back(t_base + s % t_count);
    return;
  }
  const std::span<const io::detail::accent_free_letter> letters(io::detail::accent_free_letters);
  const auto it = std::lower_bound(
      letters.begin(), letters.end(), c,
      [](const io::detail::accent_free_letter& l, char32_t v) { return l.composed < v; });
  out.push_back(it != letters.end() && it->composed == c ? it->base : c);
}

}  // namespace qtx::io::unicode
