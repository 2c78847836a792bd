// `http.fire` source: the V8-32 behaviour (PROTOCOLS.md §1). Only `POST /fire` is served: its body
// becomes a message injected into the source's pipeline and the valve engine, and the answer says
// what the engine did with it:
//   200, `X-Hyper-Status: PROCESSED` (queued on its lane) or `COLLISION` (the lane was full and its
//   policy applied), `X-Latency-Ns: <ns>`, body `V8-32 Engine: <STATUS> | Time: <ns> ns`, where <ns>
//   is the in-engine time: parse done (Message::rx_tsc) -> accepted by the engine (the tick the
//   runtime reports with the verdict). When the pipeline emits several messages for one request, the
//   worst verdict wins (COLLISION over REJECTED over PROCESSED over DROPPED) and the time runs to the
//   last acceptance.
//   Requests that never met a lane get a 4xx with the same headers: 413 `REJECTED` (body plus key
//   larger than a valve slot: the engine refused it), 422 `REJECTED` (the pipeline rejected it, e.g.
//   a validator; the reason is in the pipeline's counters, not per request) and 422 `DROPPED` (the
//   pipeline routed it nowhere).
// Every other method or path (HEAD too) is `404`; parser errors get their status and close the
// connection (framing is lost), as in http.catchall; the engine keeps serving.
// `X-Hyper-Key` sets the routing key, otherwise the body bytes are the key (hashed once here). The
// pipeline should keep the source's key: "passthrough" with pipeline_options.key = "source".
//
//   [source.fire]
//   type             = "http.fire"
//   listen           = "0.0.0.0:8080"  # SO_REUSEPORT: several http.fire sources (one per worker)
//                                      # may listen on one port; the kernel spreads connections
//   max_connections  = 10000
//   idle_timeout     = "60s"
//   header_timeout   = "10s"           # an incomplete request older than this closes (slowloris)
//   max_header_bytes = 16384           # -> 431
//   max_body_bytes   = 65536           # -> 413 (a body must also fit a valve slot: valves.slot_bytes)
//   burst            = 32              # requests injected per poll (1..32). The in-engine time starts
//                                      # when a request is parsed; with many connections a large burst
//                                      # makes the first parsed wait for the others to be parsed and
//                                      # pushed. A smaller burst leaves the others unread in the kernel
//                                      # until the next poll: lower in-engine time, one more loop
//                                      # iteration (io_uring_enter) per `burst` requests. Measured (wrk
//                                      # -c50, tests/bench/http.sh): burst 32 median 404 ns at 168k
//                                      # req/s, burst 1 median 109 ns at 165k req/s.
//   pipeline         = "passthrough"
//   pipeline_options = { key = "source" }
//
// How a request travels (all on the owning worker, no allocation in steady state):
//   poll(): connections waiting for a redelivery are offered their unconsumed bytes again, then the
//   io_uring loop runs once without blocking. on_data() parses; a `POST /fire` has its body and key
//   copied into the per-burst arena (the transport may reuse its receive buffer once on_data()
//   returns), becomes one message of the burst (sequence = a request token, rx_tsc = parse done) and
//   stops the parsing of its connection: pipelined requests behind it wait, unconsumed, so answers
//   leave in order. The runtime runs the pipeline, pushes, and reports the verdicts (on_outcomes(),
//   correlated by Message::sequence); release() writes every answer of the burst, queues its send
//   (submitted by the next poll()'s first io_uring_enter) and queues those connections for
//   redelivery of what waited behind the request. A connection closed meanwhile is recognised by its
//   generation and its answer is dropped.
//   One request per connection and burst; a burst is full at `burst` requests. When it fills while
//   the transport reads completions, the transport reads no further one in this poll
//   (UringServer::stop_batch(): the connections behind wait in the kernel, unread, so that nothing
//   more runs inside the parsed requests' in-engine time); connections queued for redelivery that
//   found it full wait for the next poll.
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "http/http_parser.hpp"
#include "hypergate/adapter/registry.hpp"
#include "hypergate/core/clock.hpp"
#include "uring/uring_server.hpp"

namespace hypergate::http {
namespace {

constexpr std::size_t kMaxResponse = 256;  // write room checked before parsing a request
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kNotFoundBody = "Not Found";

// Verdict of one request, ordered so that the worst of several emitted messages wins.
enum class Answer : std::uint8_t { Unanswered, Dropped, Processed, Rejected, Collision };

constexpr Answer answer_of(adapter::Outcome o) noexcept {
  switch (o) {
    case adapter::Outcome::Processed: return Answer::Processed;
    case adapter::Outcome::Collision: return Answer::Collision;
    case adapter::Outcome::Rejected: return Answer::Rejected;
    case adapter::Outcome::Dropped: return Answer::Dropped;
  }
  return Answer::Unanswered;
}

struct Options {
  uring::ServerOptions server;
  Limits limits;
  std::size_t burst = Burst<>::capacity();  // requests injected per poll()
  std::string name;
};

/// Appends text to a fixed buffer; the caller checked the room (responses are bounded by kMaxResponse).
class Out {
 public:
  explicit Out(char* buf, std::size_t cap) noexcept : buf_(buf), cap_(cap) {}
  Out& operator<<(std::string_view s) noexcept {
    const std::size_t n = std::min(s.size(), cap_ - len_);
    std::memcpy(buf_ + len_, s.data(), n);
    len_ += n;
    return *this;
  }
  Out& operator<<(std::uint64_t v) noexcept {
    const auto r = std::to_chars(buf_ + len_, buf_ + cap_, v);
    if (r.ec == std::errc()) len_ = static_cast<std::size_t>(r.ptr - buf_);
    return *this;
  }
  [[nodiscard]] std::string_view view() const noexcept { return {buf_, len_}; }

 private:
  char* buf_;
  std::size_t cap_;
  std::size_t len_ = 0;
};

constexpr std::string_view connection_header(bool keep_alive, std::uint8_t version_minor) noexcept {
  if (!keep_alive) return "Connection: close\r\n";
  return version_minor == 0 ? "Connection: keep-alive\r\n" : "";
}

class FireSource final : public adapter::Source, private uring::ConnectionHandler {
 public:
  explicit FireSource(Options o)
      : opt_(std::move(o)),
        parsers_(opt_.server.max_connections, RequestParser(opt_.limits)),
        conns_(opt_.server.max_connections),
        slot_bytes_(opt_.limits.max_body_bytes + opt_.limits.max_header_bytes),
        // Not value-initialised: pages become resident only as bodies are copied in.
        arena_(new char[Burst<>::capacity() * slot_bytes_]),
        server_(opt_.server, *this) {
    queue_.reserve(opt_.server.max_connections);
    scratch_.reserve(opt_.server.max_connections);
  }
  ~FireSource() override { stop(); }

  [[nodiscard]] std::string_view type() const noexcept override { return "http.fire"; }
  [[nodiscard]] bool wants_outcomes() const noexcept override { return true; }

  [[nodiscard]] Result<void> start() override {
    auto r = server_.start();
    started_ = r.ok();
    return r;
  }

  void stop() noexcept override {
    if (stopped_ || !started_) return;
    stopped_ = true;
    server_.stop();
    std::fprintf(stderr,
                 "http.fire '%s': requests %llu processed %llu collisions %llu rejected %llu not_found %llu "
                 "errors %llu\n",
                 opt_.name.c_str(), ull(requests_), ull(processed_), ull(collisions_), ull(rejected_),
                 ull(not_found_), ull(errors_));
  }

  std::size_t poll(Burst<>& out) noexcept override {
    burst_ = &out;
    base_seq_ = next_seq_;
    count_ = 0;
    arena_used_ = 0;
    redeliver_queued();
    server_.run_once(0);
    burst_ = nullptr;
    if (count_ != 0) polls_.add();
    return count_;
  }

  void on_outcomes(std::span<const Message> msgs, std::span<const adapter::PushOutcome> outs) noexcept override {
    const std::size_t n = std::min(msgs.size(), outs.size());
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t k = msgs[i].sequence - base_seq_;  // wraps to huge for foreign messages
      if (k >= count_) continue;
      Pending& p = pending_[k];
      p.answer = std::max(p.answer, answer_of(outs[i].outcome));
      p.accepted_tsc = std::max(p.accepted_tsc, outs[i].tsc);
    }
  }

  void release(Burst<>& done) noexcept override {
    (void)done;
    for (std::size_t i = 0; i < count_; ++i) answer(pending_[i]);
    count_ = 0;
    arena_used_ = 0;
  }

  [[nodiscard]] int wake_fd() noexcept override { return server_.ring_fd(); }

  [[nodiscard]] adapter::SourceStats stats() const noexcept override {
    adapter::SourceStats s;
    const uring::ServerStats ss = server_.stats();
    s.messages = injected_.get();
    s.bytes = bytes_.get();
    s.polls = polls_.get();
    s.rejects = not_found_.get() + errors_.get();
    s.errors = ss.errors;
    return s;
  }

 private:
  struct Conn {
    uring::Connection* c = nullptr;  // null while the slot is free
    std::uint32_t generation = 0;    // bumped on close: tells a stale answer from a live one
    bool waiting = false;            // a request of this connection is in the current burst
    bool queued = false;             // in queue_ (kept across close/open so a slot is never queued twice)
    bool continue_sent = false;
  };

  struct Pending {
    std::uint64_t rx_tsc = 0;
    std::uint64_t accepted_tsc = 0;
    std::uint32_t conn = 0;
    std::uint32_t generation = 0;
    Answer answer = Answer::Unanswered;
    std::uint8_t version_minor = 1;
    bool keep_alive = true;
  };

  static unsigned long long ull(const Counter& v) noexcept { return static_cast<unsigned long long>(v.get()); }

  // --- uring::ConnectionHandler ---

  void on_open(uring::Connection& c) noexcept override {
    Conn& k = conns_[c.index()];
    k.c = &c;
    k.waiting = false;
    k.continue_sent = false;
    parsers_[c.index()].reset();
  }

  void on_close(uring::Connection& c) noexcept override {
    Conn& k = conns_[c.index()];
    k.c = nullptr;
    ++k.generation;
    k.waiting = false;
  }

  std::size_t on_data(uring::Connection& c, std::span<char> data) noexcept override {
    const std::uint32_t idx = c.index();
    Conn& k = conns_[idx];
    if (k.waiting) return 0;  // answers leave in order: the rest waits for this verdict
    RequestParser& parser = parsers_[idx];
    std::size_t used = 0;
    while (used < data.size() && !c.closing()) {
      if (c.write_room() < kMaxResponse) break;  // a send completion offers the bytes again
      if (burst_ == nullptr || burst_->size() >= opt_.burst) {  // no room in this burst: next poll()
        queue(idx);
        break;
      }
      const ParseResult r = parser.parse(data.subspan(used));
      if (r.status == ParseStatus::NeedMore) {
        if (parser.headers_complete() && parser.expect_continue() && !k.continue_sent) {
          c.write(kContinue);
          k.continue_sent = true;
        }
        break;
      }
      if (r.status == ParseStatus::Error) {
        write_error(c, r.http_status);
        c.close_after_write();
        requests_.add();
        errors_.add();
        used = data.size();
        break;
      }
      const Request& q = parser.request();
      requests_.add();
      k.continue_sent = false;
      used += r.consumed;
      if (q.method == Method::Post && is_fire(q.target)) {
        inject(idx, q);
        break;  // one request per connection in flight
      }
      write_not_found(c, q);
      not_found_.add();
    }
    return c.closing() ? data.size() : used;
  }

  // --- requests ---

  static bool is_fire(std::string_view target) noexcept {
    return target == "/fire" || target.starts_with("/fire?");
  }

  void inject(std::uint32_t idx, const Request& q) noexcept {
    char* dst = arena_.get() + arena_used_;
    const std::size_t body = q.body.size();  // <= max_body_bytes: the parser answered 413 otherwise
    std::memcpy(dst, q.body.data(), body);
    Message& m = burst_->emplace_back();
    m.set_payload(dst, body);
    std::size_t used = body;
    const std::optional<std::string_view> key = q.find("X-Hyper-Key");
    if (key && !key->empty()) {
      // A header value is shorter than max_header_bytes, so it fits behind the body in this slot.
      const std::size_t n = std::min<std::size_t>(key->size(), opt_.limits.max_header_bytes);
      std::memcpy(dst + body, key->data(), n);
      m.set_key(std::string_view(dst + body, n));
      used += n;
    } else {
      m.set_key(std::string_view(dst, body));
    }
    arena_used_ += std::min(used, slot_bytes_);
    m.sequence = next_seq_++;
    m.rx_tsc = TscClock::ticks();  // parse done: the in-engine time starts here
    Pending& p = pending_[count_++];
    p.rx_tsc = m.rx_tsc;
    p.accepted_tsc = 0;
    p.conn = idx;
    p.generation = conns_[idx].generation;
    p.answer = Answer::Unanswered;
    p.version_minor = q.version_minor;
    p.keep_alive = q.keep_alive;
    conns_[idx].waiting = true;
    injected_.add();
    bytes_.add(body);
    // A full burst: the transport reads no further completion in this poll. The requests behind it
    // wait in the kernel, not parsed, instead of being read only to be queued (which kept the ones
    // already parsed waiting: their in-engine time runs from their parse).
    // (Only while the transport reads completions: see UringServer::stop_batch().)
    if (burst_->size() >= opt_.burst) server_.stop_batch();
  }

  void answer(const Pending& p) noexcept {
    Conn& k = conns_[p.conn];
    if (k.c == nullptr || k.generation != p.generation) return;  // closed meanwhile
    k.waiting = false;
    uring::Connection& c = *k.c;
    std::string_view status_line = "HTTP/1.1 200 OK\r\n";
    std::string_view status = "PROCESSED";
    std::string_view reason;
    switch (p.answer) {
      case Answer::Processed: processed_.add(); break;
      case Answer::Collision:
        status = "COLLISION";
        collisions_.add();
        break;
      case Answer::Rejected:
        status_line = "HTTP/1.1 413 Content Too Large\r\n";
        status = "REJECTED";
        reason = "oversize";
        rejected_.add();
        break;
      case Answer::Dropped:
        status_line = "HTTP/1.1 422 Unprocessable Content\r\n";
        status = "DROPPED";
        reason = "routed nowhere";
        rejected_.add();
        break;
      case Answer::Unanswered:
        status_line = "HTTP/1.1 422 Unprocessable Content\r\n";
        status = "REJECTED";
        reason = "pipeline";
        rejected_.add();
        break;
    }
    const bool timed = p.answer == Answer::Processed || p.answer == Answer::Collision;
    const std::uint64_t ns =
        timed && p.accepted_tsc > p.rx_tsc ? TscClock::instance().elapsed_ns(p.rx_tsc, p.accepted_tsc) : 0;
    char body_buf[96];
    Out body(body_buf, sizeof body_buf);
    body << "V8-32 Engine: " << status;
    if (timed) {
      body << " | Time: " << ns << " ns";
    } else {
      body << " | Reason: " << reason;
    }
    char buf[kMaxResponse];
    Out out(buf, sizeof buf);
    out << status_line << "Content-Type: text/plain\r\nX-Hyper-Status: " << status << "\r\n";
    if (timed) out << "X-Latency-Ns: " << ns << "\r\n";
    out << "Content-Length: " << static_cast<std::uint64_t>(body.view().size()) << "\r\n"
        << connection_header(p.keep_alive, p.version_minor) << "\r\n"
        << body.view();
    c.write(out.view());  // room was reserved when the request was parsed
    if (!p.keep_alive) c.close_after_write();
    server_.flush_connection(c);  // its send goes out with the next poll()'s first io_uring_enter
    queue(p.conn);  // the next poll() parses what waited behind it
  }

  void write_not_found(uring::Connection& c, const Request& q) noexcept {
    char buf[kMaxResponse];
    Out out(buf, sizeof buf);
    out << "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: "
        << static_cast<std::uint64_t>(kNotFoundBody.size()) << "\r\n"
        << connection_header(q.keep_alive, q.version_minor) << "\r\n";
    if (q.method != Method::Head) out << kNotFoundBody;
    c.write(out.view());
    if (!q.keep_alive) c.close_after_write();
  }

  static void write_error(uring::Connection& c, std::uint16_t status) noexcept {
    const std::string_view reason = reason_phrase(status);
    char buf[kMaxResponse];
    Out out(buf, sizeof buf);
    out << "HTTP/1.1 " << static_cast<std::uint64_t>(status) << " " << reason
        << "\r\nContent-Type: text/plain\r\nContent-Length: " << static_cast<std::uint64_t>(reason.size())
        << "\r\nConnection: close\r\n\r\n"
        << reason;
    c.write(out.view());
  }

  // --- redelivery ---

  void queue(std::uint32_t idx) noexcept {
    Conn& k = conns_[idx];
    if (k.queued) return;
    k.queued = true;
    queue_.push_back(idx);  // never reallocates: each slot is queued at most once (reserved)
  }

  void redeliver_queued() noexcept {
    if (queue_.empty()) return;
    scratch_.swap(queue_);  // on_data() may queue again (burst full): into the emptied queue_
    for (const std::uint32_t idx : scratch_) {
      Conn& k = conns_[idx];
      k.queued = false;
      if (k.c == nullptr) continue;
      if (burst_->size() >= opt_.burst) {
        queue(idx);  // its answer is on its way (release()); what waits behind it is parsed later
        continue;
      }
      server_.redeliver(*k.c);  // offers the waiting bytes and queues the send of the answer
    }
    scratch_.clear();
  }

  Options opt_;
  std::vector<RequestParser> parsers_;
  std::vector<Conn> conns_;
  std::vector<std::uint32_t> queue_;
  std::vector<std::uint32_t> scratch_;
  std::size_t slot_bytes_;
  std::unique_ptr<char[]> arena_;  // Burst<>::capacity() slots of slot_bytes_
  std::size_t arena_used_ = 0;
  std::array<Pending, Burst<>::capacity()> pending_{};
  std::size_t count_ = 0;
  Burst<>* burst_ = nullptr;  // set during poll() only
  std::uint64_t base_seq_ = 0;
  std::uint64_t next_seq_ = 1;
  bool started_ = false;
  bool stopped_ = false;
  Counter requests_, processed_, collisions_, rejected_, not_found_, errors_, injected_, bytes_, polls_;
  uring::UringServer server_;  // last: destroyed first, while the handler state it calls into lives
};

Result<std::unique_ptr<adapter::Source>> make_fire(config::Section& section, const adapter::Context& ctx) {
  Options o;
  o.name = ctx.name;
  if (auto ep = section.endpoint("listen", "0.0.0.0:8080")) {
    o.server.host = ep->host.empty() ? "0.0.0.0" : ep->host;
    o.server.port = ep->port;
  }
  o.server.max_connections = static_cast<std::uint32_t>(section.integer("max_connections", 10'000, 1, 1'000'000));
  o.server.idle_timeout_ns = section.duration_ns("idle_timeout", 60'000'000'000ull);
  o.server.header_timeout_ns = section.duration_ns("header_timeout", 10'000'000'000ull);
  o.limits.max_header_bytes = static_cast<std::uint32_t>(section.integer("max_header_bytes", 16 * 1024, 256, 1 << 20));
  o.limits.max_body_bytes = static_cast<std::uint64_t>(section.integer("max_body_bytes", 64 * 1024, 0, 16 << 20));
  o.burst = static_cast<std::size_t>(section.integer("burst", static_cast<std::int64_t>(Burst<>::capacity()), 1,
                                                     static_cast<std::int64_t>(Burst<>::capacity())));
  // A request (line, headers, body, chunk framing, trailers) must fit a connection's input buffer.
  const std::uint64_t need = std::uint64_t{o.limits.max_target_bytes} + 2ull * o.limits.max_header_bytes +
                             2ull * o.limits.max_body_bytes + 8192;
  o.server.input_bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(need, 1u << 30));
  o.server.output_bytes = 16 * 1024;
  return std::unique_ptr<adapter::Source>(std::make_unique<FireSource>(std::move(o)));
}

// Static registration: this library is linked whole into `hypergate` and the tests.
const bool registered = [] {
  return adapter::Registry::global()
      .add_source("http.fire",
                  "HTTP/1.1 POST /fire: the body is injected, the answer is the valve verdict (PROCESSED | "
                  "COLLISION) and the in-engine ns (listen, max_connections, idle_timeout, header_timeout, "
                  "max_header_bytes, max_body_bytes, burst)",
                  make_fire)
      .ok();
}();

}  // namespace
}  // namespace hypergate::http
