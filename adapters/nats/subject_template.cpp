#include "nats/subject_template.hpp"

#include <cstring>

namespace hypergate::nats {
namespace {

bool subject_byte_ok(unsigned char c) noexcept { return c > ' ' && c != 0x7F && c != '.' && c != '*' && c != '>'; }

}  // namespace

std::optional<SubjectTemplate> SubjectTemplate::parse(std::string_view text, std::string* why) {
  const auto fail = [&](std::string message) -> std::optional<SubjectTemplate> {
    if (why != nullptr) *why = std::move(message);
    return std::nullopt;
  };
  if (text.empty()) return fail("a subject template must not be empty");
  SubjectTemplate t;
  t.text_ = std::string(text);
  std::string literal;
  const auto flush_literal = [&] {
    if (!literal.empty()) t.pieces_.push_back(Piece{Part::Literal, std::move(literal)});
    literal.clear();
  };
  // Token structure is checked on the template with each placeholder standing for one non-empty token
  // fragment: "md..<SYMBOL>" and ".md" are refused, "md.<SYMBOL>x" is fine.
  bool token_empty = true;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '<') {
      const std::size_t end = text.find('>', i);
      if (end == std::string_view::npos) {
        return fail("unterminated placeholder at offset " + std::to_string(i) + " (placeholders: <SYMBOL>, <TYPE>)");
      }
      const std::string_view name = text.substr(i + 1, end - i - 1);
      Part part;
      if (name == "SYMBOL") {
        part = Part::Symbol;
      } else if (name == "TYPE") {
        part = Part::Type;
      } else {
        return fail("unknown placeholder <" + std::string(name) + "> (placeholders: <SYMBOL>, <TYPE>)");
      }
      flush_literal();
      t.pieces_.push_back(Piece{part, {}});
      token_empty = false;
      i = end;
      continue;
    }
    if (c == '.') {
      if (token_empty) return fail("empty subject token at offset " + std::to_string(i) + " in '" + t.text_ + "'");
      token_empty = true;
      literal += c;
      continue;
    }
    if (c == '*' || c == '>') {
      return fail(std::string("wildcard '") + c + "' in a publish subject (a subject names one destination)");
    }
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7F) {
      return fail("whitespace or control character at offset " + std::to_string(i) + " in a subject");
    }
    literal += c;
    token_empty = false;
  }
  if (token_empty) return fail("subject '" + t.text_ + "' ends with '.' (an empty last token)");
  flush_literal();
  return t;
}

std::size_t SubjectTemplate::render(std::string_view key, char type, std::span<char> out) const noexcept {
  std::size_t n = 0;
  const auto put = [&](char c) noexcept {
    if (n + 1 >= out.size()) return false;  // keep room for the NUL
    out[n++] = c;
    return true;
  };
  for (const Piece& p : pieces_) {
    switch (p.part) {
      case Part::Literal:
        if (n + p.literal.size() + 1 > out.size()) return 0;
        std::memcpy(out.data() + n, p.literal.data(), p.literal.size());
        n += p.literal.size();
        break;
      case Part::Symbol:
        if (key.empty() && !put('_')) return 0;
        for (const char c : key) {
          if (!put(subject_byte_ok(static_cast<unsigned char>(c)) ? c : '_')) return 0;
        }
        break;
      case Part::Type:
        if (!put(subject_byte_ok(static_cast<unsigned char>(type)) ? type : '_')) return 0;
        break;
    }
  }
  if (n >= out.size()) return 0;
  out[n] = '\0';
  return n;
}

std::string SubjectTemplate::wildcard() const {
  std::string w;
  bool in_placeholder_token = false;
  std::string token;
  const auto end_token = [&] {
    w += in_placeholder_token ? std::string("*") : token;
    token.clear();
    in_placeholder_token = false;
  };
  for (const Piece& p : pieces_) {
    if (p.part != Part::Literal) {
      in_placeholder_token = true;
      continue;
    }
    for (const char c : p.literal) {
      if (c == '.') {
        end_token();
        w += '.';
      } else {
        token += c;
      }
    }
  }
  end_token();
  return w;
}

std::string_view last_token(std::string_view subject) noexcept {
  const std::size_t dot = subject.rfind('.');
  return dot == std::string_view::npos ? subject : subject.substr(dot + 1);
}

}  // namespace hypergate::nats
