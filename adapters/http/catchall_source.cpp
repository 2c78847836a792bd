// `http.catchall` source: the Vrypt behaviour (PROTOCOLS.md §1). Every method and path gets
// `200 OK`, `Content-Type: text/plain`, body `Vrypt`; keep-alive by default, pipelined requests are
// answered in order, parser errors are answered with their status and the connection is closed
// (framing is lost). Requests are not injected into the pipeline: poll() drives the io_uring loop
// without blocking and returns 0 messages; stats() counts requests as `messages`, HTTP errors as
// `rejects`. An RPS gauge `<prefix>.rps:<n>|g` goes to StatsD over UDP (fire-and-forget).
//
//   [source.catchall]
//   type             = "http.catchall"
//   listen           = "0.0.0.0:8081"
//   threads          = 1          # listeners (SO_REUSEPORT), each with its own ring; the first is
//                                 # driven by poll() on the worker, the others by their own threads
//   max_connections  = 10000      # per listener
//   idle_timeout     = "60s"
//   header_timeout   = "10s"      # an incomplete request older than this closes (slowloris)
//   max_header_bytes = 16384      # -> 431
//   max_body_bytes   = 65536      # -> 413
//   statsd           = "127.0.0.1:8125"
//   statsd_prefix    = "hypergate.catchall"
//   statsd_interval  = "1s"       # 0 = no StatsD
//
// Hot path: per-connection parsers are preallocated; responses are constant strings copied into the
// connection's output buffer; no allocation per request.
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http/http_parser.hpp"
#include "hypergate/adapter/registry.hpp"
#include "uring/uring_server.hpp"

namespace hypergate::http {
namespace {

constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nVrypt";
constexpr std::string_view kOkHead = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n";
constexpr std::string_view kOkClose =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nVrypt";
constexpr std::string_view kOkCloseHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
constexpr std::string_view kOk10 =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nVrypt";
constexpr std::string_view kOk10Head =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::size_t kMaxResponse = 256;  // room checked before parsing a request
static_assert(kOk10.size() < kMaxResponse && kOkClose.size() < kMaxResponse, "responses fit the reserve");

/// Serves one listener's connections: one parser per connection slot.
class CatchallHandler final : public uring::ConnectionHandler {
 public:
  CatchallHandler(std::uint32_t max_connections, const Limits& limits)
      : parsers_(max_connections, RequestParser(limits)), continue_sent_(max_connections, 0) {}

  void on_open(uring::Connection& c) noexcept override {
    parsers_[c.index()].reset();
    continue_sent_[c.index()] = 0;
  }

  std::size_t on_data(uring::Connection& c, std::span<char> data) noexcept override {
    RequestParser& parser = parsers_[c.index()];
    std::size_t used = 0;
    std::uint64_t served = 0;
    while (used < data.size() && !c.closing()) {
      if (c.write_room() < kMaxResponse) break;  // wait for the output to drain (before parsing)
      const ParseResult r = parser.parse(data.subspan(used));
      if (r.status == ParseStatus::NeedMore) {
        if (parser.headers_complete() && parser.expect_continue() && continue_sent_[c.index()] == 0) {
          c.write(kContinue);
          continue_sent_[c.index()] = 1;
        }
        break;
      }
      if (r.status == ParseStatus::Error) {
        write_error(c, r.http_status);
        c.close_after_write();
        rejects_.add();
        used = data.size();
        break;
      }
      const Request& q = parser.request();
      const bool head = q.method == Method::Head;
      if (!q.keep_alive) {
        c.write(head ? kOkCloseHead : kOkClose);
        c.close_after_write();
      } else if (q.version_minor == 0) {
        c.write(head ? kOk10Head : kOk10);
      } else {
        c.write(head ? kOkHead : kOk);
      }
      continue_sent_[c.index()] = 0;
      used += r.consumed;
      ++served;
    }
    if (served != 0) requests_.add(served);
    return c.closing() ? data.size() : used;
  }

  [[nodiscard]] std::uint64_t requests() const noexcept { return requests_.get(); }
  [[nodiscard]] std::uint64_t rejects() const noexcept { return rejects_.get(); }

 private:

  static void write_error(uring::Connection& c, std::uint16_t status) noexcept {
    char buf[kMaxResponse];
    const std::string_view reason = reason_phrase(status);
    const int n = std::snprintf(buf, sizeof(buf),
                                "HTTP/1.1 %u %.*s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                                "Connection: close\r\n\r\n%.*s",
                                static_cast<unsigned>(status), static_cast<int>(reason.size()), reason.data(),
                                reason.size(), static_cast<int>(reason.size()), reason.data());
    if (n > 0 && static_cast<std::size_t>(n) < sizeof(buf)) c.write(std::string_view(buf, static_cast<std::size_t>(n)));
  }

  std::vector<RequestParser> parsers_;
  std::vector<std::uint8_t> continue_sent_;
  Counter requests_;
  Counter rejects_;
};

struct Options {
  uring::ServerOptions server;
  Limits limits;
  unsigned threads = 1;
  std::string statsd_host = "127.0.0.1";
  std::uint16_t statsd_port = 8125;
  std::string statsd_prefix = "hypergate.catchall";
  std::uint64_t statsd_interval_ns = 1'000'000'000;
};

/// One listener: its handler and server, optionally with its own thread.
struct Listener {
  explicit Listener(const Options& o)
      : handler(o.server.max_connections, o.limits), server(o.server, handler) {}
  CatchallHandler handler;
  uring::UringServer server;
  std::thread thread;
};

class CatchallSource final : public adapter::Source {
 public:
  explicit CatchallSource(Options o) : opt_(std::move(o)) {
    // Room for every listener now: start() (on the worker) appends without moving the array, while
    // stats() (any thread) reads the listeners published so far.
    listeners_.reserve(std::max(1u, opt_.threads));
  }
  ~CatchallSource() override { stop(); }

  [[nodiscard]] std::string_view type() const noexcept override { return "http.catchall"; }

  [[nodiscard]] Result<void> start() override {
    // The polled listener first: with port 0 the others join the port it got.
    listeners_.push_back(std::make_unique<Listener>(opt_));
    published_.store(1, std::memory_order_release);  // pairs with the acquire load in stats()
    if (auto r = listeners_[0]->server.start(); !r) return r;
    Options extra = opt_;
    extra.server.port = listeners_[0]->server.port();
    for (unsigned t = 1; t < opt_.threads; ++t) {
      listeners_.push_back(std::make_unique<Listener>(extra));
      published_.store(listeners_.size(), std::memory_order_release);  // see stats()
      Listener* l = listeners_.back().get();
      // Each ring is created, run and torn down on its own thread (see UringServer's contract).
      std::promise<Result<void>> ready;
      auto started = ready.get_future();
      l->thread = std::thread([this, l, &ready] {
        auto r = l->server.start();
        const bool ok = r.ok();
        ready.set_value(std::move(r));
        if (ok) l->server.run(stop_threads_);
        l->server.stop();
      });
      if (auto r = started.get(); !r) {
        stop();
        return r;
      }
    }
    if (opt_.statsd_interval_ns != 0) open_statsd();
    last_stats_ns_ = now_ns();
    return {};
  }

  void stop() noexcept override {
    // release: pairs with the acquire-load of the flag in UringServer::run() on the extra threads.
    stop_threads_.store(true, std::memory_order_release);
    for (auto& l : listeners_) {
      if (l->thread.joinable()) l->thread.join();
    }
    if (!listeners_.empty()) listeners_[0]->server.stop();
    if (statsd_fd_ >= 0) close(statsd_fd_);
    statsd_fd_ = -1;
  }

  std::size_t poll(Burst<>& out) noexcept override {
    (void)out;  // catch-all requests are answered here, never injected into the pipeline
    listeners_[0]->server.run_once(0);
    if (statsd_fd_ >= 0) {
      const std::uint64_t now = now_ns();
      if (now - last_stats_ns_ >= opt_.statsd_interval_ns) [[unlikely]] {
        push_rps(now);
      }
    }
    return 0;
  }

  /// The first listener's ring (served by poll()); the others have their own threads.
  [[nodiscard]] int wake_fd() noexcept override {
    return listeners_.empty() ? -1 : listeners_[0]->server.ring_fd();
  }

  [[nodiscard]] adapter::SourceStats stats() const noexcept override {
    adapter::SourceStats s;
    // acquire: pairs with the release stores in start(); only the listeners published so far, read
    // through data() (the array was reserved by the constructor and never moves: start() appending
    // writes the vector's end, which this does not read).
    const std::size_t n = published_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
      const Listener* l = listeners_.data()[i].get();
      const uring::ServerStats ss = l->server.stats();
      s.messages += l->handler.requests();
      s.rejects += l->handler.rejects();
      s.bytes += ss.bytes_in;
      s.errors += ss.errors;
    }
    return s;
  }

 private:
  static std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
  }

  void open_statsd() noexcept {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(opt_.statsd_port);
    if (getaddrinfo(opt_.statsd_host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) return;
    const int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
      statsd_fd_ = fd;
    } else if (fd >= 0) {
      close(fd);
    }
    freeaddrinfo(res);
  }

  void push_rps(std::uint64_t now) noexcept {
    std::uint64_t total = 0;
    for (const auto& l : listeners_) total += l->handler.requests();
    const std::uint64_t elapsed = now - last_stats_ns_;
    const std::uint64_t rps = elapsed == 0 ? 0 : (total - last_requests_) * 1'000'000'000ull / elapsed;
    char line[256];
    const int n = std::snprintf(line, sizeof(line), "%s.rps:%llu|g", opt_.statsd_prefix.c_str(),
                                static_cast<unsigned long long>(rps));
    if (n > 0 && static_cast<std::size_t>(n) < sizeof(line)) {
      (void)send(statsd_fd_, line, static_cast<std::size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);  // fire and forget
    }
    last_requests_ = total;
    last_stats_ns_ = now;
  }

  Options opt_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::atomic<std::size_t> published_{0};  // listeners_ entries that stats() may read
  std::atomic<bool> stop_threads_{false};
  int statsd_fd_ = -1;
  std::uint64_t last_stats_ns_ = 0;
  std::uint64_t last_requests_ = 0;
};

Result<std::unique_ptr<adapter::Source>> make_catchall(config::Section& section, const adapter::Context& ctx) {
  (void)ctx;
  Options o;
  if (auto ep = section.endpoint("listen", "0.0.0.0:8081")) {
    o.server.host = ep->host.empty() ? "0.0.0.0" : ep->host;
    o.server.port = ep->port;
  }
  o.threads = static_cast<unsigned>(section.integer("threads", 1, 1, 64));
  o.server.max_connections = static_cast<std::uint32_t>(section.integer("max_connections", 10'000, 1, 1'000'000));
  o.server.idle_timeout_ns = section.duration_ns("idle_timeout", 60'000'000'000ull);
  o.server.header_timeout_ns = section.duration_ns("header_timeout", 10'000'000'000ull);
  o.limits.max_header_bytes = static_cast<std::uint32_t>(section.integer("max_header_bytes", 16 * 1024, 256, 1 << 20));
  o.limits.max_body_bytes = static_cast<std::uint64_t>(section.integer("max_body_bytes", 64 * 1024, 0, 64 << 20));
  if (auto ep = section.endpoint("statsd", "127.0.0.1:8125")) {
    o.statsd_host = ep->host.empty() ? "127.0.0.1" : ep->host;
    o.statsd_port = ep->port;
  }
  o.statsd_prefix = section.string("statsd_prefix", "hypergate.catchall");
  o.statsd_interval_ns = section.duration_ns("statsd_interval", 1'000'000'000ull);
  // A request (line, headers, body, chunk framing, trailers) must fit a connection's input buffer.
  const std::uint64_t need = std::uint64_t{o.limits.max_target_bytes} + 2ull * o.limits.max_header_bytes +
                             2ull * o.limits.max_body_bytes + 8192;
  o.server.input_bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(need, 1u << 30));
  o.server.output_bytes = 16 * 1024;
  return std::unique_ptr<adapter::Source>(std::make_unique<CatchallSource>(std::move(o)));
}

// Static registration: this library is linked whole into `hypergate` and the tests.
const bool registered = [] {
  return adapter::Registry::global()
      .add_source("http.catchall",
                  "HTTP/1.1 catch-all: 200 `Vrypt` to every request (listen, max_connections, idle_timeout, "
                  "header_timeout, max_header_bytes, max_body_bytes, statsd, statsd_prefix, statsd_interval, "
                  "threads)",
                  make_catchall)
      .ok();
}();

}  // namespace
}  // namespace hypergate::http
