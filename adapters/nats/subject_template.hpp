#pragma once
// SubjectTemplate: the NATS subject a message is published to, from a template such as "md.<SYMBOL>".
//
// Contract
//  - parse() accepts literal text and the placeholders <SYMBOL> (the message's routing key: the symbol
//    for the itch pipeline) and <TYPE> (the message type as a character, 'T' for a TobUpdate, the ITCH
//    type for raw ITCH). Anything else is refused with a message saying what is wrong (an unknown or
//    unterminated placeholder, an empty token "a..b", a leading or trailing '.', whitespace, or the
//    wildcards '*' and '>', which a publish subject cannot carry).
//  - render() writes the subject into a caller-owned buffer with no allocation. Key bytes that a subject
//    token cannot carry ('.', '*', '>', whitespace, control bytes) are written as '_', and an empty key
//    becomes "_", so every rendered subject is valid. Returns the length, or 0 if it does not fit.
//  - wildcard() is the subscription that matches every subject the template renders (each placeholder
//    becomes '*'): "md.*" for "md.<SYMBOL>". JetStream mode binds the stream to it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hypergate::nats {

class SubjectTemplate {
 public:
  /// Longest subject render() writes (NATS itself accepts longer; market-data subjects are short).
  static constexpr std::size_t kMaxSubject = 256;

  /// The template, or the reason it is not one (for a config diagnostic).
  [[nodiscard]] static std::optional<SubjectTemplate> parse(std::string_view text, std::string* why);

  /// Writes the subject (NUL-terminated, for libnats) and returns its length without the NUL; 0 if
  /// `out` is too small.
  [[nodiscard]] std::size_t render(std::string_view key, char type, std::span<char> out) const noexcept;
  [[nodiscard]] std::string wildcard() const;
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

 private:
  enum class Part : std::uint8_t { Literal, Symbol, Type };
  struct Piece {
    Part part = Part::Literal;
    std::string literal;
  };
  std::vector<Piece> pieces_;
  std::string text_;
};

/// The last '.'-separated token of a subject ("AAPL" for "md.AAPL"): the symbol the nats source
/// uses as the routing key. The whole subject when it has no '.'.
[[nodiscard]] std::string_view last_token(std::string_view subject) noexcept;

}  // namespace hypergate::nats
