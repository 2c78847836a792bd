#pragma once
// ItchPipeline ("itch"): the market-data gateway's pipeline. One instance serves one feed source
// (UDP multicast, pcap replay, DPDK) whose messages are MoldUDP64 datagrams carrying ITCH 5.0.
//
//   datagram ─ MoldSession (sequence, gaps, re-requests, out-of-order store)
//            ─ itch::visit (exact length per type: a bad length is a counted reject, never an over-read)
//            ─ OrderBook (A F E C X D U; R names a locate) ─ on a top-of-book change:
//                 Hyperion.put(symbol, 52-byte TobUpdate)     last value, readable from any thread
//                 emit TobUpdate (output "updates"/"both")    -> valve lane `lane` -> subscriber sinks
//            ─ emit the raw ITCH message (output "itch"/"both")
//
// Contract
//  - Single writer: the owning worker calls process() and tick(); the book and the store are written
//    only there. Other threads read counters() (relaxed atomics), stats() after the run, and the store
//    through Hyperion's lock-free readers.
//  - Every emitted message of one feed goes to ONE lane (`lane`, default 0), so the sequenced stream a
//    SoupBinTCP or MoldUDP64 sink builds from it keeps the feed's order; the lane's consumer is worker
//    lane % workers, which is where such a sink listens (its `worker` key).
//  - Gaps: detected and recorded with their exact range (stats().gaps); with `rerequest` set they are
//    recovered by MoldUDP64 re-requests (retry with backoff, out-of-order packets held in a bounded
//    store); a gap that cannot be recovered marks every known symbol STALE in the store and sends a
//    STALE update per symbol to subscribers (which messages were lost, and so which books are wrong, is
//    unknowable). A session change (a new session name) starts over: books, store values, staleness;
//    so does the same session starting again at its first sequence after its end of session (a looped
//    capture, a restarted test feed).
//  - Hot path: no allocation, no lock, no syscall per message. The re-request socket is opened on the
//    first request and used only while a gap is open (one sendto per request, non-blocking recvfrom in
//    tick() for the replies).
//
// Options ([source.<name>.pipeline_options]):
//   output = "updates" | "itch" | "both"     what goes downstream (default "updates")
//   sinks = [..]        sinks for updates (default all)      itch_sinks = [..]  sinks for raw ITCH (default all)
//   lane = 0            valve lane of every emitted message
//   rerequest = "host:port"    MoldUDP64 re-request server; absent = gaps are reported, not recovered
//   retry_initial = "1ms", retry_max = "64ms", retry_attempts = 5, request_max_count = 1024
//   store_packets = 4096, store_bytes = 8 MiB       out-of-order packets held while a gap is open
//   first_sequence = 1  (0 = adopt the first packet's)
//   max_orders = 1048576, max_levels = 1048576      order book capacity
//   store_slots = 65536, store_arena_bytes = 16 MiB  Hyperion top-of-book store
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hypergate/config/config.hpp"
#include "hypergate/core/counter.hpp"
#include "hypergate/core/status.hpp"
#include "hypergate/kv/hyperion.hpp"
#include "hypergate/route/registry.hpp"
#include "hypergate/route/route.hpp"
#include "market/order_book.hpp"
#include "market/tob_update.hpp"
#include "protocols/itch50.hpp"
#include "protocols/mold_session.hpp"

namespace hypergate::market {

struct ItchPipelineOptions {
  enum class Output : std::uint8_t { Updates, Itch, Both };
  Output output = Output::Updates;
  std::uint64_t update_sinks = route::kAllSinks;
  std::uint64_t itch_sinks = route::kAllSinks;
  std::uint16_t lane = 0;
  std::optional<config::Endpoint> rerequest;
  protocols::mold::MoldSession::Options session;
  OrderBook::Options book;
  std::size_t store_slots = std::size_t{1} << 16;
  std::size_t store_arena_bytes = std::size_t{16} << 20;
  std::size_t max_recorded_gaps = 4096;  ///< gaps kept with their range for stats(); more are counted only
};

/// Reads the options from a pipeline_options section (errors are reported on the section).
[[nodiscard]] Result<ItchPipelineOptions> read_itch_options(config::Section& options, const route::PipelineContext& ctx);

/// Everything the pipeline saw; read by the owning thread, or by anyone after the runtime ended.
struct ItchStats {
  std::uint64_t datagrams = 0;
  std::uint64_t messages = 0;                       ///< ITCH messages decoded (valid)
  std::array<std::uint64_t, 256> by_type{};         ///< decoded messages by type byte
  std::uint64_t updates = 0;                        ///< top-of-book updates emitted (incl. stale ones)
  std::uint64_t store_errors = 0;                   ///< Hyperion puts that failed (arena or index full)
  std::uint64_t gaps = 0, missing = 0, recovered = 0, lost = 0;
  std::vector<protocols::mold::Gap> gap_ranges;     ///< every gap as detected (up to max_recorded_gaps)
  std::vector<protocols::mold::Gap> lost_ranges;    ///< gaps given up
  std::uint64_t session_changes = 0;
  std::uint64_t restarts = 0;                       ///< the session replayed from its first sequence after its end
  bool end_of_session = false;
  std::vector<std::pair<std::string, std::uint64_t>> rejects;  ///< by reason
};

class ItchPipeline final : public route::PipelineBase, private protocols::mold::SessionEvents {
 public:
  /// Builds the book, the session and the store (all memory reserved here).
  [[nodiscard]] static Result<std::unique_ptr<ItchPipeline>> create(const ItchPipelineOptions& options);
  ~ItchPipeline() override;

  [[nodiscard]] std::string_view name() const noexcept override { return "itch"; }
  void process(Burst<>& in, route::Emitter& out) noexcept override;
  void tick(route::Emitter& out, std::uint64_t now_tsc) noexcept override;
  [[nodiscard]] route::PipelineCounters counters() const override;
  [[nodiscard]] const kv::Hyperion* store() const noexcept override { return &store_; }

  /// Full statistics. Owner thread, or any thread once the owner stopped (after Runtime::wait()).
  [[nodiscard]] ItchStats stats() const;
  [[nodiscard]] const OrderBook& book() const noexcept { return *book_; }
  /// Locates named by Stock Directory messages in this session, in arrival order.
  [[nodiscard]] const std::vector<std::uint16_t>& locates() const noexcept { return locates_; }

 private:
  explicit ItchPipeline(const ItchPipelineOptions& options, kv::Hyperion store);

  // SessionEvents (called from inside process()/tick() on the owning thread)
  void on_messages(protocols::mold::MessageRange messages) override;
  void on_gap(const protocols::mold::Gap& gap) override;
  void on_request(const protocols::mold::Request& request) override;
  void on_gap_lost(const protocols::mold::Gap& gap) override;
  void on_session_change(const protocols::mold::SessionName& from, const protocols::mold::SessionName& to) override;
  void on_end_of_session(const protocols::mold::SessionName& session, std::uint64_t next_sequence) override;

  void apply(protocols::Bytes msg) noexcept;
  void publish_top(std::uint16_t locate, std::uint64_t timestamp_ns) noexcept;
  void reject(std::size_t reason) noexcept;
  void poll_rerequest_replies(std::uint64_t now_ns) noexcept;
  void start_over() noexcept;
  void restart_if_replayed(protocols::Bytes datagram) noexcept;

  // Reject reasons: MoldUDP64 packet errors, ITCH decode errors, book rejects, bad side byte.
  enum Reason : std::size_t {
    kMoldBase = 0,
    kItchBase = kMoldBase + protocols::mold::kPacketErrorCount,
    kBookBase = kItchBase + protocols::itch::kDecodeErrorCount,
    kBadSide = kBookBase + kBookRejectCount,
    kRerequestFailed,
    kReasonCount,
  };
  [[nodiscard]] static std::string_view reason_name(std::size_t r) noexcept;

  ItchPipelineOptions opt_;
  std::unique_ptr<OrderBook> book_;
  protocols::mold::MoldSession session_;
  kv::Hyperion store_;

  // State of the process()/tick() call in progress.
  route::Emitter* out_ = nullptr;
  std::uint64_t rx_tsc_ = 0;
  std::uint64_t now_ns_ = 0;
  bool tracing_ = false;  // this burst is sampled (probe_->tracing() at process() start)

  // Update payloads: one 52-byte record per emitter slot (the emitter holds at most kDefaultBurst
  // pending messages and copies them downstream on flush, so slot i's record is free again then).
  std::array<std::array<std::byte, kTobUpdateSize>, kDefaultBurst> update_buf_{};
  std::uint64_t update_sequence_ = 0;
  std::vector<std::uint16_t> locates_;        // reserved: 65536
  std::vector<std::uint8_t> stale_;           // per locate
  std::vector<std::uint8_t> named_;           // per locate: seen in a Stock Directory message

  // Re-request socket (opened lazily), its reply buffer.
  int rerequest_fd_ = -1;
  std::vector<std::byte> reply_buf_;

  // Counters: written by the owner, read by counters()/stats() from any thread (see Counter).
  Counter datagrams_, emitted_, updates_, store_errors_;   // messages: the sum of by_type_
  Counter gaps_, missing_, recovered_, lost_, session_changes_, restarts_;
  std::array<Counter, 256> by_type_{};
  std::array<Counter, kReasonCount> rejects_{};
  std::vector<protocols::mold::Gap> gap_ranges_;   // owner only (reserved)
  std::vector<protocols::mold::Gap> lost_ranges_;  // owner only (reserved)
  static constexpr std::size_t kRecentGaps = 8;
  std::array<Counter, kRecentGaps * 2> recent_gaps_{};  // first,last pairs; ring indexed by gaps_ % 8
  bool end_of_session_ = false;
};

/// Adds "itch" to `registry`.
Result<void> register_itch_pipeline(route::PipelineRegistry& registry);

}  // namespace hypergate::market
