// `echo` source: the Hyper Uring Server behaviour as an adapter. Every byte a client sends on a TCP
// connection is sent back unchanged, in order (UringServer + EchoHandler, adapters/uring). Nothing is
// injected into the pipeline: poll() drives the io_uring loop without blocking (run_once(0)) and
// returns 0 messages; stats() counts echoed messages (one per batch of bytes handed to the handler,
// i.e. per receive completion that carried data) and echoed bytes.
//
//   [source.echo]
//   type            = "echo"
//   listen          = "0.0.0.0:7000"
//   max_connections = 4096
//   idle_timeout    = "60s"      # 0 = none
//   send_zc_threshold = 0        # replies of at least this many bytes go out with send_zc; 0 = never
//
// stats().details: the transport's zero-copy figures (zc_sends, zc_notifications, zc_copied,
// zc_fallbacks, zc_outstanding) and partial_sends.
//
// Contract: the ring is created in start(), driven in poll() and torn down in stop(); the runtime
// calls all three on the owning worker's thread, as UringServer requires. stats() may be called from
// any thread (counters are relaxed atomics with a single writer).
// Hot path: no allocation, no lock; one io_uring_enter (at most) per poll().
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "hypergate/adapter/registry.hpp"
#include "uring/uring_server.hpp"

namespace hypergate::uring {
namespace {

/// EchoHandler plus counters: messages = handler calls that echoed at least one byte.
class CountingEchoHandler final : public ConnectionHandler {
 public:
  std::size_t on_data(Connection& c, std::span<char> data) noexcept override {
    const std::size_t n = echo_.on_data(c, data);
    if (n != 0) {
      bump(messages_, 1);
      bump(bytes_, n);
    }
    return n;
  }

  [[nodiscard]] std::uint64_t messages() const noexcept { return messages_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_.load(std::memory_order_relaxed); }

 private:
  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
    // relaxed: one writer (the worker thread that polls the loop); readers want a monotonic count only.
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  EchoHandler echo_;
  std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> bytes_{0};
};

class EchoSource final : public adapter::Source {
 public:
  explicit EchoSource(ServerOptions o) : server_(std::move(o), handler_) {}
  ~EchoSource() override { stop(); }

  [[nodiscard]] std::string_view type() const noexcept override { return "echo"; }

  [[nodiscard]] Result<void> start() override {
    if (auto r = server_.start(); !r) return r;
    started_ = true;
    return {};
  }

  void stop() noexcept override {
    server_.stop();  // idempotent
    started_ = false;
  }

  std::size_t poll(Burst<>& out) noexcept override {
    (void)out;  // echoed bytes go back to the client, never into the pipeline
    if (started_) [[likely]] server_.run_once(0);
    return 0;
  }

  [[nodiscard]] int wake_fd() noexcept override { return server_.ring_fd(); }

  [[nodiscard]] adapter::SourceStats stats() const noexcept override {
    adapter::SourceStats s;
    s.messages = handler_.messages();
    s.bytes = handler_.bytes();
    const ServerStats t = server_.stats();
    s.errors = t.errors;
    s.details.add("partial_sends", t.partial_sends);
    s.details.add("zc_sends", t.zc_sends);
    s.details.add("zc_notifications", t.zc_notifications);
    s.details.add("zc_copied", t.zc_copied);
    s.details.add("zc_fallbacks", t.zc_fallbacks);
    s.details.add("zc_outstanding", t.zc_outstanding);
    return s;
  }

 private:
  CountingEchoHandler handler_;  // declared before server_: the server holds a reference to it
  UringServer server_;
  bool started_ = false;
};

Result<std::unique_ptr<adapter::Source>> make_echo(config::Section& section, const adapter::Context& ctx) {
  (void)ctx;
  ServerOptions o;
  if (auto ep = section.endpoint("listen", "0.0.0.0:7000")) {
    o.host = ep->host.empty() ? "0.0.0.0" : ep->host;
    o.port = ep->port;
  }
  o.max_connections = static_cast<std::uint32_t>(section.integer("max_connections", 4096, 1, 1'000'000));
  o.idle_timeout_ns = section.duration_ns("idle_timeout", 60'000'000'000ull);
  o.send_zc_threshold = static_cast<std::uint32_t>(
      section.integer("send_zc_threshold", kDefaultSendZcThreshold, 0, std::numeric_limits<std::uint32_t>::max()));
  o.header_timeout_ns = 0;  // echo has no framing: there is no incomplete message to time out
  return std::unique_ptr<adapter::Source>(std::make_unique<EchoSource>(std::move(o)));
}

// Static registration: this library is in HG_ADAPTER_LIBS, linked whole into `hypergate` and the tests.
const bool registered = [] {
  return adapter::Registry::global()
      .add_source("echo", "TCP echo over io_uring, the Hyper Uring Server (listen, max_connections, idle_timeout, send_zc_threshold)",
                  make_echo)
      .ok();
}();

}  // namespace
}  // namespace hypergate::uring
