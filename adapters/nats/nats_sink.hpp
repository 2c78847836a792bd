#pragma once
// `nats` sink: publishes the messages it is sent to NATS subjects, through libnats.
//
//   [sink.md]
//   type              = "nats"
//   servers           = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]  # tried in order
//   subject           = "md.<SYMBOL>"     # template: <SYMBOL> = the message key, <TYPE> = its type char
//   publish           = "updates"         # "updates" (TobUpdate records) | "itch" (raw ITCH) | "all"
//   payload           = "binary"          # "binary": the message bytes (the 52-byte TobUpdate as documented
//                                         # in market/tob_update.hpp, raw ITCH as received) | "json":
//                                         # TobUpdates as one JSON object (raw ITCH stays binary)
//   flush             = "batched"         # "batched": libnats' flusher thread writes what publishes
//                                         # buffered | "asap": every publish is written at once
//   reconnect_buffer  = 8388608           # bytes libnats buffers while disconnected
//   reconnect_wait    = "100ms"           # backoff between passes over `servers`, doubling ...
//   reconnect_wait_max = "2s"             # ... up to this
//   max_reconnect     = -1                # passes per disconnection, -1 = forever
//   connect_timeout   = "2s"
//   drain_timeout     = "5s"              # stop(): how long to wait for the server (and acks)
//   jetstream         = false             # publish into a stream, with acks
//   stream            = "MD"              # JetStream: created (subjects = the template's wildcard) if absent,
//                                         # by a helper thread; until the stream is known (not connected, no
//                                         # JetStream leader yet: retried every 500 ms) send() pushes back
//   replicas          = 1                 # JetStream: replicas of a stream this sink creates
//   max_pending       = 65536             # JetStream: unacknowledged publishes at most
//   ack_wait          = "5s"              # JetStream: an ack not back by then is a failed publish, retried
//
// Guarantees
//  - send() never blocks on the network and never waits for a server. Core NATS: natsConnection_Publish
//    copies the subject and payload into the connection's write buffer under libnats' connection mutex
//    and returns; libnats' flusher thread writes the buffer out (flush = "batched") or the call writes it
//    itself (flush = "asap": one syscall per message). While disconnected, libnats keeps publishes in its
//    reconnect buffer (reconnect_buffer bytes) and sends them after reconnecting.
//  - Pushback is explicit: when libnats' reconnect buffer is full (NATS_INSUFFICIENT_BUFFER) or, in
//    JetStream mode, max_pending publishes wait for their ack, send() returns the prefix it accepted; the
//    caller keeps the rest and the valve lane's collision policy (drop, spin, conflate, disconnect)
//    decides, counted by the lane. Counted here as `pushback`. A publish libnats refuses for another
//    reason is `failed` (SinkStats::errors). Nothing is dropped silently.
//  - Allocation: this sink allocates nothing per message (subjects and JSON are rendered into member
//    buffers). libnats' core publish copies into its write buffer, which only grows (realloc) when a
//    burst needs more room than it ever had. JetStream publishing allocates inside libnats per message
//    (a natsMsg with the Nats-Msg-Id header, kept in libnats' pending-ack map until its ack): the cost
//    of acks, stated rather than hidden.
//  - JetStream: every publish carries a Nats-Msg-Id unique to this run ("<run id>-<n>"), so a publish
//    resent after a failover is a duplicate the stream discards, not a second copy. After a reconnection
//    the publishes still waiting for an ack are taken back from libnats (js_PublishAsyncGetPendingList)
//    and resent; a negative ack or an ack timeout is retried from service() (rounds 50 ms apart, the
//    gap doubling up to 1 s while failures continue) up to kMaxRetries times, then counted `failed`. stop() resends what is queued and waits up to
//    drain_timeout for every ack (js_PublishAsyncComplete). published == acked + failed + pending, always.
//    Order: resends go out in publish order, but a resent message can land in the stream AFTER later
//    ones (those buffered while disconnected, or stored before the lost ack): across a failover the
//    stream holds every message once, not necessarily in publish order. Consumers of last values order
//    by the TobUpdate's gateway sequence (strictly increasing per publisher) and drop older ones.
//  - Threading: one instance per worker (the runtime builds one per worker), each with its own
//    connection; only its worker calls start/send/flush/service/stop. libnats' threads run the
//    callbacks, which touch atomics and a mutex-guarded retry list (error path only). stats() and
//    counters() read relaxed atomics from any thread.
//  - JetStream stream look-up/creation (js_GetStreamInfo, js_AddStream) are requests that can wait for
//    their answer (seconds while a cluster elects a leader): a helper thread that start() launches
//    makes them, never the worker, retried every 500 ms while they fail (logged once, the sink does
//    not fail), and sets stream_ready_; stop() joins it (bounded by one request's wait, kStreamRequestMs).
//    Until then send() pushes back (counted `pushback`) and service() does nothing.
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "hypergate/adapter/sink.hpp"
#include "market/tob_update.hpp"
#include "nats/nats_client.hpp"
#include "nats/subject_template.hpp"

namespace hypergate::nats {

struct NatsSinkOptions {
  enum class Publish : std::uint8_t { Updates, Itch, All };
  enum class Payload : std::uint8_t { Binary, Json };
  NatsClientOptions client;
  SubjectTemplate subject;
  Publish publish = Publish::Updates;
  Payload payload = Payload::Binary;
  std::uint64_t drain_timeout_ns = 5'000'000'000;
  bool jetstream = false;
  std::string stream = "MD";
  int replicas = 1;
  std::int64_t max_pending = 65536;
  std::uint64_t ack_wait_ns = 5'000'000'000;
};

/// Counters beyond SinkStats (also exported through SinkStats::counters to /stats and /metrics).
struct NatsSinkCounters {
  std::uint64_t published = 0;   ///< publishes libnats accepted
  std::uint64_t pending = 0;     ///< core: bytes in libnats' buffers; JetStream: publishes awaiting an ack
  std::uint64_t failed = 0;      ///< publishes refused by libnats, or (JetStream) never acknowledged
  std::uint64_t pushback = 0;    ///< send() calls that handed messages back (buffer / max_pending full)
  std::uint64_t filtered = 0;    ///< messages `publish` does not select (accepted, not published)
  std::uint64_t acked = 0;       ///< JetStream: positive acks (duplicates included)
  std::uint64_t duplicates = 0;  ///< JetStream: acks saying the stream already had the message
  std::uint64_t resent = 0;      ///< JetStream: publishes sent again (after a reconnection or an error)
  NatsClientCounters client;
};

class NatsSink final : public adapter::Sink {
 public:
  /// Per publish: with the backoff (50 ms doubling to 1 s between rounds) about 30 s of failover.
  static constexpr int kMaxRetries = 32;
  static constexpr std::uint64_t kRetryIntervalNs = 50'000'000;
  static constexpr std::uint64_t kRetryIntervalMaxNs = 1'000'000'000;
  static constexpr std::uint64_t kStreamRetryNs = 500'000'000;  ///< between stream look-up/creation attempts
  static constexpr std::int64_t kStreamRequestMs = 2000;  ///< wait per stream request: bounds stop()'s join

  explicit NatsSink(NatsSinkOptions options);
  ~NatsSink() override;
  NatsSink(const NatsSink&) = delete;
  NatsSink& operator=(const NatsSink&) = delete;

  [[nodiscard]] std::string_view type() const noexcept override { return "nats"; }
  [[nodiscard]] Result<void> start() override;
  void stop() noexcept override;
  std::size_t send(const Burst<>& burst) noexcept override;
  std::size_t service() noexcept override;
  [[nodiscard]] adapter::SinkStats stats() const noexcept override;
  [[nodiscard]] NatsSinkCounters counters() const noexcept;

  // libnats' JetStream ack callback (its thread).
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* self) noexcept;

 private:
  [[nodiscard]] bool selected(const Message& m) const noexcept;
  /// Publishes one message; false = pushback (the caller stops there).
  [[nodiscard]] bool publish_one(const Message& m) noexcept;
  [[nodiscard]] Result<void> ensure_stream();  // the helper thread only
  void ensure_stream_until_done() noexcept;    // the helper thread's body
  [[nodiscard]] bool stream_ready() const noexcept {
    return stream_ready_.load(std::memory_order_acquire);  // pairs with the release store in ensure_stream()
  }
  void resend_pending_after_reconnect() noexcept;
  void note_buffered() noexcept;
  std::size_t retry_failed() noexcept;
  std::size_t retry_round() noexcept;  // retry_failed() when the backoff allows
  void keep_or_give_up(natsMsg* msg) noexcept;  // with retry_mutex_ held
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);  // relaxed: counters; the worker and libnats' threads write
  }

  NatsSinkOptions opt_;
  std::unique_ptr<NatsClient> client_;
  bool started_ = false;
  // JetStream stream look-up/creation, off the worker (see the header comment).
  std::atomic<bool> stream_ready_{false};  // written by the helper thread, read by the worker
  std::thread stream_thread_;
  std::mutex stream_mutex_;                // with stream_wake_: lets stop() cut the retry wait short
  std::condition_variable stream_wake_;
  std::atomic<bool> stream_stop_{false};
  std::uint64_t run_id_ = 0;
  std::uint64_t next_msg_id_ = 0;
  std::uint64_t last_retry_tsc_ = 0;
  std::uint64_t retry_ticks_ = 0;       // current gap between retry rounds (backoff)
  std::uint64_t base_retry_ticks_ = 0;
  std::array<char, SubjectTemplate::kMaxSubject> subject_buf_{};
  std::array<char, market::kTobJsonMax> json_buf_{};
  std::array<char, 48> msg_id_buf_{};

  struct Retry {
    natsMsg* msg = nullptr;
    int attempts = 0;
  };
  std::mutex retry_mutex_;            // error path only: the ack callback adds, service() takes
  std::vector<Retry> retry_;          // guarded by retry_mutex_
  std::vector<Retry> retry_taken_;    // the worker's copy while it resends (no lock held while publishing)
  std::atomic<std::uint64_t> retry_queued_{0};  // size of retry_, readable without the lock
  std::unordered_map<std::uint64_t, int> attempts_;  // guarded by retry_mutex_: publish number -> attempts
  std::atomic<std::uint64_t> retrying_{0};           // size of attempts_, readable without the lock

  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> pushback_{0};
  std::atomic<std::uint64_t> filtered_{0};
  std::atomic<std::uint64_t> acked_{0};
  std::atomic<std::uint64_t> duplicates_{0};
  std::atomic<std::uint64_t> resent_{0};
  std::atomic<std::uint64_t> buffered_bytes_{0};  // core mode's `pending`, noted by the worker per burst
};

}  // namespace hypergate::nats
