#pragma once
// `soupbintcp` sink: SoupBinTCP 3.0 subscribers (PROTOCOLS.md §4) served over the io_uring transport.
//
// The session. Every message the sink accepts is appended to the session log with the next sequence
// number (1, 2, ...): the log IS the SoupBinTCP session. The log keeps the last `retain` messages
// (and at most `retain_bytes` bytes) for replay, in a ring preallocated at start(): each message is
// stored as its complete `S` packet (length, type, payload), so a subscriber that is catching up is
// sent a contiguous run of packets with one copy. Message::sequence of the source is not used: the
// session numbers what this sink accepted. Payloads above 65534 bytes cannot be framed and are
// dropped (counted as `oversize`).
//
// Subscribers. A connection logs in with `L` (username case-insensitive, password exact, session
// blank or equal to ours; otherwise `J` 'A' or `J` 'S' and the connection closes once it is sent).
// The `A` reply carries the next sequence number to be sent: the requested one, or the live head
// when the request is 0 or beyond the head. A request OLDER than the retained window is not
// rejected: replay starts at the oldest retained message, announced by a `+` debug line saying so
// (a subscriber that must have every message sees the gap from the `A` sequence, and it is better
// served by what is left than by a refusal it cannot fix). A logged-in subscriber has a cursor;
// service() streams `S` packets from it while the connection has write room, sends `H` after
// heartbeat_interval without any packet to that client, and handles `R` (nothing to do: any byte
// received resets the idle timer), `O` (close once everything queued is sent) and `U` (counted,
// ignored). A client silent for client_timeout is dropped (the transport's idle timeout). stop()
// gives subscribers up to one second to catch up with the log, then sends `Z` to everyone.
//
// Slow consumers. A subscriber more than max_lag messages behind the head (or whose cursor fell out
// of the retained window) is handled by the `slow_consumer` policy. A replay asked for at login is
// not lag: until the subscriber reaches the head as it was at its login, only falling out of the
// retained window makes it slow (a replay of the whole window must not be conflated away).
// Policies:
//   disconnect  a `+` line saying why, then the connection is closed;
//   conflate    it skips ahead: of the messages between its cursor and the head at that moment, only
//               the NEWEST per key (Message::key(), typically the symbol) is sent, in log order; then
//               it streams normally again. A per-key index (key -> log position of its newest
//               message) decides, so the skip costs one index read per skipped message.
// After conflation a subscriber's packet count no longer equals the session sequence (SoupBinTCP
// `S` packets carry no sequence number: the client counts them). That is why normalized updates
// carry their own gateway sequence number in the payload. Messages without a key, or whose key did
// not fit the key index (max_keys distinct keys), are never conflated away.
//
// Threads. One instance per worker (adapter::Context::worker); only the instance of worker
// `worker` listens and sequences. The runtime routes all subscriber traffic to it; any message
// another instance receives is counted as `misrouted` (SinkStats::errors) and logged once.
// Everything runs on the owning worker: start()/send()/flush()/service()/stop() and the io_uring
// loop; stats() and counters() may be read from any thread (relaxed atomic counters).
//
// Hot path: send() appends to preallocated rings (no allocation, lock or syscall per message);
// service() runs one non-blocking run_once(0) per call and writes per subscriber per call, not per
// message; heartbeats and lag checks run on a TSC tick.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hypergate/adapter/sink.hpp"
#include "protocols/soupbintcp.hpp"
#include "uring/uring_server.hpp"

namespace hypergate::soup {

enum class SlowConsumerPolicy : std::uint8_t { Conflate, Disconnect };

struct SoupSinkOptions {
  std::string name = "soupbintcp";  ///< instance name, for log lines
  std::string host = "0.0.0.0";
  std::uint16_t port = 9000;          ///< 0 = ephemeral (see SoupSink::port())
  std::string username;               ///< accepted credentials
  std::string password;
  std::string session;                ///< at most 10 characters
  unsigned worker = 0;                ///< the worker whose instance listens and sequences
  unsigned this_worker = 0;           ///< the worker owning this instance
  std::uint64_t retain = 65536;       ///< messages kept for replay
  std::uint64_t retain_bytes = 16u << 20;  ///< bytes kept for replay (packets incl. their 3-byte header)
  std::uint64_t heartbeat_interval_ns = 1'000'000'000;
  std::uint64_t client_timeout_ns = 15'000'000'000;
  std::uint32_t max_subscribers = 64;
  SlowConsumerPolicy slow_consumer = SlowConsumerPolicy::Conflate;
  std::uint64_t max_lag = 32768;      ///< must be < retain
  std::uint32_t max_keys = 4096;      ///< distinct keys the conflation index tracks
  std::uint32_t output_bytes = 256 * 1024;  ///< per-subscriber send buffer
};

/// Counters snapshot (see SoupSink::counters()).
struct SoupCounters {
  std::uint64_t subscribers = 0;      ///< logged in now (gauge)
  std::uint64_t logins_accepted = 0;
  std::uint64_t logins_rejected = 0;
  std::uint64_t messages_logged = 0;  ///< appended to the session (= last sequence number)
  std::uint64_t messages_sent = 0;    ///< S packets sent, over all subscribers
  std::uint64_t heartbeats = 0;       ///< H packets sent
  std::uint64_t conflated = 0;        ///< S packets skipped by conflation, over all subscribers
  std::uint64_t disconnected = 0;     ///< subscribers closed by the `disconnect` policy
  std::uint64_t timeouts = 0;         ///< connections dropped for silence (client_timeout)
  std::uint64_t unsequenced = 0;      ///< U packets received (ignored)
  std::uint64_t protocol_errors = 0;  ///< bad frames or packets from clients (connection closed)
  std::uint64_t oversize = 0;         ///< messages too large for one packet (not logged)
  std::uint64_t misrouted = 0;        ///< messages given to a non-listening instance
};

/// The session log: sequenced S packets in a byte ring with an index ring, plus the per-key index
/// used by conflation. Single thread (the owning worker).
///
/// IMPLEMENTATION DETAILS
///   index_[seq & mask]   {offset, size, key_slot}: offset is a monotonic byte position; the packet
///                        lives at bytes_[offset % capacity], never split across the end of the ring
///                        (a packet that would be is placed at the start, the tail left as padding).
///   keys_[slot]          open addressing (linear probing, never deleted): key hash, length, a
///                        prefix of the key, and the sequence of its newest message.
///   Retained window      [oldest_, head_): eviction from the oldest when `retain` messages are held
///                        or a new packet needs the bytes.
class SessionLog {
 public:
  static constexpr std::uint32_t kNoKey = UINT32_MAX;
  static constexpr std::size_t kKeyPrefix = 22;  ///< key bytes compared beyond the 64-bit hash

  /// Reserves everything (cold path): `retain` (>= 1) index entries, `bytes` of packets, an index of
  /// `max_keys` keys. A packet larger than `bytes` is later refused by append().
  [[nodiscard]] Result<void> reserve(std::uint64_t retain, std::uint64_t bytes, std::uint32_t max_keys);

  /// Appends one S packet carrying `payload`; false (nothing logged) when it cannot be framed or
  /// is larger than the byte ring. `key_hash` is Message::key_hash of `key`.
  bool append(std::string_view key, std::uint64_t key_hash, std::string_view payload) noexcept;

  [[nodiscard]] std::uint64_t head() const noexcept { return head_; }      ///< next sequence number
  [[nodiscard]] std::uint64_t oldest() const noexcept { return oldest_; }  ///< == head() when empty
  /// The whole S packet of `seq` (oldest() <= seq < head()).
  [[nodiscard]] std::string_view packet(std::uint64_t seq) const noexcept;
  /// Packets from `seq` that lie contiguously in the ring, at most `max_bytes` in all; `count` gets
  /// how many (0 when even the first does not fit).
  [[nodiscard]] std::string_view run(std::uint64_t seq, std::size_t max_bytes, std::uint64_t& count) const noexcept;
  /// True when no later message has the same key (messages without a tracked key are always newest).
  [[nodiscard]] bool is_newest(std::uint64_t seq) const noexcept;

 private:
  struct Entry {
    std::uint64_t offset = 0;
    std::uint32_t size = 0;
    std::uint32_t key_slot = kNoKey;
  };
  struct KeySlot {
    std::uint64_t hash = 0;
    std::uint64_t newest = 0;  // 0 = free slot (sequence numbers start at 1)
    std::uint16_t length = 0;
    char prefix[kKeyPrefix] = {};
  };
  static_assert(sizeof(KeySlot) == 40, "hash + newest + length + prefix, no hidden padding beyond 2 bytes");
  std::uint32_t key_slot(std::string_view key, std::uint64_t hash) noexcept;
  void evict_oldest() noexcept;

  std::vector<char> bytes_;
  std::vector<Entry> index_;
  std::vector<KeySlot> keys_;
  std::uint64_t index_mask_ = 0;
  std::uint64_t key_mask_ = 0;
  std::uint64_t retain_ = 0;
  std::uint64_t write_pos_ = 0;  // monotonic byte position of the next packet
  std::uint64_t head_ = 1;
  std::uint64_t oldest_ = 1;
  std::uint32_t keys_used_ = 0;
  std::uint32_t max_keys_ = 0;
};

class SoupSink final : public adapter::Sink, private uring::ConnectionHandler {
 public:
  explicit SoupSink(SoupSinkOptions options);
  ~SoupSink() override;

  [[nodiscard]] std::string_view type() const noexcept override { return "soupbintcp"; }
  [[nodiscard]] Result<void> start() override;
  void stop() noexcept override;
  std::size_t send(const Burst<>& burst) noexcept override;
  std::size_t service() noexcept override;
  /// The server's ring: logins, client heartbeats and disconnects wake an idle worker.
  [[nodiscard]] int wake_fd() noexcept override { return server_ ? server_->ring_fd() : -1; }
  [[nodiscard]] adapter::SinkStats stats() const noexcept override;

  [[nodiscard]] SoupCounters counters() const noexcept;
  /// The bound port (after start(); 0 for a non-listening instance).
  [[nodiscard]] std::uint16_t port() const noexcept { return server_ ? server_->port() : 0; }
  [[nodiscard]] bool listening() const noexcept { return opt_.worker == opt_.this_worker; }
  [[nodiscard]] const SessionLog& log() const noexcept { return log_; }

 private:
  struct Subscriber {
    uring::Connection* conn = nullptr;  // from on_open() to on_close()
    std::uint64_t cursor = 0;           // next sequence number to send
    std::uint64_t conflate_until = 0;   // while cursor < this: only the newest message per key
    std::uint64_t replay_until = 0;     // the head at login: a replay below it is not lag
    std::uint64_t last_tx_tsc = 0;
    std::uint32_t active_pos = 0;       // position in active_
    bool logged_in = false;
  };
  struct Counters {
    Counter subscribers, logins_accepted, logins_rejected, messages_logged, messages_sent, heartbeats, conflated,
        disconnected, unsequenced, protocol_errors, oversize, misrouted, bytes, timeouts;
  };

  void on_open(uring::Connection& c) noexcept override;
  std::size_t on_data(uring::Connection& c, std::span<char> data) noexcept override;
  void on_close(uring::Connection& c) noexcept override;

  void handle_login(Subscriber& s, const protocols::SoupLoginRequest& login) noexcept;
  void activate(Subscriber& s, std::uint32_t index) noexcept;
  void deactivate(Subscriber& s) noexcept;
  /// Streams what fits; returns the bytes written.
  std::size_t stream(Subscriber& s) noexcept;
  /// Applies the slow-consumer policy; false when the subscriber was closed.
  bool check_lag(Subscriber& s) noexcept;
  void heartbeats(std::uint64_t now_tsc) noexcept;
  bool write(Subscriber& s, std::string_view bytes) noexcept;
  bool write_debug(uring::Connection& c, std::string_view text) noexcept;

  SoupSinkOptions opt_;
  SessionLog log_;
  std::unique_ptr<uring::UringServer> server_;
  std::vector<Subscriber> subs_;       // by connection index
  std::vector<std::uint32_t> active_;  // connection indexes of logged-in subscribers
  std::string session_field_;          // the session, trimmed (compared with requests)
  std::uint64_t heartbeat_ticks_ = 0;
  std::uint64_t tick_ticks_ = 0;
  std::uint64_t next_tick_ = 0;
  std::uint64_t now_tsc_ = 0;
  bool started_ = false;
  bool misrouted_logged_ = false;
  Counters counters_;
};

}  // namespace hypergate::soup
