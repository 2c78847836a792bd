#pragma once
// NatsClient: one libnats connection as the nats sink and source use it. It owns the natsOptions and
// natsConnection (and the JetStream context when asked), and turns libnats' callbacks into counters
// and log lines. libnats' own machinery does the networking: the server list, reconnection, the
// reconnect buffer, PING/PONG, the flusher thread.
//
// Contract
//  - connect() is cold path (start()). It never fails because no server answers: the connection is
//    made with natsOptions_SetRetryOnFailedConnect, so libnats keeps trying in its reconnect thread,
//    and connect() returns ok with connected() false. Other failures (bad URL, out of memory) are an Error.
//  - Reconnection walks `servers` in order (no randomisation: the first one is the preferred one) and
//    waits between passes over the list with an exponential backoff, reconnect_wait doubling up to
//    reconnect_wait_max, plus libnats' jitter; max_reconnect < 0 retries forever. Every attempt is
//    counted (reconnect_attempts) and the first of a run is logged.
//  - Callbacks run on libnats' threads and touch only atomics (and stderr for the cold-path log lines).
//    libnats runs them on its asynchronous-callback thread, which natsConnection_Close/Destroy do not
//    wait for: close() waits until on_closed, the last callback of a connection, has run, so no
//    callback can touch this object after close() returns (the destructor calls it).
//  - counters() may be read from any thread (relaxed atomics: monotonic values, no ordering needed).
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <nats/nats.h>

#include "hypergate/core/status.hpp"

namespace hypergate::nats {

struct NatsClientOptions {
  std::string name;                                      ///< instance name, for log lines
  std::string role;                                      ///< "sink" or "source", for log lines
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  std::uint64_t connect_timeout_ns = 2'000'000'000;
  std::uint64_t reconnect_wait_ns = 100'000'000;         ///< first backoff between passes over `servers`
  std::uint64_t reconnect_wait_max_ns = 2'000'000'000;   ///< backoff cap
  int max_reconnect = -1;                                ///< attempts per disconnection; < 0 = forever
  std::int64_t reconnect_buffer_bytes = 8 << 20;         ///< libnats' buffer for publishes while disconnected
  bool send_asap = false;                                ///< flush = "asap": every publish written at once
  int max_pending_messages = 65536;                      ///< libnats' per-subscription pending limit (source)
};

struct NatsClientCounters {
  std::uint64_t connects = 0;            ///< first connections + reconnections that succeeded
  std::uint64_t disconnects = 0;
  std::uint64_t reconnects = 0;          ///< reconnections that succeeded
  std::uint64_t reconnect_attempts = 0;  ///< passes over the server list that libnats started
  std::uint64_t async_errors = 0;        ///< libnats' asynchronous errors (slow consumer, permission...)
  std::uint64_t slow_consumer = 0;       ///< of which: the server or libnats dropped messages for us
};

class NatsClient {
 public:
  explicit NatsClient(NatsClientOptions options);
  ~NatsClient();
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  [[nodiscard]] Result<void> connect();
  /// Creates the JetStream context (after connect()).
  [[nodiscard]] Result<void> enable_jetstream(jsOptions& options);
  /// Closes and destroys everything (idempotent).
  void close() noexcept;

  [[nodiscard]] natsConnection* connection() const noexcept { return nc_; }
  [[nodiscard]] jsCtx* jetstream() const noexcept { return js_; }
  [[nodiscard]] bool connected() const noexcept {
    return connected_.load(std::memory_order_acquire);  // pairs with the release stores in the callbacks
  }
  [[nodiscard]] NatsClientCounters counters() const noexcept;
  /// "nats://127.0.0.1:4222" of the server in use, or "" when not connected (cold path).
  [[nodiscard]] std::string connected_url() const;
  /// Set by the reconnected callback, cleared by the caller: the owner's cue to re-check state after a
  /// reconnection (acquire/release pair with the callback's store).
  [[nodiscard]] bool take_reconnected() noexcept { return reconnected_flag_.exchange(false, std::memory_order_acq_rel); }
  [[nodiscard]] const NatsClientOptions& options() const noexcept { return opt_; }

  // libnats callbacks (C linkage not needed: libnats calls through plain function pointers).
  static void on_connected(natsConnection* nc, void* self) noexcept;
  static void on_disconnected(natsConnection* nc, void* self) noexcept;
  static void on_reconnected(natsConnection* nc, void* self) noexcept;
  static void on_closed(natsConnection* nc, void* self) noexcept;
  static std::int64_t on_reconnect_delay(natsConnection* nc, int attempts, void* self) noexcept;

  static void on_async_error(natsConnection* nc, natsSubscription* sub, natsStatus err, void* self) noexcept;

  /// How long close() waits for libnats' closed callback before giving up (it logs then).
  static constexpr std::uint64_t kClosedCallbackWaitNs = 10'000'000'000;

 private:
  static void bump(std::atomic<std::uint64_t>& c) noexcept {
    c.fetch_add(1, std::memory_order_relaxed);  // relaxed: counters only; several libnats threads may write
  }
  NatsClientOptions opt_;
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  std::atomic<bool> connected_{false};
  std::atomic<bool> reconnected_flag_{false};
  std::atomic<bool> waiting_logged_{false};
  std::atomic<bool> closing_{false};  // close() in progress: its disconnection is not news
  std::atomic<bool> closed_cb_done_{false};  // on_closed ran: libnats calls nothing of ours any more
  std::atomic<std::uint64_t> connects_{0};
  std::atomic<std::uint64_t> disconnects_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> reconnect_attempts_{0};
  std::atomic<std::uint64_t> async_errors_{0};
  std::atomic<std::uint64_t> slow_consumer_{0};
};

/// "nats: <libnats status text> (<last error>)" for an Error message.
[[nodiscard]] std::string nats_error_text(int status);

}  // namespace hypergate::nats
