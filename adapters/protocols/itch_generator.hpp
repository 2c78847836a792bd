#pragma once
// ItchGenerator: a synthetic, protocol-exact TotalView-ITCH 5.0 feed framed in MoldUDP64 packets,
// fully deterministic from a seed (same options -> identical bytes, on every platform: the generator
// uses its own splitmix/xoshiro PRNG and integer arithmetic only, never std:: distributions).
//
// The feed
//  - System Event 'O', one Stock Directory 'R' per symbol (stock locate 1..N), then a mix where the
//    book stays consistent: Add (A/F) new orders around a per-symbol mid (ticks of 100 = $0.01, bids
//    below the mid, asks above); Execute (E/C), Cancel (X), Delete (D), Replace (U) reference live
//    orders only and never take more shares than the order has left; every other type (H Y L V W K J
//    h P Q B I N O) is sprinkled at low rates. Ends with System Event 'C'; message_count counts all of
//    these. After the last data packet comes one end-of-session packet (Count 0xFFFF).
//  - Timestamps (ns since midnight) start at start_timestamp_ns and increase by 1e9 / messages_per_second
//    per message (never decrease; integer arithmetic).
//  - Packets hold at most messages_per_packet messages (0 = no limit) and max_packet_bytes bytes.
//  - Loss model: a data packet is marked dropped if the PRNG (separate stream, seeded from seed) says
//    so with loss_probability, or if any of its messages falls in one of drop_ranges (inclusive).
//    Dropped packets are still produced (flagged) so a re-request server can answer from them; the
//    end-of-session packet is never dropped.
//
// Cost: next() does no allocation after construction (the order book of live orders grows up to its
// peak once); bytes returned by next() are valid until the following call.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hypergate/core/status.hpp"
#include "protocols/moldudp64.hpp"

namespace hypergate::protocols::itch {

struct GeneratorOptions {
  std::vector<std::string> symbols;           ///< tickers (<= 8 chars); empty -> symbol_count generated ones
  std::size_t symbol_count = 8;               ///< used when `symbols` is empty (1..65535)
  std::uint64_t message_count = 100'000;      ///< ITCH messages in total (>= symbols + 2)
  std::string session = "HGSESSION1";         ///< MoldUDP64 session (<= 10 chars)
  std::uint64_t seed = 1;
  std::size_t messages_per_packet = 0;        ///< 0 = as many as fit max_packet_bytes
  std::size_t max_packet_bytes = mold::kEthernetMtuPayload;  ///< >= 20 + 2 + 50
  std::uint64_t first_sequence = 1;
  std::uint64_t start_timestamp_ns = 34'200'000'000'000;     ///< 09:30:00
  std::uint64_t messages_per_second = 1'000'000;             ///< timestamp spacing (>= 1)
  double loss_probability = 0.0;              ///< per data packet, in [0, 1]
  std::vector<mold::Gap> drop_ranges;         ///< drop every packet touching these sequences
};

/// One generated MoldUDP64 datagram.
struct GeneratedPacket {
  Bytes bytes;                     ///< the datagram (valid until the next call to next())
  std::uint64_t first_sequence = 0;
  std::uint16_t count = 0;         ///< raw Count (0xFFFF for the end-of-session packet)
  bool dropped = false;            ///< the loss model removed it from the live feed
  bool end_of_session = false;
  std::uint64_t timestamp_ns = 0;  ///< ITCH timestamp of the packet's last message
};

class ItchGenerator {
 public:
  /// Checks the options (a readable Error for bad ones) and prepares the generator.
  [[nodiscard]] static Result<ItchGenerator> create(GeneratorOptions options);

  ItchGenerator(ItchGenerator&&) noexcept;
  ItchGenerator& operator=(ItchGenerator&&) noexcept;
  ~ItchGenerator();

  /// Produces the next packet; false when the feed is finished (after the end-of-session packet).
  [[nodiscard]] bool next(GeneratedPacket& out);

  [[nodiscard]] const GeneratorOptions& options() const noexcept;
  /// Tickers in stock-locate order (locate = index + 1).
  [[nodiscard]] const std::vector<std::string>& symbols() const noexcept;
  [[nodiscard]] std::uint64_t messages_generated() const noexcept;

 private:
  struct State;
  explicit ItchGenerator(std::unique_ptr<State> state) noexcept;
  std::unique_ptr<State> state_;
};

/// A whole feed in memory: every packet (dropped ones included), e.g. for a test re-request server.
struct GeneratedFeed {
  std::vector<std::byte> storage;          ///< all datagrams back to back
  struct Packet {
    std::size_t offset = 0;
    std::size_t size = 0;
    std::uint64_t first_sequence = 0;
    std::uint16_t count = 0;
    bool dropped = false;
    bool end_of_session = false;
  };
  std::vector<Packet> packets;
  std::vector<std::string> symbols;

  [[nodiscard]] Bytes bytes(const Packet& p) const noexcept { return {storage.data() + p.offset, p.size}; }
  [[nodiscard]] Bytes bytes(std::size_t i) const noexcept { return bytes(packets[i]); }
  /// Indices [first, last) of the data packets holding any message of [sequence, sequence + count):
  /// what a re-request server answering `request` sends back.
  [[nodiscard]] std::pair<std::size_t, std::size_t> packets_for(std::uint64_t sequence,
                                                                std::uint64_t count) const noexcept;
};

/// Runs a generator to the end and keeps everything.
[[nodiscard]] Result<GeneratedFeed> generate_feed(GeneratorOptions options);

}  // namespace hypergate::protocols::itch
