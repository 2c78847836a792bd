// The admin listener of the real `hypergate` binary, driven with real curl: /health, /metrics
// (Prometheus text with a moving source counter), /stats (JSON that Python's json module accepts),
// 404, 405, HEAD, a clean exit on SIGTERM; and an admin port already taken -> exit 1 naming it.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "gateway_process.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <cmath>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Gateway = hypergate::test::GatewayProcess;

struct CurlResult {
  int status = 0;
  std::string body;
  std::string headers;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Runs real curl; `extra` is inserted before the URL (e.g. "-X POST").
CurlResult curl(const std::string& dir, const std::string& extra, const std::string& url) {
  const std::string body = dir + "/body", headers = dir + "/headers";
  const std::string cmd = "curl -s --max-time 20 -o " + body + " -D " + headers + " -w '%{http_code}' " + extra +
                          " '" + url + "'";
  CurlResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[64] = {};
  const std::size_t n = fread(buf, 1, sizeof buf - 1, p);
  pclose(p);
  r.status = std::atoi(std::string(buf, n).c_str());
  r.body = slurp(body);
  r.headers = slurp(headers);
  std::remove(body.c_str());
  std::remove(headers.c_str());
  return r;
}

class AdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hg_admin_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_ = dir_ + "/gateway.toml";
  }
  void TearDown() override {
    std::remove(config_.c_str());
    rmdir(dir_.c_str());
  }
  void write_config(const std::string& listen) {
    std::ofstream(config_) << "[gateway]\nworkers = 1\n\n[admin]\nlisten = \"" << listen
                           << "\"\n\n[source.synth]\ntype = \"synthetic\"\nrate = 1000\n\n[sink.discard]\ntype = \"null\"\n";
  }
  std::string dir_;
  std::string config_;
};

/// A listening loopback socket WITHOUT SO_REUSEPORT (so nobody else can share its port); -1 on failure.
// The holder sets SO_REUSEPORT, as another gateway's listeners do: the admin listener must still
// refuse to share its port (it does not set SO_REUSEPORT), so two gateways cannot split /metrics.
int listen_loopback(std::uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

TEST_F(AdminTest, ServesHealthMetricsStatsAndStopsOnSigterm) {
  // Port 0: the kernel picks a free port and the gateway prints the one it got (no race with other tests).
  write_config("127.0.0.1:0");
  Gateway gw({"run", "--config", config_});
  ASSERT_TRUE(gw.spawned());
  std::string port;
  ASSERT_TRUE(gw.wait_line("hypergate: admin on http://127.0.0.1:", &port)) << gw.output();
  ASSERT_FALSE(port.empty());
  ASSERT_NE(port, "0");
  const std::string base = "http://127.0.0.1:" + port;

  const CurlResult h = curl(dir_, "", base + "/health");
  EXPECT_EQ(h.status, 200) << h.headers;
  EXPECT_EQ(h.body, "ok\n");

  // The synthetic source runs at 1000/s: poll /metrics until its counter is positive (bounded).
  std::uint64_t messages = 0;
  CurlResult metrics;
  const std::regex counter_re("\nhypergate_source_messages_total\\{source=\"synth\"\\} ([0-9]+)\n");
  for (int attempt = 0; attempt < 200 && messages == 0; ++attempt) {
    metrics = curl(dir_, "", base + "/metrics");
    ASSERT_EQ(metrics.status, 200) << metrics.headers;
    std::smatch c;
    ASSERT_TRUE(std::regex_search(metrics.body, c, counter_re)) << metrics.body;
    messages = std::stoull(c[1].str());
    if (messages == 0) usleep(50'000);
  }
  EXPECT_GT(messages, 0u) << metrics.body;
  EXPECT_NE(metrics.body.find("# TYPE hypergate_source_messages_total counter\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("# TYPE hypergate_poll_to_pipeline_ns summary\n"), std::string::npos);
  EXPECT_NE(metrics.headers.find("text/plain; version=0.0.4"), std::string::npos) << metrics.headers;

  const CurlResult stats = curl(dir_, "", base + "/stats");
  EXPECT_EQ(stats.status, 200);
  {
    const std::string json_path = dir_ + "/stats.json";
    std::ofstream(json_path) << stats.body;
    const std::string cmd = "python3 -c 'import json,sys; d = json.load(sys.stdin); "
                            "sys.exit(0 if d[\"sources\"][0][\"name\"] == \"synth\" else 3)' < " +
                            json_path;
    const int rc = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << stats.body;
    std::remove(json_path.c_str());
  }

  const CurlResult head = curl(dir_, "-I", base + "/metrics");
  EXPECT_EQ(head.status, 200);
  // curl -I writes the header block to the output file too: there must be nothing else.
  EXPECT_EQ(head.body.find("# HELP"), std::string::npos) << head.body;
  ASSERT_GE(head.body.size(), 4u);
  EXPECT_EQ(head.body.substr(head.body.size() - 4), "\r\n\r\n") << head.body;
  EXPECT_NE(head.headers.find("Content-Length: "), std::string::npos) << head.headers;

  EXPECT_EQ(curl(dir_, "", base + "/nope").status, 404);
  const CurlResult post = curl(dir_, "-X POST -d x=1", base + "/metrics");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET, HEAD"), std::string::npos) << post.headers;
  // Still serving after the error answers.
  EXPECT_EQ(curl(dir_, "", base + "/health").status, 200);

  ASSERT_EQ(kill(gw.pid(), SIGTERM), 0);
  EXPECT_EQ(gw.wait_exit(), 0) << gw.output();
  EXPECT_NE(gw.output().find("stopped (SIGTERM)"), std::string::npos) << gw.output();
}

TEST_F(AdminTest, AdminPortTakenExitsOne) {
  std::uint16_t port = 0;
  const int holder = listen_loopback(&port);
  ASSERT_GE(holder, 0);
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  write_config(listen);
  Gateway gw({"run", "--config", config_});
  ASSERT_TRUE(gw.spawned());
  const int code = gw.wait_exit();
  close(holder);
  EXPECT_EQ(code, 1) << gw.output();
  EXPECT_NE(gw.output().find("admin listener " + listen + ": Address already in use"), std::string::npos)
      << gw.output();
  EXPECT_EQ(gw.output().find("admin on"), std::string::npos) << gw.output();
}

TEST_F(AdminTest, DisabledAdminDoesNotListen) {
  write_config("127.0.0.1:0");
  Gateway gw({"run", "--config", config_, "--set", "admin.enabled=false", "--set", "source.synth.count=100"});
  ASSERT_TRUE(gw.spawned());
  EXPECT_EQ(gw.wait_exit(), 0) << gw.output();
  EXPECT_EQ(gw.output().find("admin on"), std::string::npos) << gw.output();
}

}  // namespace

// The stage histograms in /metrics agree with the HDR percentiles in /stats: for p50, p90 and p99 of
// every recorded stage, the first bucket whose cumulative count reaches the percentile's rank brackets
// the /stats value (le[k-1] < value <= le[k], up to the histogram's 3-digit bucket width), and +Inf
// equals the count. A finite synthetic source makes both reads see the same, final samples; the idle
// catch-all keeps the gateway (and its admin listener) running after it finished.
TEST_F(AdminTest, StageHistogramsInMetricsAgreeWithStatsPercentiles) {
  std::ofstream(config_) << "[gateway]\nworkers = 1\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n"
                            "[source.synth]\ntype = \"synthetic\"\nrate = 200000\ncount = 30000\n\n"
                            "[source.idle]\ntype = \"http.catchall\"\nlisten = \"127.0.0.1:0\"\n\n"
                            "[sink.discard]\ntype = \"null\"\n";
  Gateway gw({"run", "--config", config_, "-q", "--trace-every", "1"});
  ASSERT_TRUE(gw.spawned());
  std::string port;
  ASSERT_TRUE(gw.wait_line("hypergate: admin on http://127.0.0.1:", &port)) << gw.output();
  const std::string base = "http://127.0.0.1:" + port;

  const std::regex wire_re("\"wire\":\\{\"count\":([0-9]+),");
  std::string stats, previous;
  for (int attempt = 0; attempt < 400; ++attempt) {  // until the counts stop moving (bounded: 20 s)
    stats = curl(dir_, "", base + "/stats").body;
    std::smatch m;
    if (std::regex_search(stats, m, wire_re) && std::stoull(m[1].str()) == 30000 && stats == previous) break;
    previous = stats;
    usleep(50'000);
  }
  const std::string metrics = curl(dir_, "", base + "/metrics").body;
  const std::vector<double> bounds_s = {1e-07, 2.5e-07, 5e-07, 1e-06, 2.5e-06, 5e-06, 1e-05, 2.5e-05, 5e-05, 0.0001,
                                        0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1, 10};
  int checked = 0;
  for (const char* stage : {"rx", "decode", "pipeline", "push", "process", "valve", "send", "wire"}) {
    const std::regex st_re(std::string("\"") + stage +
                           "\":\\{\"count\":([0-9]+),\"min_ns\":[0-9]+,\"mean_ns\":[0-9.]+,\"p50_ns\":([0-9]+),"
                           "\"p90_ns\":([0-9]+),\"p99_ns\":([0-9]+),");
    std::smatch sm;
    ASSERT_TRUE(std::regex_search(stats, sm, st_re)) << stage << "\n" << stats;
    const std::uint64_t count = std::stoull(sm[1].str());
    ASSERT_GT(count, 0u) << stage;
    std::vector<std::uint64_t> cumulative;
    for (double b : bounds_s) {
      std::ostringstream le;
      le << b;
      const std::regex b_re("\nhypergate_stage_latency_seconds_bucket\\{stage=\"" + std::string(stage) + "\",le=\"" +
                            std::regex_replace(le.str(), std::regex("\\."), "\\.") + "\"\\} ([0-9]+)\n");
      std::smatch bm;
      ASSERT_TRUE(std::regex_search(metrics, bm, b_re)) << stage << " le=" << le.str() << "\n" << metrics;
      cumulative.push_back(std::stoull(bm[1].str()));
    }
    std::smatch inf;
    ASSERT_TRUE(std::regex_search(metrics, inf, std::regex("\nhypergate_stage_latency_seconds_bucket\\{stage=\"" +
                                                           std::string(stage) + "\",le=\"\\+Inf\"\\} ([0-9]+)\n")));
    EXPECT_EQ(std::stoull(inf[1].str()), count) << stage;
    for (std::size_t i = 1; i < cumulative.size(); ++i) EXPECT_LE(cumulative[i - 1], cumulative[i]) << stage;
    const std::pair<double, std::uint64_t> quantiles[] = {
        {0.50, std::stoull(sm[2].str())}, {0.90, std::stoull(sm[3].str())}, {0.99, std::stoull(sm[4].str())}};
    for (const auto& [q, value_ns] : quantiles) {
      const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count)));
      std::size_t k = 0;
      while (k < cumulative.size() && cumulative[k] < rank) ++k;
      const double value_s = static_cast<double>(value_ns) / 1e9;
      if (k > 0) {
        EXPECT_GT(value_s, bounds_s[k - 1]) << stage << " q" << q;
      }
      if (k < cumulative.size()) {
        EXPECT_LE(value_s, bounds_s[k] * 1.001 + 1e-9) << stage << " q" << q;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 24);
  ASSERT_EQ(kill(gw.pid(), SIGTERM), 0);
  EXPECT_EQ(gw.wait_exit(), 0) << gw.output();
  // The exit report carries the per-stage table.
  EXPECT_NE(gw.output().find("p99.99"), std::string::npos) << gw.output();
  EXPECT_NE(gw.output().find("\nwire "), std::string::npos) << gw.output();
}
