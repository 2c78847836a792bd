// libFuzzer target for the ITCH 5.0 decoder: validate/visit any bytes; for an accepted message read
// every accessor (through to_struct()) and re-encode it: the bytes must come back identical (the
// field tables cover every byte of every type). A rejected message must never reach a handler.
// Nothing may crash or read out of bounds (ASan/UBSan in the fuzz preset).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "protocols/itch50.hpp"

namespace itch = hypergate::protocols::itch;
using hypergate::protocols::Bytes;
using hypergate::protocols::MutableBytes;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // An exact-size heap copy, so any read past the end is caught.
  const std::vector<std::byte> msg(reinterpret_cast<const std::byte*>(data),
                                   reinterpret_cast<const std::byte*>(data) + size);
  const Bytes bytes{msg.data(), msg.size()};
  itch::DecodeCounters counters;
  int calls = 0;
  const itch::DecodeError e = itch::visit(bytes, [&](auto view) {
    ++calls;
    using View = decltype(view);
    if (view.type() != View::kType || size != View::kSize) std::abort();
    const auto m = view.to_struct();  // every accessor
    std::byte out[itch::kMaxMessageSize];
    if (itch::encode(m, MutableBytes{out, sizeof out}) != View::kSize) std::abort();
    if (std::memcmp(out, msg.data(), View::kSize) != 0) std::abort();
  });
  if ((e == itch::DecodeError::Ok) != (calls == 1)) std::abort();
  if (itch::check(bytes, counters) != e) std::abort();
  if (e == itch::DecodeError::Ok && size != itch::message_size(static_cast<char>(msg[0]))) std::abort();
  return 0;
}
