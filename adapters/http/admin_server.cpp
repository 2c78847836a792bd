// AdminServer and the pure formatters behind /metrics, /stats and /health (see admin_server.hpp).
#include "http/admin_server.hpp"

#include <fmt/format.h>

#include <future>
#include <span>
#include <utility>
#include <vector>

#include "http/http_parser.hpp"
#include "uring/uring_server.hpp"

namespace hypergate::http {
namespace {

// ---- Prometheus text exposition 0.0.4 ------------------------------------------------------------

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

/// Writes one metric family: the HELP and TYPE lines once, then its samples.
class Family {
 public:
  Family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
      : out_(out), name_(name) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  /// `labels` is the inside of the braces, already escaped (empty: no braces).
  void sample(std::string_view labels, std::uint64_t value, std::string_view suffix = {}) {
    if (labels.empty()) out_ += fmt::format("{}{} {}\n", name_, suffix, value);
    else out_ += fmt::format("{}{}{{{}}} {}\n", name_, suffix, labels, value);
  }

 private:
  std::string& out_;
  std::string_view name_;
};

std::string label(std::string_view key, std::string_view value) {
  return fmt::format("{}=\"{}\"", key, escape_label(value));
}

template <class Rows, class Get>
void counter(std::string& out, std::string_view name, std::string_view help, const Rows& rows, std::string_view key,
             Get get) {
  Family f(out, name, "counter", help);
  for (const auto& r : rows) f.sample(label(key, r.first), get(*r.second));
}

void summary(std::string& out, std::string_view name, std::string_view help,
             const std::vector<std::pair<std::string, const runtime::LatencySummary*>>& rows) {
  Family f(out, name, "summary", help);
  for (const auto& [worker, s] : rows) {
    const std::string w = label("worker", worker);
    f.sample(w + ",quantile=\"0.5\"", s->p50_ns);
    f.sample(w + ",quantile=\"0.99\"", s->p99_ns);
    f.sample(w + ",quantile=\"0.999\"", s->p999_ns);
    f.sample(w, s->count, "_count");
  }
}

/// Prometheus seconds for a nanosecond bound, in the shortest exact form ("1e-07", "0.0025", "10").
std::string seconds_label(std::uint64_t ns) { return fmt::format("{}", static_cast<double>(ns) / 1e9); }

// Every stage as one histogram family with the fixed bucket layout metrics::kPrometheusBucketsNs (the
// same for every stage and instance, so buckets can be summed across gateways). _sum is the count
// times HdrHistogram's mean (bucket midpoints: within the histogram's precision of the exact sum).
void stage_histograms(std::string& out, std::span<const runtime::StageReport> stages) {
  Family f(out, "hypergate_stage_latency_seconds", "histogram",
           "Per-stage latency in seconds, merged over the workers (stages: rx decode pipeline store push "
           "process valve send wire).");
  for (const runtime::StageReport& s : stages) {
    const std::string stage = label("stage", s.name);
    for (std::size_t b = 0; b < s.le_counts.size(); ++b)
      f.sample(fmt::format("{},le=\"{}\"", stage, seconds_label(metrics::kPrometheusBucketsNs[b])), s.le_counts[b],
               "_bucket");
    f.sample(stage + ",le=\"+Inf\"", s.count, "_bucket");
    out += fmt::format("hypergate_stage_latency_seconds_sum{{{}}} {}\n", stage,
                       s.mean_ns * static_cast<double>(s.count) / 1e9);
    f.sample(stage, s.count, "_count");
  }
}

// ---- JSON --------------------------------------------------------------------------------------

std::string json_string(std::string_view v) {
  std::string out = "\"";
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F) out += fmt::format("\\u{:04x}", c);
        else out += ch;
    }
  }
  out += '"';
  return out;
}

std::string json_latency(const runtime::LatencySummary& s) {
  return fmt::format(R"({{"count":{},"p50_ns":{},"p99_ns":{},"p999_ns":{},"max_ns":{}}})", s.count, s.p50_ns,
                     s.p99_ns, s.p999_ns, s.max_ns);
}

std::string json_lane_counters(const valve::LaneCounters& c) {
  return fmt::format(
      R"({{"in":{},"out":{},"dropped":{},"conflated":{},"in_flight":{},"collisions":{},"oversize":{},)"
      R"("disconnected_drops":{},"max_depth":{},"disconnected":{}}})",
      c.in, c.out, c.dropped, c.conflated, c.in_flight, c.collisions, c.oversize, c.disconnected_drops, c.max_depth,
      c.disconnected ? "true" : "false");
}

// Transport-specific figures (AdapterCounters) as a JSON object: "details":{"name":value,...}.
std::string json_details(const adapter::AdapterCounters& d) {
  std::string o = R"("details":{)";
  bool first = true;
  for (const auto& e : d) {
    o += fmt::format("{}{}:{}", first ? "" : ",", json_string(e.name_view()), e.value);
    first = false;
  }
  return o + "}";
}

std::string json_sink_stats(const adapter::SinkStats& s) {
  return fmt::format(R"("messages":{},"bytes":{},"drops":{},"errors":{},{})", s.messages, s.bytes, s.drops, s.errors,
                     json_details(s.details));
}

// ---- HTTP ---------------------------------------------------------------------------------------

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

std::string response(int status, std::string_view content_type, std::string_view body, bool head, bool keep_alive,
                     std::string_view extra_headers = {}) {
  std::string r = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}{}\r\n", status,
                              reason_phrase(status), content_type, body.size(), extra_headers,
                              keep_alive ? "" : "Connection: close\r\n");
  if (!head) r += body;
  return r;
}

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";

/// Serves every admin connection: one parser per connection slot.
class AdminHandler final : public uring::ConnectionHandler {
 public:
  AdminHandler(const AdminOptions& opt, const AdminServer::ReportFn& report)
      : parsers_(opt.max_connections, RequestParser(admin_limits())), output_bytes_(opt.output_bytes),
        report_(report) {}

  void on_open(uring::Connection& c) noexcept override { parsers_[c.index()].reset(); }

  std::size_t on_data(uring::Connection& c, std::span<char> data) noexcept override {
    RequestParser& parser = parsers_[c.index()];
    std::size_t used = 0;
    while (used < data.size() && !c.closing()) {
      // One response at a time: wait until the previous one left the output buffer.
      if (c.write_room() < output_bytes_) break;
      const ParseResult r = parser.parse(data.subspan(used));
      if (r.status == ParseStatus::NeedMore) break;
      if (r.status == ParseStatus::Error) {
        c.write(response(r.http_status, kTextPlain, fmt::format("{}\n", reason_phrase(r.http_status)), false, false));
        c.close_after_write();
        return data.size();
      }
      const Request& q = parser.request();
      std::string reply;
      try {
        reply = admin_response(q.method_text, q.target, q.keep_alive, report_);
      } catch (...) {  // allocation failure or a throwing callback: answer, never crash the gateway
        reply = response(500, kTextPlain, "internal error\n", q.method == Method::Head, false);
      }
      if (!c.write(reply)) {
        const std::string too_big = response(500, kTextPlain, "response too large\n", false, false);
        c.write(too_big);
        c.close_after_write();
        return data.size();
      }
      if (!q.keep_alive) c.close_after_write();
      used += r.consumed;
    }
    return used;
  }

 private:
  static Limits admin_limits() noexcept {
    Limits l;
    l.max_body_bytes = 64 * 1024;  // the admin endpoints take no body; a small one is read and ignored
    return l;
  }
  std::vector<RequestParser> parsers_;
  std::size_t output_bytes_;
  const AdminServer::ReportFn& report_;
};

}  // namespace

std::string format_prometheus(const runtime::Report& report) {
  std::string out;
  out.reserve(16 * 1024);

  std::vector<std::pair<std::string, const runtime::SourceReport*>> sources;
  for (const auto& s : report.sources) sources.emplace_back(s.name, &s);
  using S = runtime::SourceReport;
  counter(out, "hypergate_source_messages_total", "Messages handed by the source to its pipeline.", sources, "source",
          [](const S& s) { return s.stats.messages; });
  counter(out, "hypergate_source_bytes_total", "Payload bytes handed by the source to its pipeline.", sources,
          "source", [](const S& s) { return s.stats.bytes; });
  counter(out, "hypergate_source_rejects_total", "Malformed frames refused by the source itself.", sources, "source",
          [](const S& s) { return s.stats.rejects; });
  counter(out, "hypergate_source_drops_total", "Messages lost before the source saw them.", sources, "source",
          [](const S& s) { return s.stats.drops; });
  counter(out, "hypergate_source_errors_total", "I/O errors of the source.", sources, "source",
          [](const S& s) { return s.stats.errors; });
  counter(out, "hypergate_pipeline_in_total", "Messages received by the source's pipeline.", sources, "source",
          [](const S& s) { return s.pipeline_counters.in; });
  counter(out, "hypergate_pipeline_emitted_total", "Messages handed downstream by the pipeline.", sources, "source",
          [](const S& s) { return s.pipeline_counters.emitted; });
  counter(out, "hypergate_pipeline_rejected_total", "Messages rejected by the pipeline (all reasons).", sources,
          "source", [](const S& s) { return s.pipeline_counters.rejected; });
  counter(out, "hypergate_pipeline_dropped_total", "Messages the pipeline routed nowhere.", sources, "source",
          [](const S& s) { return s.pipeline_counters.dropped; });
  {
    Family f(out, "hypergate_pipeline_rejects_by_reason_total", "counter", "Messages rejected by the pipeline, by reason.");
    for (const auto& s : report.sources) {
      for (const auto& [reason, n] : s.pipeline_counters.rejects_by_reason) {
        f.sample(label("source", s.name) + "," + label("reason", reason), n);
      }
    }
  }

  {
    Family f(out, "hypergate_source_detail", "gauge", "Transport-specific figures of the source (link state, NIC counters).");
    for (const auto& src : report.sources) {
      for (const auto& e : src.stats.details) f.sample(label("source", src.name) + "," + label("counter", e.name_view()), e.value);
    }
  }

  std::vector<std::pair<std::string, const runtime::SinkReport*>> sinks;
  for (const auto& k : report.sinks) sinks.emplace_back(k.name, &k);
  using K = runtime::SinkReport;
  counter(out, "hypergate_sink_messages_total", "Messages accepted by the sink (all instances).", sinks, "sink",
          [](const K& k) { return k.stats.messages; });
  counter(out, "hypergate_sink_bytes_total", "Payload bytes accepted by the sink.", sinks, "sink",
          [](const K& k) { return k.stats.bytes; });
  counter(out, "hypergate_sink_drops_total", "Messages the sink itself dropped.", sinks, "sink",
          [](const K& k) { return k.stats.drops; });
  counter(out, "hypergate_sink_errors_total", "I/O errors of the sink.", sinks, "sink",
          [](const K& k) { return k.stats.errors; });
  counter(out, "hypergate_sink_undeliverable_total", "Messages for this sink that met a failed instance.", sinks,
          "sink", [](const K& k) { return k.undeliverable; });
  {
    Family f(out, "hypergate_sink_detail", "gauge", "Transport-specific figures of each sink instance (link state, NIC counters).");
    for (const auto& k : report.sinks) {
      for (const auto& in : k.instances) {
        for (const auto& e : in.stats.details) {
          f.sample(label("sink", k.name) + "," + label("worker", std::to_string(in.worker)) + "," +
                       label("counter", e.name_view()),
                   e.value);
        }
      }
    }
  }

  std::vector<std::pair<std::string, const runtime::LaneReport*>> lanes;
  for (const auto& l : report.lanes) lanes.emplace_back(std::to_string(l.lane), &l);
  using L = runtime::LaneReport;
  counter(out, "hypergate_lane_in_total", "Messages pushed into the valve lane.", lanes, "lane",
          [](const L& l) { return l.counters.in; });
  counter(out, "hypergate_lane_out_total", "Messages drained from the valve lane.", lanes, "lane",
          [](const L& l) { return l.counters.out; });
  counter(out, "hypergate_lane_dropped_total", "Messages the valve lane dropped (collision, oversize, disconnect).",
          lanes, "lane", [](const L& l) { return l.counters.dropped; });
  counter(out, "hypergate_lane_conflated_total", "Messages replaced by a newer one of the same key.", lanes, "lane",
          [](const L& l) { return l.counters.conflated; });
  {
    Family f(out, "hypergate_lane_in_flight", "gauge", "Messages in the valve lane now (in - out - dropped - conflated).");
    for (const auto& [name, l] : lanes) f.sample(label("lane", name), l->counters.in_flight);
  }

  std::vector<std::pair<std::string, const runtime::WorkerReport*>> workers;
  for (const auto& w : report.workers) workers.emplace_back(std::to_string(w.worker), &w);
  using W = runtime::WorkerReport;
  counter(out, "hypergate_worker_polled_total", "Messages polled from the worker's sources.", workers, "worker",
          [](const W& w) { return w.polled; });
  counter(out, "hypergate_worker_pushed_total", "Messages the worker offered to the valve engine.", workers, "worker",
          [](const W& w) { return w.pushed; });
  counter(out, "hypergate_worker_drained_total", "Messages that left the worker's lanes.", workers, "worker",
          [](const W& w) { return w.drained; });
  counter(out, "hypergate_worker_collisions_total", "Pushes that met a full valve lane.", workers, "worker",
          [](const W& w) { return w.collisions; });
  counter(out, "hypergate_worker_sleeps_total", "Idle sleeps of the worker (backoff).", workers, "worker",
          [](const W& w) { return w.sleeps; });
  counter(out, "hypergate_worker_wakeups_total", "Sleeps ended by an adapter's wake descriptor (input ready).",
          workers, "worker", [](const W& w) { return w.wakeups; });
  counter(out, "hypergate_worker_wake_errors_total",
          "Wake descriptors left out of a sleep because they were in an error state.", workers, "worker",
          [](const W& w) { return w.wake_errors; });

  std::vector<std::pair<std::string, const runtime::LatencySummary*>> poll, drain;
  for (const auto& [name, w] : workers) {
    poll.emplace_back(name, &w->poll_to_pipeline);
    drain.emplace_back(name, &w->push_to_drain);
  }
  summary(out, "hypergate_poll_to_pipeline_ns", "Poll returned to pipeline done, per burst, in nanoseconds.", poll);
  summary(out, "hypergate_push_to_drain_ns", "Pushed into a valve lane to taken by every sink, in nanoseconds.",
          drain);
  stage_histograms(out, report.stages);
  return out;
}

std::string format_stats_json(const runtime::Report& report) {
  std::string o;
  o.reserve(16 * 1024);
  o += fmt::format(R"({{"started":{},"finished":{},"stop_requested":{},"deadline_hit":{},"elapsed_ns":{},)",
                   report.started, report.finished, report.stop_requested, report.deadline_hit, report.elapsed_ns);
  o += fmt::format(R"("unknown_sink_messages":{},"sources":[)", report.unknown_sink_messages);
  for (std::size_t i = 0; i < report.sources.size(); ++i) {
    const auto& s = report.sources[i];
    if (i) o += ',';
    o += fmt::format(R"({{"name":{},"type":{},"pipeline":{},"worker":{},"state":{},"error":{},)", json_string(s.name),
                     json_string(s.type), json_string(s.pipeline), s.worker, json_string(runtime::to_string(s.state)),
                     json_string(s.error));
    o += fmt::format(R"("messages":{},"bytes":{},"polls":{},"rejects":{},"drops":{},"errors":{},{},)", s.stats.messages,
                     s.stats.bytes, s.stats.polls, s.stats.rejects, s.stats.drops, s.stats.errors,
                     json_details(s.stats.details));
    const auto& p = s.pipeline_counters;
    o += fmt::format(R"("pipeline_counters":{{"in":{},"emitted":{},"rejected":{},"dropped":{},"gaps":{},)"
                     R"("missing":{},"rejects_by_reason":{{)",
                     p.in, p.emitted, p.rejected, p.dropped, p.gaps, p.missing);
    for (std::size_t r = 0; r < p.rejects_by_reason.size(); ++r) {
      if (r) o += ',';
      o += fmt::format("{}:{}", json_string(p.rejects_by_reason[r].first), p.rejects_by_reason[r].second);
    }
    o += "}}}";
  }
  o += R"(],"sinks":[)";
  for (std::size_t i = 0; i < report.sinks.size(); ++i) {
    const auto& k = report.sinks[i];
    if (i) o += ',';
    o += fmt::format(R"({{"name":{},"type":{},{},"undeliverable":{},"instances":[)", json_string(k.name),
                     json_string(k.type), json_sink_stats(k.stats), k.undeliverable);
    for (std::size_t j = 0; j < k.instances.size(); ++j) {
      const auto& in = k.instances[j];
      if (j) o += ',';
      o += fmt::format(R"({{"worker":{},"state":{},"error":{},{}}})", in.worker, json_string(runtime::to_string(in.state)),
                       json_string(in.error), json_sink_stats(in.stats));
    }
    o += "]}";
  }
  o += R"(],"lanes":[)";
  for (std::size_t i = 0; i < report.lanes.size(); ++i) {
    const auto& l = report.lanes[i];
    if (i) o += ',';
    o += fmt::format(R"({{"lane":{},"consumer":{},"counters":{}}})", l.lane, l.consumer,
                     json_lane_counters(l.counters));
  }
  o += R"(],"workers":[)";
  for (std::size_t i = 0; i < report.workers.size(); ++i) {
    const auto& w = report.workers[i];
    if (i) o += ',';
    o += fmt::format(R"({{"worker":{},"core":{},"loops":{},"busy_loops":{},"sleeps":{},"wakeups":{},)"
                     R"("wake_errors":{},"polled":{},"pushed":{},)",
                     w.worker, w.core, w.loops, w.busy_loops, w.sleeps, w.wakeups, w.wake_errors, w.polled,
                     w.pushed);
    o += fmt::format(R"("collisions":{},"rejected":{},"route_drops":{},"drained":{},"poll_to_pipeline":{},)"
                     R"("push_to_drain":{}}})",
                     w.collisions, w.rejected, w.route_drops, w.drained, json_latency(w.poll_to_pipeline),
                     json_latency(w.push_to_drain));
  }
  o += R"(],"stages":{)";
  for (std::size_t i = 0; i < report.stages.size(); ++i) {
    const auto& st = report.stages[i];
    if (i) o += ',';
    o += fmt::format(R"({}:{{"count":{},"min_ns":{},"mean_ns":{:.1f},"p50_ns":{},"p90_ns":{},"p99_ns":{},)"
                     R"("p999_ns":{},"p9999_ns":{},"max_ns":{}}})",
                     json_string(st.name), st.count, st.min_ns, st.mean_ns, st.p50_ns, st.p90_ns, st.p99_ns,
                     st.p999_ns, st.p9999_ns, st.max_ns);
  }
  o += fmt::format(R"(}},"valve_totals":{}}})", json_lane_counters(report.valve_totals));
  o += '\n';
  return o;
}

HealthResult health(const runtime::Report& report) {
  HealthResult h;
  for (const auto& s : report.sources) {
    if (s.state == runtime::AdapterState::Failed) h.body += fmt::format("source {} failed: {}\n", s.name, s.error);
  }
  for (const auto& k : report.sinks) {
    for (const auto& i : k.instances) {
      if (i.state == runtime::AdapterState::Failed) {
        h.body += fmt::format("sink {} (worker {}) failed: {}\n", k.name, i.worker, i.error);
      }
    }
  }
  h.healthy = h.body.empty();
  if (h.healthy) h.body = "ok\n";
  return h;
}

std::string admin_response(std::string_view method, std::string_view target, bool keep_alive,
                           const std::function<runtime::Report()>& report) {
  std::string_view path = target;
  if (const auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  const bool known = path == "/metrics" || path == "/stats" || path == "/health";
  if (!known) return response(404, kTextPlain, "not found\n", method == "HEAD", keep_alive);
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    return response(405, kTextPlain, "method not allowed\n", false, keep_alive, "Allow: GET, HEAD\r\n");
  }
  const runtime::Report r = report();
  if (path == "/metrics") {
    return response(200, "text/plain; version=0.0.4; charset=utf-8", format_prometheus(r), head, keep_alive);
  }
  if (path == "/stats") return response(200, "application/json", format_stats_json(r), head, keep_alive);
  const HealthResult h = health(r);
  return response(h.healthy ? 200 : 503, kTextPlain, h.body, head, keep_alive);
}

// ---- AdminServer ----------------------------------------------------------------------------------

struct AdminServer::Impl {
  Impl(const AdminOptions& opt, const ReportFn& report) : handler(opt, report), server(server_options(opt), handler) {}
  static uring::ServerOptions server_options(const AdminOptions& opt) {
    uring::ServerOptions s;
    s.host = opt.host;
    s.port = opt.port;
    s.max_connections = opt.max_connections;
    s.ring_entries = 64;
    s.buffer_count = 64;
    s.input_bytes = 64 * 1024;
    s.output_bytes = opt.output_bytes;
    s.backlog = 64;
    s.reuse_port = false;  // one admin listener: a port another gateway holds is an error, not a share
    return s;
  }
  AdminHandler handler;
  uring::UringServer server;
};

AdminServer::AdminServer(AdminOptions options, ReportFn report)
    : opt_(std::move(options)), report_(std::move(report)) {}

AdminServer::~AdminServer() { stop(); }

Result<void> AdminServer::start() {
  impl_ = std::make_unique<Impl>(opt_, report_);
  std::promise<Result<void>> ready;
  auto started = ready.get_future();
  // relaxed: written before the thread starts (thread creation orders it).
  stop_flag_.store(false, std::memory_order_relaxed);
  thread_ = std::thread([this, &ready] {
    auto r = impl_->server.start();
    const bool ok = r.ok();
    if (ok) port_ = impl_->server.port();  // published to start() by the promise below
    ready.set_value(std::move(r));
    if (ok) impl_->server.run(stop_flag_);
    impl_->server.stop();
  });
  Result<void> r = started.get();
  if (!r) {
    thread_.join();
    impl_.reset();
    // The transport says "bind HOST:PORT: <strerror>"; the operator wants the admin listener named.
    const std::string& m = r.error().message;
    const auto colon = m.rfind(": ");
    const std::string reason = colon == std::string::npos ? m : m.substr(colon + 2);
    return Error{r.error().code, fmt::format("admin listener {}:{}: {}", opt_.host, opt_.port, reason)};
  }
  return {};
}

void AdminServer::stop() noexcept {
  // release: pairs with the acquire-load of the flag in UringServer::run() on the server thread.
  stop_flag_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  impl_.reset();
}

}  // namespace hypergate::http
