// libFuzzer target for MoldUDP64: the input is a sequence of records [len:2 LE][datagram bytes]
// (the last one takes what is left). Each datagram is parsed (PacketView) and, when valid, iterated;
// every datagram is also fed to one MoldSession (small store, recovery on) with advancing time and
// timer ticks, so gap, re-request, overflow, session-change and give-up paths all get exercised.
// Invariants checked: iteration yields exactly message_count blocks inside the datagram, and the
// session delivers strictly increasing sequences within a session. Nothing may crash or read out of
// bounds (ASan/UBSan in the fuzz preset).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "protocols/mold_session.hpp"
#include "protocols/moldudp64.hpp"

namespace mold = hypergate::protocols::mold;
using hypergate::protocols::Bytes;

namespace {
struct Checker : mold::SessionEvents {
  bool have_last = false;
  std::uint64_t last = 0;
  void on_messages(mold::MessageRange r) override {
    if (r.empty()) std::abort();
    for (const mold::MessageBlock m : r) {
      if (have_last && m.sequence <= last) std::abort();
      have_last = true;
      last = m.sequence;
    }
  }
  void on_gap(const mold::Gap& g) override {
    if (g.first > g.last) std::abort();
  }
  void on_gap_lost(const mold::Gap& g) override {
    if (g.first > g.last) std::abort();
  }
  void on_request(const mold::Request& q) override {
    if (q.count == 0) std::abort();
  }
  void on_session_change(const mold::SessionName&, const mold::SessionName&) override { have_last = false; }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mold::MoldSession::Options o;
  o.store_packets = 8;
  o.store_bytes = 2048;
  o.retry_initial_ns = 10;
  o.retry_max_ns = 40;
  o.max_attempts = 3;
  o.max_request_count = 7;
  o.first_sequence = (size > 0 && (data[0] & 1)) ? 0 : 1;
  mold::MoldSession session(o);
  Checker checker;
  std::uint64_t now = 0;
  std::size_t pos = 0;
  while (pos < size) {
    std::size_t len = size - pos;
    if (len >= 2) {
      const std::size_t want = data[pos] | (std::size_t{data[pos + 1]} << 8);
      pos += 2;
      len = want < size - pos ? want : size - pos;
    } else {
      pos += len;
      len = 0;
    }
    const std::vector<std::byte> dgram(reinterpret_cast<const std::byte*>(data + pos),
                                       reinterpret_cast<const std::byte*>(data + pos + len));
    pos += len;
    mold::PacketView v;
    if (mold::PacketView::parse(Bytes{dgram}, v) == mold::PacketError::Ok) {
      std::size_t n = 0;
      for (const mold::MessageBlock m : v) {
        if (m.data.data() < dgram.data() || m.data.data() + m.data.size() > dgram.data() + dgram.size()) std::abort();
        ++n;
      }
      if (n != v.message_count()) std::abort();
    }
    now += 7;
    (void)session.on_datagram(Bytes{dgram}, now, checker);
    session.on_timer(now, checker);
  }
  for (int i = 0; i < 16; ++i) {  // let every pending gap run out
    now += 100;
    session.on_timer(now, checker);
  }
  if (session.pending_gaps() != 0) std::abort();
  return 0;
}
