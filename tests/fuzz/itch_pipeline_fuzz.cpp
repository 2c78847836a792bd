// libFuzzer target for the whole market-data path: MoldUDP64 session + ITCH 5.0 decode + order book +
// top of book into Hyperion + emitted updates (market::ItchPipeline), driven the way a feed drives it.
//
// The input is a small program the harness turns into MoldUDP64 datagrams of one session, so that
// random bytes reach the book instead of dying in the framing checks:
//   op % 32 == 0      send the packet built so far
//   op % 32 == 1      skip (next byte % 4) + 1 sequence numbers (a gap)
//   op % 32 == 2      send the previous packet again (a duplicate / out-of-order datagram)
//   op % 32 == 3      switch to another session name (the pipeline starts over)
//   op % 32 == 4      a heartbeat; 5: an end of session (the same session from sequence 1 replays)
//   op % 32 == 6      a raw datagram of (next byte % 64) input bytes (malformed framing)
//   op % 32 == 7      a message one byte too short (a counted length reject)
//   op % 32 == 8      the pipeline's housekeeping tick (re-request retries and give-ups are due)
// The first byte's top bit turns gap recovery on (re-requests to a port nobody answers on), the next
// one raw ITCH output next to the updates (output = "both").
//   otherwise         one ITCH message (23 of 32 ops): type from the next byte, its fields from the input, with
//                     locates, order refs and prices squeezed into small ranges so that executes,
//                     cancels, deletes and replaces find live orders and levels collide.
// Invariants checked after every input (std::abort on violation): the book's index is consistent
// (every live order reachable, counts agree) and, unless the store counted a refused put, for every
// named symbol the top of book in the Hyperion store is the book's current top (or absent while the
// book is empty after a reset).
// Nothing may crash or read out of bounds (ASan/UBSan in the fuzz preset).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "hypergate/config/config.hpp"
#include "hypergate/core/clock.hpp"
#include "hypergate/core/burst.hpp"
#include "hypergate/route/route.hpp"
#include "market/itch_pipeline.hpp"
#include "market/tob_update.hpp"
#include "protocols/itch50.hpp"
#include "protocols/moldudp64.hpp"
#include "protocols/wire.hpp"

namespace hg = hypergate;
namespace itch = hypergate::protocols::itch;
namespace mold = hypergate::protocols::mold;
namespace wire = hypergate::protocols::wire;

namespace {

constexpr std::uint16_t kLocates = 6;

class Discard final : public hg::route::Downstream {
 public:
  void deliver(std::span<const hg::Message> m, std::span<const hg::route::Route>) noexcept override { n += m.size(); }
  std::size_t n = 0;
};

// recovery: gaps are re-requested from a port nobody answers on (the discard port of loopback), with
// retries a few microseconds apart, so held packets, retries and given-up gaps (every symbol marked
// stale and republished) all happen within one input.
hg::market::ItchPipelineOptions small_options(bool recovery, bool raw_output) {
  hg::route::PipelineContext ctx;
  auto doc = hg::config::Document::parse(
      std::string("[p]\nmax_orders = 256\nmax_levels = 4096\nstore_slots = 64\nstore_arena_bytes = 262144\n"
                  "store_packets = 8\nstore_bytes = 4096\n") +
          (recovery ? "rerequest = \"127.0.0.1:9\"\nretry_initial = \"2us\"\nretry_max = \"8us\"\n"
                      "retry_attempts = 2\nrequest_max_count = 5\n"
                    : "") +
          (raw_output ? "output = \"both\"\n" : ""),
      "fuzz");
  if (!doc) std::abort();
  auto section = doc.value()->section("p");
  auto o = hg::market::read_itch_options(section, ctx);
  if (!o) std::abort();
  return o.value();
}

// Reads input bytes; past the end it yields zeros, so every message is complete.
struct Input {
  const std::uint8_t* p;
  std::size_t n;
  std::size_t at = 0;
  [[nodiscard]] bool done() const { return at >= n; }
  std::uint8_t byte() { return at < n ? p[at++] : 0; }
  void fill(std::byte* out, std::size_t len) {
    for (std::size_t i = 0; i < len; ++i) out[i] = static_cast<std::byte>(byte());
  }
};

// One ITCH message of a known type, fields from the input, squeezed where the book looks.
std::size_t make_message(Input& in, std::byte* out, bool short_by_one) {
  const char type = itch::kMessageTypes[in.byte() % itch::kMessageTypes.size()];
  const std::size_t size = itch::kMessageSize[static_cast<unsigned char>(type)];
  out[0] = static_cast<std::byte>(type);
  in.fill(out + 1, size - 1);
  wire::store_be16(out + 1, static_cast<std::uint16_t>(1 + in.byte() % kLocates));   // stock locate
  auto ref = [&](std::size_t off) { wire::store_be64(out + off, in.byte() % 48); };
  auto price = [&](std::size_t off) { wire::store_be32(out + off, 10'000 + (in.byte() % 24) * 100); };
  switch (type) {
    case 'A':
    case 'F':
      ref(11);
      out[19] = static_cast<std::byte>((in.byte() & 1) ? 'B' : 'S');
      price(32);
      break;
    case 'E':
    case 'C':
    case 'X':
    case 'D': ref(11); break;
    case 'U':
      ref(11);
      ref(19);
      price(31);
      break;
    case 'R': {  // a distinct symbol per locate, so the store keys never collide
      const std::uint16_t locate = wire::load_be16(out + 1);
      const std::string name = "SYM" + std::to_string(locate) + "    ";
      for (std::size_t i = 0; i < 8; ++i) out[11 + i] = static_cast<std::byte>(name[i]);
      break;
    }
    default: break;
  }
  return short_by_one ? size - 1 : size;
}

void check(const hg::market::ItchPipeline& p) {
  const hg::market::OrderBook& book = p.book();
  if (!book.index_consistent()) std::abort();
  // A put the store refused (its arena filled up with the records of many restarts) is counted, and the
  // store is then behind the book by design: nothing to compare.
  if (p.stats().store_errors != 0) return;
  auto reader = p.store()->reader();
  if (!reader) std::abort();
  for (std::uint16_t locate = 1; locate <= kLocates; ++locate) {
    std::string_view key = book.symbol(locate);
    while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
    if (key.empty()) continue;
    std::array<std::byte, hg::market::kTobUpdateSize> rec{};
    std::size_t len = 0;
    const hg::market::TopOfBook top = book.top(locate);
    const hg::Status st = reader->get(key, rec, len);
    if (st == hg::Status::NotFound) {
      if (top != hg::market::TopOfBook{}) std::abort();   // a non-empty book never published
      continue;
    }
    hg::market::TobUpdate u;
    if (st != hg::Status::Ok || hg::market::decode_tob_update(std::span(rec.data(), len), u) != hg::Status::Ok)
      std::abort();
    if (u.bid_price != top.bid_price || u.bid_qty != top.bid_qty || u.ask_price != top.ask_price ||
        u.ask_qty != top.ask_qty) {
      std::fprintf(stderr, "locate %u: store bid %u x %llu ask %u x %llu (update %llu), book bid %u x %llu ask %u x %llu\n",
                   locate, u.bid_price, static_cast<unsigned long long>(u.bid_qty), u.ask_price,
                   static_cast<unsigned long long>(u.ask_qty), static_cast<unsigned long long>(u.sequence),
                   top.bid_price, static_cast<unsigned long long>(top.bid_qty), top.ask_price,
                   static_cast<unsigned long long>(top.ask_qty));
      std::abort();   // the store missed a change of the top
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Index = the first byte's top two bits: bit 7 recovery, bit 6 raw ITCH output too.
  static const std::array<hg::market::ItchPipelineOptions, 4> variants = {
      small_options(false, false), small_options(false, true), small_options(true, false),
      small_options(true, true)};
  auto created = hg::market::ItchPipeline::create(variants[size > 0 ? data[0] >> 6 : 0]);
  if (!created) std::abort();
  hg::market::ItchPipeline& pipeline = *created.value();
  Discard down;
  hg::route::Emitter emitter(down);

  std::vector<std::byte> packet(2048);
  std::vector<std::byte> previous;
  std::array<std::byte, itch::kMaxMessageSize> msg{};
  mold::SessionName session = mold::SessionName::from("FUZZ0");
  std::uint64_t next_seq = 1;
  mold::PacketBuilder builder(packet, 1400);
  builder.start(session, next_seq);

  hg::Burst<> burst;
  auto send = [&](std::span<const std::byte> datagram) {
    burst.clear();
    hg::Message m;
    m.set_payload(datagram.data(), datagram.size());
    (void)burst.push_back(m);
    pipeline.process(burst, emitter);
  };
  auto flush_packet = [&] {
    if (builder.empty()) return;
    const auto d = builder.finish();
    previous.assign(d.begin(), d.end());
    next_seq = builder.next_sequence();
    send(previous);
    builder.start(session, next_seq);
  };

  Input in{data, size};
  while (!in.done()) {
    const std::uint8_t op = in.byte();
    switch (op % 32) {
      case 0: flush_packet(); break;
      case 1:
        flush_packet();
        next_seq += 1 + in.byte() % 4;
        builder.start(session, next_seq);
        break;
      case 2:
        flush_packet();
        if (!previous.empty()) send(previous);
        break;
      case 3:
        flush_packet();
        session = mold::SessionName::from("FUZZ" + std::to_string(in.byte() % 4));
        next_seq = 1;
        builder.start(session, next_seq);
        break;
      case 4:
      case 5: {
        flush_packet();
        std::array<std::byte, mold::kHeaderSize> hb{};
        const std::size_t n = op % 32 == 4 ? mold::write_heartbeat(hb, session, next_seq)
                                           : mold::write_end_of_session(hb, session, next_seq);
        send(std::span(hb.data(), n));
        if (op % 32 == 5) next_seq = 1;   // a replay of the session may follow
        builder.start(session, next_seq);
        break;
      }
      case 8:  // housekeeping, as the runtime calls it: replies to read, retries due
        flush_packet();
        pipeline.tick(emitter, hg::TscClock::ticks());
        break;
      case 6: {
        flush_packet();
        std::vector<std::byte> raw(in.byte() % 64);
        in.fill(raw.data(), raw.size());
        send(raw);
        break;
      }
      default: {
        const std::size_t n = make_message(in, msg.data(), op % 32 == 7);
        if (!builder.append(std::span<const std::byte>(msg.data(), n))) {
          flush_packet();
          (void)builder.append(std::span<const std::byte>(msg.data(), n));
        }
        break;
      }
    }
  }
  flush_packet();
  check(pipeline);
  return 0;
}
