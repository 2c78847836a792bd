// libFuzzer target for the SoupBinTCP 3.0 codec. The first input byte picks the frame-length limit
// and the split seed; the rest is a byte stream of packets. The stream is split once whole, then
// again fed in pseudo-random pieces (keeping the unconsumed tail, like a connection's input buffer);
// both passes must see the same frames and the same verdict. Every frame is parsed as a client and as
// a server packet; whatever parses is rebuilt with the builders and must parse back to the same
// fields. Nothing may crash or read out of bounds (ASan/UBSan in the fuzz preset).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/soupbintcp.hpp"

namespace {

using namespace hypergate::protocols;

void check(bool ok) {
  if (!ok) std::abort();
}

std::string describe(const SoupSplit& r) {
  if (r.status != SoupSplitStatus::Frame) return "s" + std::to_string(static_cast<int>(r.status)) + "e" +
                                                    std::to_string(static_cast<int>(r.error));
  return std::string(1, r.frame.type) + std::to_string(r.frame.size) + ":" + std::string(r.frame.payload);
}

void round_trip(const SoupFrame& f) {
  char buf[kSoupMaxPayload + 16];
  SoupClientPacket c;
  if (parse_soup_client_packet(f, c) == SoupError::None) {
    std::size_t n = 0;
    if (c.type == SoupType::LoginRequest) {
      n = build_soup_login_request(buf, c.login.username, c.login.password, c.login.session, c.login.sequence);
    } else {
      n = build_soup_packet(buf, c.type, c.payload);
    }
    check(n != 0);
    const SoupSplit r = split_soup_frame(std::string_view(buf, n));
    check(r.status == SoupSplitStatus::Frame && r.frame.size == n);
    SoupClientPacket back;
    check(parse_soup_client_packet(r.frame, back) == SoupError::None);
    check(back.type == c.type && back.payload == c.payload && back.login.username == c.login.username &&
          back.login.password == c.login.password && back.login.session == c.login.session &&
          back.login.sequence == c.login.sequence);
  }
  SoupServerPacket s;
  if (parse_soup_server_packet(f, s) == SoupError::None) {
    std::size_t n = 0;
    if (s.type == SoupType::LoginAccepted) {
      n = build_soup_login_accepted(buf, s.accepted.session, s.accepted.sequence);
    } else if (s.type == SoupType::LoginRejected) {
      n = build_soup_login_rejected(buf, s.reason);
    } else {
      n = build_soup_packet(buf, s.type, s.payload);
    }
    check(n != 0);
    const SoupSplit r = split_soup_frame(std::string_view(buf, n));
    check(r.status == SoupSplitStatus::Frame);
    SoupServerPacket back;
    check(parse_soup_server_packet(r.frame, back) == SoupError::None);
    check(back.type == s.type && back.payload == s.payload && back.accepted.session == s.accepted.session &&
          back.accepted.sequence == s.accepted.sequence && back.reason == s.reason);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  const std::size_t max_length = control & 0x80 ? 0xFFFF : 1 + (control & 0x7F);
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  // Pass 1: the whole stream at once.
  std::vector<std::string> whole;
  std::string_view v = stream;
  for (;;) {
    const SoupSplit r = split_soup_frame(v, max_length);
    whole.push_back(describe(r));
    if (r.status != SoupSplitStatus::Frame) break;
    check(r.frame.size >= kSoupHeaderBytes && r.frame.size <= v.size() && r.frame.size - 2 <= max_length);
    round_trip(r.frame);
    v.remove_prefix(r.frame.size);
  }

  // Pass 2: pieces of 1..16 bytes, the unconsumed tail kept in a buffer.
  std::vector<std::string> pieces;
  std::string buffer;
  std::size_t at = 0;
  std::uint32_t rng = control * 2654435761u + 1;
  bool stopped = false;
  while (!stopped) {
    rng = rng * 1103515245u + 12345u;
    const std::size_t take = std::min<std::size_t>(1 + (rng >> 16) % 16, stream.size() - at);
    buffer.append(stream.substr(at, take));
    at += take;
    for (;;) {
      const SoupSplit r = split_soup_frame(buffer, max_length);
      if (r.status == SoupSplitStatus::NeedMore && at < stream.size()) break;  // wait for more
      pieces.push_back(describe(r));
      if (r.status != SoupSplitStatus::Frame) {
        stopped = true;
        break;
      }
      buffer.erase(0, r.frame.size);
    }
  }
  check(pieces == whole);
  return 0;
}
