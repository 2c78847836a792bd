// The admin endpoints' pure parts on hand-built Reports: exact Prometheus lines (HELP/TYPE, counters,
// gauge, summary, label escaping), JSON structure and escaping, health, and the request routing
// (404, 405 with Allow, HEAD without a body, query strings, Connection: close).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "http/admin_server.hpp"

namespace {

using hypergate::http::admin_response;
using hypergate::http::format_prometheus;
using hypergate::http::format_stats_json;
using hypergate::http::health;
namespace rt = hypergate::runtime;

rt::Report sample_report() {
  rt::Report r;
  r.started = true;
  r.elapsed_ns = 1'500'000'000;
  rt::SourceReport s;
  s.name = "synth";
  s.type = "synthetic";
  s.pipeline = "passthrough";
  s.state = rt::AdapterState::Running;
  s.stats.messages = 1000;
  s.stats.bytes = 64000;
  s.stats.rejects = 3;
  s.stats.drops = 4;
  s.stats.errors = 5;
  s.pipeline_counters.in = 1000;
  s.pipeline_counters.emitted = 990;
  s.pipeline_counters.rejected = 7;
  s.pipeline_counters.dropped = 3;
  s.pipeline_counters.rejects_by_reason = {{"too_long", 4}, {"key_denied", 3}};
  r.sources.push_back(s);
  rt::SourceReport odd;  // a name that needs escaping everywhere
  odd.name = "we\"ird\\na\nme";
  odd.type = "synthetic";
  odd.state = rt::AdapterState::Finished;
  odd.error = "tab\there";
  r.sources.push_back(odd);
  rt::SinkReport k;
  k.name = "discard";
  k.type = "null";
  k.stats.messages = 990;
  k.stats.bytes = 63360;
  k.stats.drops = 1;
  k.stats.errors = 2;
  k.undeliverable = 6;
  rt::SinkInstanceReport inst;
  inst.worker = 0;
  inst.state = rt::AdapterState::Running;
  inst.stats = k.stats;
  k.instances.push_back(inst);
  r.sinks.push_back(k);
  rt::LaneReport l;
  l.lane = 3;
  l.counters.in = 500;
  l.counters.out = 480;
  l.counters.dropped = 10;
  l.counters.conflated = 2;
  l.counters.in_flight = 8;
  r.lanes.push_back(l);
  rt::WorkerReport w;
  w.worker = 0;
  w.polled = 1000;
  w.pushed = 990;
  w.drained = 985;
  w.collisions = 11;
  w.sleeps = 40;
  w.wakeups = 21;
  w.wake_errors = 2;
  w.poll_to_pipeline = {100, 250, 900, 1200, 5000};
  w.push_to_drain = {50, 1000, 4000, 8000, 9000};
  r.workers.push_back(w);
  r.valve_totals = l.counters;
  return r;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

#define EXPECT_LINE(text, line) EXPECT_TRUE(has_line(text, line)) << "missing line: " << (line) << "\nin:\n" << (text)

TEST(AdminFormat, PrometheusCountersHaveHelpTypeAndValues) {
  const std::string m = format_prometheus(sample_report());
  EXPECT_LINE(m, "# HELP hypergate_source_messages_total Messages handed by the source to its pipeline.");
  EXPECT_LINE(m, "# TYPE hypergate_source_messages_total counter");
  EXPECT_LINE(m, "hypergate_source_messages_total{source=\"synth\"} 1000");
  EXPECT_LINE(m, "hypergate_source_bytes_total{source=\"synth\"} 64000");
  EXPECT_LINE(m, "hypergate_source_rejects_total{source=\"synth\"} 3");
  EXPECT_LINE(m, "hypergate_source_drops_total{source=\"synth\"} 4");
  EXPECT_LINE(m, "hypergate_source_errors_total{source=\"synth\"} 5");
  EXPECT_LINE(m, "hypergate_pipeline_in_total{source=\"synth\"} 1000");
  EXPECT_LINE(m, "hypergate_pipeline_emitted_total{source=\"synth\"} 990");
  EXPECT_LINE(m, "hypergate_pipeline_rejected_total{source=\"synth\"} 7");
  EXPECT_LINE(m, "hypergate_pipeline_dropped_total{source=\"synth\"} 3");
  EXPECT_LINE(m, "hypergate_pipeline_rejects_by_reason_total{source=\"synth\",reason=\"too_long\"} 4");
  EXPECT_LINE(m, "hypergate_pipeline_rejects_by_reason_total{source=\"synth\",reason=\"key_denied\"} 3");
  EXPECT_LINE(m, "hypergate_sink_messages_total{sink=\"discard\"} 990");
  EXPECT_LINE(m, "hypergate_sink_bytes_total{sink=\"discard\"} 63360");
  EXPECT_LINE(m, "hypergate_sink_drops_total{sink=\"discard\"} 1");
  EXPECT_LINE(m, "hypergate_sink_errors_total{sink=\"discard\"} 2");
  EXPECT_LINE(m, "hypergate_sink_undeliverable_total{sink=\"discard\"} 6");
  EXPECT_LINE(m, "hypergate_lane_in_total{lane=\"3\"} 500");
  EXPECT_LINE(m, "hypergate_lane_out_total{lane=\"3\"} 480");
  EXPECT_LINE(m, "hypergate_lane_dropped_total{lane=\"3\"} 10");
  EXPECT_LINE(m, "hypergate_lane_conflated_total{lane=\"3\"} 2");
  EXPECT_LINE(m, "# TYPE hypergate_lane_in_flight gauge");
  EXPECT_LINE(m, "hypergate_lane_in_flight{lane=\"3\"} 8");
  EXPECT_LINE(m, "hypergate_worker_polled_total{worker=\"0\"} 1000");
  EXPECT_LINE(m, "hypergate_worker_pushed_total{worker=\"0\"} 990");
  EXPECT_LINE(m, "hypergate_worker_drained_total{worker=\"0\"} 985");
  EXPECT_LINE(m, "hypergate_worker_collisions_total{worker=\"0\"} 11");
  EXPECT_LINE(m, "hypergate_worker_sleeps_total{worker=\"0\"} 40");
  EXPECT_LINE(m, "hypergate_worker_wakeups_total{worker=\"0\"} 21");
  EXPECT_LINE(m, "# TYPE hypergate_worker_wake_errors_total counter");
  EXPECT_LINE(m, "hypergate_worker_wake_errors_total{worker=\"0\"} 2");
}

TEST(AdminFormat, PrometheusLatencyIsASummary) {
  const std::string m = format_prometheus(sample_report());
  EXPECT_LINE(m, "# TYPE hypergate_poll_to_pipeline_ns summary");
  EXPECT_LINE(m, "hypergate_poll_to_pipeline_ns{worker=\"0\",quantile=\"0.5\"} 250");
  EXPECT_LINE(m, "hypergate_poll_to_pipeline_ns{worker=\"0\",quantile=\"0.99\"} 900");
  EXPECT_LINE(m, "hypergate_poll_to_pipeline_ns{worker=\"0\",quantile=\"0.999\"} 1200");
  EXPECT_LINE(m, "hypergate_poll_to_pipeline_ns_count{worker=\"0\"} 100");
  EXPECT_LINE(m, "# TYPE hypergate_push_to_drain_ns summary");
  EXPECT_LINE(m, "hypergate_push_to_drain_ns{worker=\"0\",quantile=\"0.999\"} 8000");
  EXPECT_LINE(m, "hypergate_push_to_drain_ns_count{worker=\"0\"} 50");
}

TEST(AdminFormat, PrometheusStructure) {
  const std::string m = format_prometheus(sample_report());
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m.back(), '\n');
  // Every counter family ends in _total; every TYPE has its HELP right before it; no family twice.
  std::size_t pos = 0;
  std::string prev;
  std::vector<std::string> families;
  while (pos < m.size()) {
    const std::size_t end = m.find('\n', pos);
    ASSERT_NE(end, std::string::npos);
    const std::string line = m.substr(pos, end - pos);
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string rest = line.substr(7);
      const std::string name = rest.substr(0, rest.find(' '));
      const std::string type = rest.substr(rest.find(' ') + 1);
      EXPECT_EQ(prev.rfind("# HELP " + name + " ", 0), 0u) << line;
      if (type == "counter") {
        EXPECT_TRUE(name.size() > 6 && name.substr(name.size() - 6) == "_total") << name;
      }
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "summary" || type == "histogram") << line;
      for (const auto& f : families) EXPECT_NE(f, name);
      families.push_back(name);
    } else if (line[0] != '#') {
      // A sample: name{labels} value, the name belongs to the last family.
      ASSERT_FALSE(families.empty()) << line;
      EXPECT_EQ(line.rfind(families.back(), 0), 0u) << line;
    }
    prev = line;
    pos = end + 1;
  }
  EXPECT_GE(families.size(), 25u);
}

TEST(AdminFormat, PrometheusEscapesLabelValues) {
  const std::string m = format_prometheus(sample_report());
  EXPECT_LINE(m, "hypergate_source_messages_total{source=\"we\\\"ird\\\\na\\nme\"} 0");
}

TEST(AdminFormat, PrometheusOfAnEmptyReportHasOnlyComments) {
  const std::string m = format_prometheus(rt::Report{});
  std::size_t pos = 0;
  while (pos < m.size()) {
    EXPECT_EQ(m[pos], '#') << m.substr(pos, 80);
    pos = m.find('\n', pos) + 1;
  }
}

TEST(AdminFormat, StatsJsonHasTheCountersAndEscapes) {
  const std::string j = format_stats_json(sample_report());
  ASSERT_FALSE(j.empty());
  EXPECT_EQ(j.front(), '{');
  EXPECT_EQ(j.substr(j.size() - 2), "}\n");
  EXPECT_NE(j.find(R"("started":true)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("name":"synth","type":"synthetic","pipeline":"passthrough","worker":0,"state":"running")"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find(R"("messages":1000,"bytes":64000)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("rejects_by_reason":{"too_long":4,"key_denied":3})"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("name":"we\"ird\\na\nme")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("error":"tab\there")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("undeliverable":6)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"({"lane":3,"consumer":0,"counters":{"in":500,"out":480,"dropped":10,"conflated":2,"in_flight":8)"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find(R"("poll_to_pipeline":{"count":100,"p50_ns":250,"p99_ns":900,"p999_ns":1200,"max_ns":5000})"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find(R"("sleeps":40,"wakeups":21,"wake_errors":2,"polled":1000)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("valve_totals":{"in":500)"), std::string::npos) << j;
  // No raw control characters inside (the only newline is the final one).
  for (std::size_t i = 0; i + 1 < j.size(); ++i) EXPECT_GE(static_cast<unsigned char>(j[i]), 0x20) << i;
}

TEST(AdminFormat, StatsJsonBracketsBalanceOutsideStrings) {
  for (const rt::Report& r : {sample_report(), rt::Report{}}) {
    const std::string j = format_stats_json(r);
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < j.size(); ++i) {
      const char c = j[i];
      if (in_string) {
        if (c == '\\') ++i;
        else if (c == '"') in_string = false;
        continue;
      }
      if (c == '"') in_string = true;
      else if (c == '{' || c == '[') ++depth;
      else if (c == '}' || c == ']') --depth;
      EXPECT_GE(depth, 0);
      if (depth == 0 && i + 2 < j.size()) ADD_FAILURE() << "object closed early at " << i << ": " << j;
    }
    EXPECT_EQ(depth, 0);
    EXPECT_FALSE(in_string);
  }
}

TEST(AdminFormat, HealthNamesFailedAdapters) {
  rt::Report r = sample_report();
  auto h = health(r);
  EXPECT_TRUE(h.healthy);
  EXPECT_EQ(h.body, "ok\n");
  r.sources[0].state = rt::AdapterState::Failed;
  r.sources[0].error = "bind: Address already in use";
  r.sinks[0].instances[0].state = rt::AdapterState::Failed;
  r.sinks[0].instances[0].error = "connect refused";
  h = health(r);
  EXPECT_FALSE(h.healthy);
  EXPECT_EQ(h.body, "source synth failed: bind: Address already in use\nsink discard (worker 0) failed: connect refused\n");
}

TEST(AdminFormat, Routing) {
  int calls = 0;
  const std::function<rt::Report()> report = [&calls] {
    ++calls;
    return sample_report();
  };
  const std::string metrics = admin_response("GET", "/metrics", true, report);
  EXPECT_EQ(metrics.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << metrics;
  EXPECT_NE(metrics.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  const std::string body = format_prometheus(sample_report());
  EXPECT_NE(metrics.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
  EXPECT_EQ(metrics.substr(metrics.size() - body.size()), body);
  EXPECT_EQ(metrics.find("Connection: close"), std::string::npos);

  const std::string head = admin_response("HEAD", "/metrics?x=1", false, report);
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
  EXPECT_NE(head.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");  // no body

  const std::string stats = admin_response("GET", "/stats", true, report);
  EXPECT_NE(stats.find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_EQ(stats.substr(stats.find("\r\n\r\n") + 4), format_stats_json(sample_report()));

  const std::string ok = admin_response("GET", "/health", true, report);
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(ok.substr(ok.find("\r\n\r\n") + 4), "ok\n");
  const int before = calls;

  const std::string missing = admin_response("GET", "/nope", true, report);
  EXPECT_EQ(missing.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << missing;
  const std::string post = admin_response("POST", "/metrics", true, report);
  EXPECT_EQ(post.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << post;
  EXPECT_NE(post.find("Allow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_EQ(calls, before) << "404 and 405 answer without taking a report";
}

TEST(AdminFormat, HealthEndpointIs503WhenAnAdapterFailed) {
  const std::function<rt::Report()> report = [] {
    rt::Report r = sample_report();
    r.sources[1].state = rt::AdapterState::Failed;
    r.sources[1].error = "boom";
    return r;
  };
  const std::string h = admin_response("GET", "/health", true, report);
  EXPECT_EQ(h.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << h;
  EXPECT_NE(h.find("failed: boom\n"), std::string::npos) << h;
}

}  // namespace

namespace {
rt::Report stage_report_sample() {
  rt::Report r;
  rt::StageReport s;
  s.name = "wire";
  s.count = 10;
  s.mean_ns = 3000.0;
  s.p50_ns = 2000;
  s.p99_ns = 9000;
  s.p999_ns = 9000;
  s.max_ns = 9000;
  // 2 samples <= 1 us, 8 more <= 10 us: cumulative per bound (100 ns .. 10 s)
  for (std::size_t b = 0; b < s.le_counts.size(); ++b) {
    const std::uint64_t le = hypergate::metrics::kPrometheusBucketsNs[b];
    s.le_counts[b] = le < 1'000 ? 0 : le < 10'000 ? 2 : 10;
  }
  r.stages.push_back(s);
  return r;
}
}  // namespace

TEST(AdminFormat, StagesAreHistogramsWithTheFixedBucketLayout) {
  const std::string m = format_prometheus(stage_report_sample());
  EXPECT_LINE(m, "# TYPE hypergate_stage_latency_seconds histogram");
  EXPECT_LINE(m, "hypergate_stage_latency_seconds_bucket{stage=\"wire\",le=\"1e-07\"} 0");
  EXPECT_LINE(m, "hypergate_stage_latency_seconds_bucket{stage=\"wire\",le=\"1e-06\"} 2");
  EXPECT_LINE(m, "hypergate_stage_latency_seconds_bucket{stage=\"wire\",le=\"5e-06\"} 2");
  EXPECT_LINE(m, "hypergate_stage_latency_seconds_bucket{stage=\"wire\",le=\"1e-05\"} 10");
  EXPECT_LINE(m, "hypergate_stage_latency_seconds_bucket{stage=\"wire\",le=\"10\"} 10");
  EXPECT_LINE(m, "hypergate_stage_latency_seconds_bucket{stage=\"wire\",le=\"+Inf\"} 10");
  EXPECT_LINE(m, "hypergate_stage_latency_seconds_sum{stage=\"wire\"} 3e-05");
  EXPECT_LINE(m, "hypergate_stage_latency_seconds_count{stage=\"wire\"} 10");
  // one bucket line per bound plus +Inf
  std::size_t buckets = 0;
  for (std::size_t p = m.find("_bucket{"); p != std::string::npos; p = m.find("_bucket{", p + 1)) ++buckets;
  EXPECT_EQ(buckets, hypergate::metrics::kPrometheusBucketsNs.size() + 1);
}

TEST(AdminFormat, StatsJsonHasStagePercentiles) {
  const std::string j = format_stats_json(stage_report_sample());
  EXPECT_NE(j.find(R"("stages":{"wire":{"count":10,)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("p50_ns":2000,"p90_ns":0,"p99_ns":9000)"), std::string::npos) << j;
}
