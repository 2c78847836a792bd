#pragma once
// AdminServer: the gateway's `[admin]` HTTP listener (loopback by default, port 9901).
//
//   GET /metrics  Prometheus text exposition 0.0.4 (PROTOCOLS.md §5): counters end in `_total` and carry
//                 # HELP / # TYPE lines; per source, pipeline, sink, lane and worker; lane in_flight is a
//                 gauge; the two stage latencies are `summary` metrics (quantile 0.5/0.99/0.999 + _count)
//                 in nanoseconds.
//   GET /stats    the same counters as one JSON object (strings escaped).
//   GET /health   200 "ok\n" while no adapter has failed; 503 with one line per failed adapter otherwise.
//   HEAD          as GET without the body. Unknown path: 404. Known path, other method: 405 (Allow: GET, HEAD).
//
// Contract and why it is shaped this way
//  - Cold path: requests are rare, so every response is built as a std::string from a fresh
//    runtime::Report (the callback; Runtime::report() is mutex-guarded and safe from any thread). The
//    workers never wait for the admin server: it only reads their relaxed counters through report().
//  - One UringServer (adapters/uring) on a thread owned by AdminServer: that thread calls the server's
//    start(), run() and stop() (the ring must be created, driven and torn down by one thread). start()
//    here blocks until the listener is bound (or failed) so the caller can report a bind error.
//  - Responses are written only into an empty output buffer (one response in flight per connection,
//    pipelined requests wait their turn); a response larger than the buffer is answered 500.
//  - The formatting functions are pure (no I/O) so they are unit-tested on hand-built Reports.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "hypergate/core/status.hpp"
#include "hypergate/runtime/runtime.hpp"

namespace hypergate::http {

/// Prometheus text exposition 0.0.4 of every counter in `report`.
[[nodiscard]] std::string format_prometheus(const runtime::Report& report);
/// The same as one JSON object.
[[nodiscard]] std::string format_stats_json(const runtime::Report& report);

struct HealthResult {
  bool healthy = true;
  std::string body;  ///< "ok\n", or one line per failed adapter ("source feed failed: <reason>\n")
};
/// Healthy while no source and no sink instance is in state Failed (Created, Running, Finished and
/// Stopped are all normal phases of a run).
[[nodiscard]] HealthResult health(const runtime::Report& report);

/// A complete HTTP/1.1 response for one request (the routing of the admin endpoints), exposed for tests.
/// `method` is the request method token, `target` its request-target (a query string is ignored).
[[nodiscard]] std::string admin_response(std::string_view method, std::string_view target, bool keep_alive,
                                         const std::function<runtime::Report()>& report);

struct AdminOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9901;  ///< 0 = ephemeral (see AdminServer::port())
  std::uint32_t max_connections = 32;
  std::uint32_t output_bytes = 4u << 20;  ///< largest response (reserved lazily: mmap MAP_NORESERVE)
};

class AdminServer {
 public:
  using ReportFn = std::function<runtime::Report()>;
  AdminServer(AdminOptions options, ReportFn report);
  ~AdminServer();  ///< stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  /// Starts the server thread and waits until the listener is bound. The Error reads
  /// "admin listener HOST:PORT: <reason>". Call once.
  [[nodiscard]] Result<void> start();
  /// Stops the loop, closes every connection and joins the thread. Idempotent.
  void stop() noexcept;
  /// The bound port (the real one when AdminOptions::port was 0); valid after a successful start().
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

 private:
  struct Impl;
  AdminOptions opt_;
  ReportFn report_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::atomic<bool> stop_flag_{false};
  std::uint16_t port_ = 0;
};

}  // namespace hypergate::http
