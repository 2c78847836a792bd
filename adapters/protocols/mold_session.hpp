#pragma once
// MoldSession: per-session MoldUDP64 sequence tracking with gap detection, bounded buffering of
// out-of-order packets, re-request scheduling with exponential backoff, and give-up.
//
// Contract
//  - Pure and single-threaded: no syscalls, no clock reads (time is passed in as ns, any monotonic
//    base), no allocation after construction (the packet store, its index and the gap table are
//    reserved from Options). One instance per (feed, worker); not thread-safe.
//  - Output goes to a SessionEvents the caller implements. Delivery is one virtual call per
//    contiguous run of messages of one packet (on_messages(MessageRange)), never per message; the
//    caller iterates the range without allocation. The range views the packet bytes passed in or the
//    session's own copy, and is valid only during the call.
//  - Every message sequence number is delivered at most once, in increasing order, without holes
//    except ranges reported by on_gap_lost() (before delivery moves past them).
//  - Sequences: delivery starts at Options::first_sequence (0 = adopt the first packet's sequence).
//    A packet whose messages are all below the next expected sequence is a duplicate (counted). A
//    packet (or heartbeat / end of session) whose Sequence is above the highest sequence seen so far
//    reveals a gap [highest, Sequence - 1] (reported exactly by on_gap(), counted); data packets past
//    a gap are copied into the store. Recovery (re-request replies arrive through on_packet() like
//    any packet, in any order, possibly covering only part of a gap) fills the gap; delivery resumes
//    in sequence order and then drains the stored packets.
//  - Re-requests: on detection (and on each retry) on_request() asks the caller to send Requests
//    covering the gap, each at most Options::max_request_count messages. Retries are driven by
//    on_timer(now): attempt k+1 is sent when now >= (time of attempt k) + backoff_k, with backoff_1 =
//    retry_initial_ns, doubling, capped at retry_max_ns. When max_attempts requests were sent and
//    the last backoff expired, the gap (what is still missing of it) is given up: on_gap_lost(),
//    delivery skips it. A gap that receives part of its messages restarts its attempt count and
//    backoff (the server is answering; only unanswered rounds count). A gap out of attempts while an
//    earlier gap is still pending is not given up yet (its data could not be delivered before the
//    earlier one resolves, and a full store may have refused it): it is re-requested every
//    retry_max_ns until it becomes the first gap, then given up at its next expiry.
//    With Options::recovery == false a gap is given up as soon as it is detected.
//  - Gaps tracked at once: store_packets + 2 (every two gaps have a stored packet between them, so
//    this bound is only reached in pathological flows; then a new gap is merged into the last one).
//  - Store overflow (packet or byte limit): the packet is not stored and counted; its messages stay
//    missing and are recovered or given up like the rest of the gap.
//  - A packet with a new session name: every pending gap of the old session is given up, the store is
//    cleared, on_session_change() is called, and tracking restarts (first_sequence rule) for the new
//    session. End of session (Count 0xFFFF) is reported once per session via on_end_of_session().
//  - Heartbeats deliver nothing but advance the highest sequence seen (so they reveal gaps).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "protocols/moldudp64.hpp"

namespace hypergate::protocols::mold {

/// What a MoldSession tells its owner. Default implementations ignore the event.
class SessionEvents {
 public:
  virtual ~SessionEvents() = default;
  /// Messages ready for processing, contiguous, in sequence order.
  virtual void on_messages(MessageRange messages) = 0;
  /// A gap was detected (exact range of the sequences missing at detection time).
  virtual void on_gap(const Gap& gap) { (void)gap; }
  /// Send this re-request to the re-request server now.
  virtual void on_request(const Request& request) { (void)request; }
  /// These sequences will never be delivered (recovery failed, disabled, or the session changed);
  /// the owner marks affected state stale.
  virtual void on_gap_lost(const Gap& gap) { (void)gap; }
  /// A packet carried a session name different from the current one (not called for the first).
  virtual void on_session_change(const SessionName& from, const SessionName& to) {
    (void)from;
    (void)to;
  }
  /// The current session announced its end; `next_sequence` is the packet's Sequence field.
  virtual void on_end_of_session(const SessionName& session, std::uint64_t next_sequence) {
    (void)session;
    (void)next_sequence;
  }
};

class MoldSession {
 public:
  struct Options {
    std::uint64_t first_sequence = 1;        ///< first sequence to deliver; 0 = adopt the first packet's
    bool recovery = true;                    ///< false: gaps are given up at once (no re-request server)
    std::size_t store_packets = 1024;        ///< out-of-order packets kept at most
    std::size_t store_bytes = 1u << 20;      ///< bytes of out-of-order packets kept at most
    std::uint16_t max_request_count = 1024;  ///< messages asked for in one Request
    std::size_t max_requests_per_round = 16; ///< Requests sent per gap per attempt
    std::uint64_t retry_initial_ns = 1'000'000;   ///< wait after the first request
    std::uint64_t retry_max_ns = 64'000'000;      ///< backoff cap
    std::uint32_t max_attempts = 5;               ///< requests per gap before giving up (>= 1)
  };

  struct Stats {
    std::uint64_t packets = 0;              ///< data packets seen (any order)
    std::uint64_t heartbeats = 0;
    std::uint64_t end_of_session = 0;
    std::uint64_t messages_delivered = 0;
    std::uint64_t duplicate_packets = 0;    ///< packets with nothing new
    std::uint64_t duplicate_messages = 0;   ///< messages already delivered, stored or given up
    std::uint64_t gaps = 0;                 ///< gaps detected
    std::uint64_t gap_messages = 0;         ///< messages missing at detection
    std::uint64_t recovered_messages = 0;   ///< missing messages that arrived later
    std::uint64_t gaps_lost = 0;            ///< on_gap_lost() calls
    std::uint64_t lost_messages = 0;        ///< messages never delivered
    std::uint64_t stored_packets = 0;       ///< packets copied into the store
    std::uint64_t store_overflows = 0;      ///< packets not stored (limit)
    std::uint64_t requests = 0;             ///< Requests issued
    std::uint64_t session_changes = 0;
    std::uint64_t malformed = 0;            ///< datagrams rejected by on_datagram()
  };

  explicit MoldSession(const Options& options);
  MoldSession(MoldSession&&) noexcept;
  MoldSession& operator=(MoldSession&&) noexcept;
  ~MoldSession();

  /// Processes one validated packet (live or a re-request reply) received at now_ns.
  void on_packet(const PacketView& packet, std::uint64_t now_ns, SessionEvents& events) noexcept;
  /// Parses `datagram` and processes it; a malformed one is counted and its error returned.
  PacketError on_datagram(Bytes datagram, std::uint64_t now_ns, SessionEvents& events) noexcept;
  /// Sends due retries and gives up expired gaps. Call periodically (e.g. every ms).
  void on_timer(std::uint64_t now_ns, SessionEvents& events) noexcept;
  /// Earliest time on_timer() has work, or UINT64_MAX if none.
  [[nodiscard]] std::uint64_t next_timer_ns() const noexcept;

  /// Next sequence to deliver (0 before the first packet when Options::first_sequence is 0).
  [[nodiscard]] std::uint64_t next_sequence() const noexcept;
  /// One past the highest sequence seen in any packet.
  [[nodiscard]] std::uint64_t high_sequence() const noexcept;
  [[nodiscard]] const SessionName& session() const noexcept;
  [[nodiscard]] bool has_session() const noexcept;
  [[nodiscard]] bool ended() const noexcept;  ///< end of session seen for the current session
  /// Gaps still pending (not yet recovered or given up).
  [[nodiscard]] std::size_t pending_gaps() const noexcept;
  /// The i-th gap in sequence order (i < pending_gaps()): what is still missing of it.
  [[nodiscard]] Gap pending_gap(std::size_t i) const noexcept;
  [[nodiscard]] std::size_t stored_packets() const noexcept;
  [[nodiscard]] std::size_t stored_bytes() const noexcept;
  [[nodiscard]] const Stats& stats() const noexcept;
  [[nodiscard]] const Options& options() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace hypergate::protocols::mold
