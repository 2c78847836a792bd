#pragma once
// `nats` source: subscribes to NATS subjects through libnats and feeds the messages to a pipeline.
//
//   [source.md]
//   type            = "nats"
//   servers         = ["nats://127.0.0.1:4222"]   # tried in order, reconnection as for the sink
//   subjects        = ["md.*"]                     # wildcards allowed; one subscription each
//   queue           = "edge"                       # optional queue group: members share the messages
//   queue_capacity  = 8192                         # messages per subscription between libnats and poll()
//   max_pending_messages = 65536                   # libnats' per-subscription pending limit, 1..2^20
//                                                  # (libnats computes messages x 1024 bytes in an int)
//   jetstream       = false                        # consume a stream instead of core subscriptions
//   stream          = "MD"                         # JetStream: the stream to bind to
//   deliver         = "new"                        # JetStream: "all" replays the stream from its start,
//                                                  # "new" only what arrives after start, "last" the last one
//   pipeline        = "passthrough"                # with key = "source": the key is the subject's last
//   [source.md.pipeline_options]                   # token ("AAPL" for "md.AAPL"), set by this source
//   key = "source"
//   # plus reconnect_wait, reconnect_wait_max, max_reconnect, connect_timeout (as for the sink)
//
// Guarantees
//  - libnats delivers each subscription's messages on one thread of its own (in order); that thread
//    copies the subject and payload into a fixed-size Record and pushes it into that subscription's
//    bounded lock-free SPSC queue (boost::lockfree::spsc_queue: exactly one producer, the libnats
//    delivery thread of that subscription; exactly one consumer, the owning worker in poll()). A full
//    queue is an overflow: the message is dropped and counted (SourceStats::drops), never blocked on.
//    A message whose subject or payload does not fit a Record is counted as a reject (`oversize`).
//  - poll() moves up to the burst's free room out of the queues (round robin over subscriptions) into
//    a per-source array that stays valid until release(); the messages point into it (payload, and the
//    key into the subject). No allocation in poll(). libnats allocates a natsMsg per received message
//    on its own thread (its API owns that); the callback destroys it right after the copy.
//  - JetStream: an ordered consumer (js_Subscribe with Ordered), created by a helper thread that start()
//    launches (a consumer request can wait seconds for its answer, so never on the worker), retried
//    every 500 ms while the server cannot answer (not connected, a cluster electing a leader; logged
//    once, the source does not fail), joined by stop(). libnats detects a gap or a stall and
//    recreates the consumer from the last sequence it delivered, so a failover loses nothing; deliver
//    "all" replays the whole stream. Message::sequence is 0 (core) or the count of messages this
//    subscription delivered (1, 2, ...).
//  - JetStream resume: each lane remembers the stream sequence of the last message it delivered (read
//    from the reply subject, `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...`, no allocation).
//    A consumer request can fail after the server created the consumer and delivered from it (the
//    server stopped before its reply came back); libnats then drops the subscription, and the retry
//    subscribes with DeliverByStartSequence from the last delivered sequence + 1 instead of the
//    configured policy, so nothing is delivered twice. A message at or below that sequence (a stray
//    redelivery) is dropped and counted as `duplicates` (SourceStats::rejects), never passed on.
//  - Threading: the owning worker calls start/poll/release/stop; libnats' threads call on_message; the
//    JetStream helper thread only creates subscriptions. libnats may still run on_message once after
//    natsSubscription_Unsubscribe returns, so stop() waits for each subscription's completion callback
//    (natsSubscription_SetOnCompleteCB: the handler has returned for good) before the lanes can go;
//    stats() reads relaxed atomics from any thread.
#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/lockfree/spsc_queue.hpp>

#include "hypergate/adapter/source.hpp"
#include "nats/nats_client.hpp"

namespace hypergate::nats {

struct NatsSourceOptions {
  enum class Deliver : std::uint8_t { New, All, Last };
  NatsClientOptions client;
  std::vector<std::string> subjects;
  std::string queue;  ///< empty: no queue group
  std::size_t queue_capacity = 8192;
  bool jetstream = false;
  std::string stream = "MD";
  Deliver deliver = Deliver::New;
  std::uint16_t source_id = 0;
};

/// One received message as it crosses from libnats' thread to the worker: fixed size, so the queue
/// is one preallocated array and a push is one copy.
struct NatsRecord {
  static constexpr std::size_t kMaxSubject = 96;
  static constexpr std::size_t kMaxPayload = 400;  ///< a TobUpdate is 52 bytes, its JSON at most 320
  std::uint64_t rx_tsc = 0;
  std::uint64_t sequence = 0;
  std::uint16_t subject_size = 0;
  std::uint16_t payload_size = 0;
  std::array<char, kMaxSubject> subject{};
  std::array<std::byte, kMaxPayload> payload{};
};
static_assert(sizeof(NatsRecord) == 520, "8 + 8 + 2 + 2 + 96 + 400 + 4 bytes of tail padding to the 8-byte alignment");

class NatsSource final : public adapter::Source {
 public:
  explicit NatsSource(NatsSourceOptions options);
  ~NatsSource() override;
  NatsSource(const NatsSource&) = delete;
  NatsSource& operator=(const NatsSource&) = delete;

  [[nodiscard]] std::string_view type() const noexcept override { return "nats"; }
  [[nodiscard]] Result<void> start() override;
  void stop() noexcept override;
  std::size_t poll(Burst<>& out) noexcept override;
  /// An eventfd that libnats' delivery threads write once after wake_fd() armed it (the worker is about
  /// to sleep): while the worker is busy, deliveries make no syscall.
  [[nodiscard]] int wake_fd() noexcept override;
  [[nodiscard]] adapter::SourceStats stats() const noexcept override;
  [[nodiscard]] NatsClientCounters client_counters() const noexcept { return client_->counters(); }

  static void on_message(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* lane) noexcept;
  /// libnats: the subscription is closed and on_message has returned for the last time.
  static void on_complete(void* lane) noexcept;
  /// How long stop() waits for a subscription's completion callback before giving up (it logs then).
  static constexpr std::uint64_t kCompleteWaitNs = 5'000'000'000;
  /// Test hook: drops every JetStream subscription and re-creates it as the retry after a failed
  /// consumer request does (from the last delivered stream sequence + 1). Worker thread, after start().
  /// Returns the stream sequence the first subscription resumes from.
  [[nodiscard]] Result<std::uint64_t> resubscribe_jetstream_for_test();

 private:
  /// One subscription and the queue its libnats delivery thread fills.
  struct Lane {
    explicit Lane(std::size_t capacity) : queue(capacity) {}
    boost::lockfree::spsc_queue<NatsRecord> queue;  // producer: libnats' thread; consumer: the worker
    natsSubscription* sub = nullptr;
    NatsSource* owner = nullptr;
    std::uint64_t delivered = 0;  // written by the producer thread only
    // Stream sequence of the last message passed on (JetStream). Stored by the delivery thread,
    // loaded by the helper thread that re-creates a consumer (release/acquire pair).
    std::atomic<std::uint64_t> last_stream_seq{0};
    bool complete_cb = false;     // on_complete is registered (set by the thread that subscribed)
    std::atomic<bool> complete{false};  // on_complete ran: no more on_message for this lane
  };
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);  // relaxed: counters, several producer threads
  }
  [[nodiscard]] Result<void> subscribe_jetstream();
  void watch_completion(Lane& lane) noexcept;
  void close_subscriptions() noexcept;
  void subscribe_jetstream_until_done() noexcept;
  static constexpr std::uint64_t kJetStreamRetryNs = 500'000'000;  ///< between consumer creation attempts

  NatsSourceOptions opt_;
  std::unique_ptr<NatsClient> client_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::size_t next_lane_ = 0;
  std::array<NatsRecord, Burst<>::kCapacity> batch_{};  // what the last poll() handed out (until release)
  bool started_ = false;
  // JetStream consumer creation, off the worker: the helper thread owns lane.sub until it is joined.
  std::thread js_thread_;
  std::mutex js_mutex_;               // with js_wake_: lets stop() cut the retry wait short
  std::condition_variable js_wake_;
  std::atomic<bool> js_stop_{false};

  // Waking an idle worker: armed by wake_fd() (worker) right before it sleeps, disarmed by the first
  // delivery after that, which writes wake_efd_ (see wake_fd() for the orders).
  int wake_efd_ = -1;
  std::atomic<bool> wake_armed_{false};
  std::atomic<std::uint64_t> pushed_{0};  // messages queued by the delivery threads (seq_cst, see wake_fd())
  std::uint64_t popped_ = 0;              // messages poll() took out (worker only)

  std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> polls_{0};
  std::atomic<std::uint64_t> oversize_{0};
  std::atomic<std::uint64_t> overflow_{0};
  std::atomic<std::uint64_t> duplicates_{0};
};

/// The stream sequence in a JetStream message's reply subject: token 5 of the 9-token form
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`, token 7 of the 11/12-token
/// form with domain and account hash. 0 when the subject is neither (a core message, a malformed one).
[[nodiscard]] std::uint64_t jetstream_stream_sequence(std::string_view reply) noexcept;

}  // namespace hypergate::nats
