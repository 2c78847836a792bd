#pragma once
// PassthroughDecoder: one message per frame, with the routing key taken from the frame as configured.
// For sources whose frames already are messages (HTTP bodies, UDP datagrams of a text protocol,
// lines of a file); protocol decoders (MoldUDP64 -> ITCH) live with their codecs in adapters/protocols.
//
// Key modes:
//   Payload    the whole payload is the key
//   FirstWord  the bytes before the first space, tab, CR or LF ("AAPL 101.5 300" -> "AAPL")
//   Range      payload bytes [offset, offset + length); a shorter frame is rejected ("key_out_of_range")
//   Source     keep the key the source set (e.g. an X-Hyper-Key header); the frame is passed unchanged
// The key is a view into the payload (zero-copy) and its hash is computed once here, so validators,
// the router and the valves all reuse Message::key_hash.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "hypergate/core/message.hpp"
#include "hypergate/route/stage.hpp"

namespace hypergate::route {

class PassthroughDecoder {
 public:
  enum class KeyMode : std::uint8_t { Payload, FirstWord, Range, Source };
  static constexpr std::array<std::string_view, 1> kReasons{"key_out_of_range"};

  PassthroughDecoder() = default;
  explicit PassthroughDecoder(KeyMode mode, std::uint32_t offset = 0, std::uint32_t length = 0) noexcept
      : mode_(mode), offset_(offset), length_(length) {}

  template <class Out>
  Verdict decode(const Message& frame, Out& out) noexcept {
    const std::string_view text = frame.text();
    std::string_view key;
    switch (mode_) {
      case KeyMode::Payload:
        key = text;
        break;
      case KeyMode::FirstWord: {
        std::size_t n = 0;
        while (n < text.size() && !is_space(text[n])) ++n;
        key = text.substr(0, n);
        break;
      }
      case KeyMode::Range:
        if (text.size() < static_cast<std::size_t>(offset_) + length_) return Verdict::reject(0);
        key = text.substr(offset_, length_);
        break;
      case KeyMode::Source:
        key = frame.key();
        break;
    }
    Message& m = out.next();  // built in place in the pipeline's output buffer
    m = frame;
    if (mode_ != KeyMode::Source) m.set_key(key);
    out.push();
    return Verdict::pass();
  }

  [[nodiscard]] KeyMode mode() const noexcept { return mode_; }

 private:
  static constexpr bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

  KeyMode mode_ = KeyMode::Payload;
  std::uint32_t offset_ = 0;
  std::uint32_t length_ = 0;
};
static_assert(Decoder<PassthroughDecoder>);

}  // namespace hypergate::route
