// Scale-out on NATS with real servers: every test starts its own nats-server(s) on free loopback ports.
//  (a) feed -> gateway A (pcap source at max speed -> itch -> nats sink) -> NATS -> gateway B (nats
//      source -> passthrough -> soupbintcp): B's SoupBinTCP subscriber ends with the same top of book as
//      `hypergate replay --book-json` computes from the capture, and B received every update A published.
//  (b) a three-node cluster with JetStream (stream replicas 3): gateway A publishes in JetStream mode,
//      the node it is connected to is killed with SIGKILL mid-stream; A reconnects to another node, and
//      the stream holds every update exactly once (stream sequences 1..N, update sequences 1..N); an
//      edge replaying the stream (JetStream source, deliver = "all") ends with the capture's book.
//  (c) errors: no server reachable at start -> a clear message, the run keeps going and counts reconnect
//      attempts, then publishes once a server appears on that port; a bad subject template is a config
//      error (exit 2) naming file:line:column and the key.
//  (d) payload = "json" and publish = "all" on md.<TYPE>.<SYMBOL>: updates as JSON on md.T.*, raw ITCH
//      Add Orders on md.A.*, every published message received.
//  (e) a single JetStream server: the sink creates its stream, every publish is acknowledged and stored.
//  (f) pushback: the server is SIGKILLed under a 20k msg/s feed; the core sink's small reconnect buffer
//      fills (JetStream: max_pending publishes wait for acks), the sink hands bursts back and the valve
//      lanes drop (conflate), every lane keeps in == out + dropped + conflated + in_flight, every message
//      emitted is published, failed, dropped or conflated; a server restarted on the port gets publishes again.
// Waits are polls with bounded deadlines (hang guards), never timing assertions.
#include <nats/nats.h>
#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gateway_process.hpp"
#include "../nats_server.hpp"
#include "loopback.hpp"
#include "market/tob_update.hpp"
#include "nats/nats_source.hpp"

namespace {

using hypergate::test::connect_to;
using hypergate::test::free_port;
using hypergate::test::GatewayProcess;
using hypergate::test::kNatsServerBinary;
using hypergate::test::NatsServer;
using hypergate::test::NatsServerOptions;
using hypergate::test::send_all;
using hypergate::test::sh;
using Clock = std::chrono::steady_clock;

struct Top {
  std::uint64_t bid_price = 0, bid_qty = 0, ask_price = 0, ask_qty = 0;
  bool operator==(const Top&) const = default;
};

std::string tmpdir() {
  char tmpl[] = "/tmp/hg_nats_XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d != nullptr ? d : "/tmp";
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// {"symbols": {"AAPL": {"bid_price": 1, "bid_qty": 2, "ask_price": 3, "ask_qty": 4}, ...}, ...}
std::map<std::string, Top> parse_book_json(const std::string& text) {
  std::map<std::string, Top> out;
  const std::regex row(
      R"re("([^"]+)": \{"bid_price": (\d+), "bid_qty": (\d+), "ask_price": (\d+), "ask_qty": (\d+))re");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), row); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    out[m[1]] = Top{std::stoull(m[2]), std::stoull(m[3]), std::stoull(m[4]), std::stoull(m[5])};
  }
  return out;
}

/// The first unsigned integer after `prefix` in `text` (nullopt when absent).
std::optional<std::uint64_t> number_after(const std::string& text, const std::string& prefix) {
  const std::size_t at = text.rfind(prefix);
  if (at == std::string::npos) return std::nullopt;
  std::size_t i = at + prefix.size();
  std::uint64_t v = 0;
  bool any = false;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    v = v * 10 + static_cast<std::uint64_t>(text[i++] - '0');
    any = true;
  }
  return any ? std::optional<std::uint64_t>(v) : std::nullopt;
}

/// Polls `cond` every 20 ms until it holds (true) or `limit` passes (false): a hang guard, not a timing check.
template <class F>
bool eventually(F cond, std::chrono::milliseconds limit = std::chrono::milliseconds(30'000)) {
  const auto deadline = Clock::now() + limit;
  while (!cond()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

/// A SoupBinTCP client that logs in from sequence 1 and folds TobUpdates into a book.
class SoupClient {
 public:
  ~SoupClient() {
    if (fd_ >= 0) close(fd_);
  }
  bool connect_and_login(std::uint16_t port) {
    for (int i = 0; i < 200 && fd_ < 0; ++i) {
      fd_ = connect_to(port);
      if (fd_ < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (fd_ < 0) return false;
    std::string body = "L";
    body += pad("tester", 6) + pad("secret", 10) + pad("", 10) + std::string(19, ' ') + "1";
    std::string pkt;
    pkt += static_cast<char>(body.size() >> 8);
    pkt += static_cast<char>(body.size() & 0xFF);
    pkt += body;
    if (!send_all(fd_, pkt)) return false;
    char type = 0;
    std::string payload;
    return next(type, payload) && type == 'A';
  }
  bool next(char& type, std::string& payload) {
    const std::string len = hypergate::test::recv_exactly(fd_, 2);
    if (len.size() != 2) return false;
    const std::size_t n = (static_cast<unsigned char>(len[0]) << 8) | static_cast<unsigned char>(len[1]);
    const std::string rest = hypergate::test::recv_exactly(fd_, n);
    if (rest.size() != n || n == 0) return false;
    type = rest[0];
    payload = rest.substr(1);
    return true;
  }
  /// Folds updates until `want` of them arrived; false on a broken stream or a bad record.
  bool read_updates(std::uint64_t want) {
    while (updates < want) {
      char type = 0;
      std::string payload;
      if (!next(type, payload)) return false;
      if (type != 'S') continue;
      hypergate::market::TobUpdate u;
      if (hypergate::market::decode_tob_update(std::as_bytes(std::span<const char>(payload.data(), payload.size())),
                                               u) != hypergate::Status::Ok) {
        return false;
      }
      // Last value by the update's gateway sequence, not by arrival: after a JetStream failover a resent
      // update can reach the stream after a later one (see nats_sink.hpp), which the sequence exposes.
      const std::string symbol(u.symbol_trimmed());
      if (u.sequence > newest[symbol]) {
        newest[symbol] = u.sequence;
        book[symbol] = Top{u.bid_price, u.bid_qty, u.ask_price, u.ask_qty};
      }
      sequences.insert(u.sequence);
      ++updates;
    }
    return true;
  }
  std::map<std::string, Top> book;
  std::map<std::string, std::uint64_t> newest;  // per symbol: the sequence `book` holds
  std::set<std::uint64_t> sequences;
  std::uint64_t updates = 0;

 private:
  static std::string pad(const std::string& s, std::size_t n) { return (s + std::string(n, ' ')).substr(0, n); }
  int fd_ = -1;
};

std::string url(std::uint16_t port) { return "nats://127.0.0.1:" + std::to_string(port); }

/// Gateway A: a capture replayed by the pcap source -> itch pipeline -> nats sink.
std::string feed_config(const std::string& capture, const std::string& speed, const std::string& servers,
                        const std::string& sink_extra) {
  return "[gateway]\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n[valves]\npolicy = \"spin\"\nspin_ns = \"20s\"\n"
         "[source.feed]\ntype = \"pcap\"\npath = \"" + capture + "\"\nspeed = \"" + speed + "\"\nprogress = false\n"
         "pipeline = \"itch\"\n[source.feed.pipeline_options]\noutput = \"updates\"\n"
         "[sink.md]\ntype = \"nats\"\nservers = [" + servers + "]\nsubject = \"md.<SYMBOL>\"\n"
         "reconnect_wait = \"50ms\"\nreconnect_wait_max = \"200ms\"\n" + sink_extra;
}

class NatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kNatsServerBinary.c_str(), X_OK) != 0) {
      GTEST_SKIP() << kNatsServerBinary << " missing (scripts/setup.sh installs it)";
    }
    dir_ = tmpdir();
  }
  void TearDown() override {
    if (!dir_.empty()) sh("rm -rf '" + dir_ + "'");
  }
  /// Generates a capture and its reference book; returns the capture path.
  std::string capture(int messages, int symbols, std::map<std::string, Top>* ref) {
    const std::string bin = hypergate::test::kGatewayBinary;
    const std::string cap = dir_ + "/feed.pcap";
    const std::string gen = sh(bin + " gen itch --out " + cap + " --messages " + std::to_string(messages) +
                               " --symbol-count " + std::to_string(symbols) + " --seed 11 2>&1");
    EXPECT_NE(gen.find(std::to_string(messages) + " messages"), std::string::npos) << gen;
    if (ref != nullptr) {
      const std::string replay = sh(bin + " replay " + cap + " -q --book-json " + dir_ + "/ref.json 2>&1");
      EXPECT_NE(replay.find(std::to_string(messages) + " ITCH messages"), std::string::npos) << replay;
      *ref = parse_book_json(read_file(dir_ + "/ref.json"));
    }
    return cap;
  }
  std::string dir_;
};
// Suite names start with "nats" so that `ctest -R nats` selects every test of this file.
using natsGateway = NatsTest;

using natsSourceWake = NatsTest;

// The nats source's wake descriptor (Source::wake_fd): libnats' delivery thread writes it only after
// the worker armed it (wake_fd(), right before a sleep), and a message that came before the arming
// makes it readable at once. The source is driven directly, as its worker would.
TEST_F(natsSourceWake, ADeliveryWakesTheWorkerOnlyAfterItArmed) {
  hypergate::test::NatsServer server(hypergate::test::NatsServerOptions{});
  ASSERT_TRUE(server.start());
  hypergate::nats::NatsSourceOptions o;
  o.client.name = "wake";
  o.client.servers = {url(server.port())};
  o.subjects = {"wake.>"};
  hypergate::nats::NatsSource src(o);
  ASSERT_TRUE(src.start().ok());
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, url(server.port()).c_str()), NATS_OK);
  auto publish = [&](const char* body) {
    ASSERT_EQ(natsConnection_PublishString(nc, "wake.x", body), NATS_OK);
    ASSERT_EQ(natsConnection_Flush(nc), NATS_OK);
  };
  // Polls the source until a message arrives (20 s at most); returns its payload, "" if none came.
  auto next = [&]() -> std::string {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < end) {
      hypergate::Burst<> b;
      if (src.poll(b) != 0) {
        std::string got(b[0].text());
        src.release(b);
        return got;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return "";
  };
  auto readable = [](int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
  };
  // The subscription is live once a message gets through (libnats subscribes as it connects).
  bool live = false;
  for (int i = 0; i < 100 && !live; ++i) {
    publish("warm-up");
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    while (!live && std::chrono::steady_clock::now() < end) {
      hypergate::Burst<> b;
      live = src.poll(b) != 0;
      src.release(b);
    }
  }
  ASSERT_TRUE(live) << "no message came through the subscription";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  while (true) {  // what is left of the warm-up
    hypergate::Burst<> b;
    if (src.poll(b) == 0) break;
    src.release(b);
  }

  // Armed, nothing pending: not readable; a delivery makes it readable.
  const int fd = src.wake_fd();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(readable(fd, 0));
  publish("one");
  EXPECT_TRUE(readable(fd, 20'000));
  EXPECT_EQ(next(), "one");

  // Not armed (a busy worker does not call wake_fd()): deliveries leave it alone.
  std::uint64_t v = 0;
  ASSERT_EQ(::read(fd, &v, sizeof v), static_cast<ssize_t>(sizeof v));  // what wake_fd() would clear
  publish("two");
  EXPECT_EQ(next(), "two");
  EXPECT_FALSE(readable(fd, 0));

  // A message that came before the arming: wake_fd() makes the descriptor readable itself.
  publish("three");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // delivered into the queue meanwhile
  EXPECT_EQ(src.wake_fd(), fd);
  EXPECT_TRUE(readable(fd, 0));
  EXPECT_EQ(next(), "three");

  natsConnection_Destroy(nc);
  src.stop();
}

TEST_F(natsGateway, FeedGatewayToEdgeGatewayThroughNatsGivesTheReplayBook) {
  std::map<std::string, Top> ref;
  const std::string cap = capture(30000, 10, &ref);
  ASSERT_EQ(ref.size(), 10u);

  const std::uint16_t nats_port = free_port();
  NatsServer server({.port = nats_port, .log = dir_ + "/nats.log"});
  ASSERT_TRUE(server.start()) << server.log();

  // Gateway B (the edge): nats source -> passthrough (key = the subject's symbol) -> SoupBinTCP.
  const std::uint16_t soup_port = free_port();
  write_file(dir_ + "/edge.toml",
             "[gateway]\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n[valves]\npolicy = \"spin\"\nspin_ns = \"20s\"\n"
             "[source.md]\ntype = \"nats\"\nservers = [\"" + url(nats_port) + "\"]\nsubjects = [\"md.*\"]\n"
             "queue = \"edge\"\nqueue_capacity = 65536\npipeline = \"passthrough\"\n"
             "[source.md.pipeline_options]\nkey = \"source\"\n"
             "[sink.subscribers]\ntype = \"soupbintcp\"\nlisten = \"127.0.0.1:" + std::to_string(soup_port) +
             "\"\nusername = \"tester\"\npassword = \"secret\"\nsession = \"EDGE000001\"\nretain = 1000000\n"
             "client_timeout = \"60s\"\n");
  GatewayProcess edge({"run", "--config", dir_ + "/edge.toml", "-q"});
  ASSERT_TRUE(edge.wait_for("hypergate: running")) << edge.output();
  ASSERT_TRUE(edge.wait_for("nats source 'md': connected to " + url(nats_port))) << edge.output();
  SoupClient client;
  ASSERT_TRUE(client.connect_and_login(soup_port)) << edge.output_now();

  // Gateway A (the feed handler): runs until its capture is done, then flushes the sink and exits.
  write_file(dir_ + "/feed.toml", feed_config(cap, "max", "\"" + url(nats_port) + "\"", ""));
  GatewayProcess feed({"run", "--config", dir_ + "/feed.toml", "-q"});
  ASSERT_EQ(feed.wait_exit(), 0) << feed.output();
  const auto published = number_after(feed.output(), "nats sink 'md': published ");
  ASSERT_TRUE(published.has_value()) << feed.output();
  ASSERT_GT(*published, 1000u) << feed.output();  // the capture changes the top of book thousands of times
  EXPECT_NE(feed.output().find(", failed 0, pushback 0"), std::string::npos) << feed.output();

  ASSERT_TRUE(client.read_updates(*published)) << edge.output_now();
  EXPECT_EQ(client.updates, *published);
  EXPECT_EQ(client.sequences.size(), *published);  // every update once: 1..N
  EXPECT_EQ(*client.sequences.begin(), 1u);
  EXPECT_EQ(*client.sequences.rbegin(), *published);
  EXPECT_EQ(client.book, ref);

  EXPECT_EQ(edge.terminate(), 0) << edge.output();
  EXPECT_NE(edge.output().find("nats source 'md': received " + std::to_string(*published) + ", overflow 0, oversize 0"),
            std::string::npos)
      << edge.output();
}

/// Every message of stream `stream`, read by an ordered consumer from its start: the TobUpdate sequences.
/// Returns "" when every message was read, else what went wrong. Its own connection to `servers`.
std::string read_stream(const std::string& servers, const std::string& stream, std::uint64_t count,
                        std::vector<std::uint64_t>* update_sequences) {
  natsConnection* nc = nullptr;
  if (natsConnection_ConnectTo(&nc, servers.c_str()) != NATS_OK) return "connect to " + servers;
  jsCtx* js = nullptr;
  if (natsConnection_JetStream(&js, nc, nullptr) != NATS_OK) {
    natsConnection_Destroy(nc);
    return "JetStream context";
  }
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverAll;
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  std::string error;
  // After losing a node the cluster may take a while to answer consumer requests: retried (bounded).
  natsStatus st = NATS_TIMEOUT;
  const bool subscribed = eventually([&] {
    st = js_SubscribeSync(&sub, js, "md.*", nullptr, &so, &jerr);
    return st == NATS_OK;
  }, std::chrono::milliseconds(60'000));
  if (!subscribed) error = std::string("js_SubscribeSync: ") + natsStatus_GetText(st);
  while (error.empty() && update_sequences->size() < count) {
    natsMsg* m = nullptr;
    if (natsSubscription_NextMsg(&m, sub, 10'000) != NATS_OK) {
      error = "no message " + std::to_string(update_sequences->size() + 1) + " within 10 s";
      break;
    }
    hypergate::market::TobUpdate u;
    const auto* data = reinterpret_cast<const std::byte*>(natsMsg_GetData(m));
    if (hypergate::market::decode_tob_update(
            std::span<const std::byte>(data, static_cast<std::size_t>(natsMsg_GetDataLength(m))), u) !=
        hypergate::Status::Ok) {
      error = "message " + std::to_string(update_sequences->size() + 1) + " is not a TobUpdate";
    }
    update_sequences->push_back(u.sequence);
    natsMsg_Destroy(m);
  }
  if (sub != nullptr) natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return error;
}

TEST_F(natsGateway, ClusterNodeKilledMidStreamLosesNothingInJetStreamMode) {
  std::map<std::string, Top> ref;
  const std::string cap = capture(60000, 10, &ref);
  std::array<std::uint16_t, 3> client{}, route{};
  for (int i = 0; i < 3; ++i) {
    client[i] = free_port();
    route[i] = free_port();
  }
  std::vector<std::unique_ptr<NatsServer>> nodes;
  for (int i = 0; i < 3; ++i) {
    std::vector<std::uint16_t> routes;
    for (int j = 0; j < 3; ++j) {
      if (j != i) routes.push_back(route[j]);
    }
    const std::string name = "hg" + std::to_string(i + 1);
    nodes.push_back(std::make_unique<NatsServer>(NatsServerOptions{.port = client[i],
                                                                   .store = dir_ + "/" + name,
                                                                   .log = dir_ + "/" + name + ".log",
                                                                   .name = name,
                                                                   .cluster_name = "HGTEST",
                                                                   .cluster_port = route[i],
                                                                   .routes = routes}));
    ASSERT_TRUE(nodes.back()->spawn());  // all three up before any is awaited: they form the cluster together
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(nodes[i]->wait_until_accepting()) << nodes[i]->log();

  // The stream, replicated on the three nodes, created once the cluster has a JetStream leader (polled).
  const std::string all = url(client[0]) + "," + url(client[1]) + "," + url(client[2]);
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, all.c_str()), NATS_OK);
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  ASSERT_TRUE(eventually([&] {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char* subjects[1] = {"md.*"};
    cfg.Name = "MD";
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = 3;
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus st = js_AddStream(&si, js, &cfg, nullptr, &jerr);
    if (si != nullptr) jsStreamInfo_Destroy(si);
    return st == NATS_OK;
  }, std::chrono::milliseconds(60'000))) << nodes[0]->log();

  // Gateway A publishes the capture at a pace that leaves time to kill its node mid-stream.
  write_file(dir_ + "/feed.toml",
             feed_config(cap, "400pps", "\"" + url(client[0]) + "\", \"" + url(client[1]) + "\", \"" +
                                            url(client[2]) + "\"",
                         "jetstream = true\nstream = \"MD\"\ndrain_timeout = \"30s\"\nack_wait = \"2s\"\n"));
  GatewayProcess feed({"run", "--config", dir_ + "/feed.toml", "-q"});
  std::string admin;
  ASSERT_TRUE(feed.wait_line("hypergate: admin on http://127.0.0.1:", &admin)) << feed.output();
  admin = admin.substr(0, admin.find_first_not_of("0123456789"));
  ASSERT_TRUE(feed.wait_for("nats sink 'md': connected to " + url(client[0]))) << feed.output();
  std::string stats;
  ASSERT_TRUE(eventually([&] {
    stats = sh("curl -s http://127.0.0.1:" + admin + "/stats");
    const auto acked = number_after(stats, "\"acked\":");
    return acked.has_value() && *acked >= 500;
  })) << stats << feed.output_now();
  nodes[0]->kill9();  // mid-stream: the capture takes several more seconds at this pace
  ASSERT_TRUE(feed.wait_for("nats sink 'md': reconnected to ")) << feed.output();
  EXPECT_EQ(feed.output().find("reconnected to " + url(client[0])), std::string::npos) << feed.output();
  ASSERT_EQ(feed.wait_exit(), 0) << feed.output();
  const std::string out = feed.output();
  const auto published = number_after(out, "nats sink 'md': published ");
  ASSERT_TRUE(published.has_value()) << out;
  EXPECT_NE(out.find("pending 0, failed 0"), std::string::npos) << out;
  const auto acked = number_after(out, ", acked ");
  ASSERT_TRUE(acked.has_value()) << out;
  EXPECT_EQ(*acked, *published) << out;
  if (std::getenv("HG_TEST_VERBOSE") != nullptr) std::fprintf(stderr, "%s\n", out.c_str());

  // Every update is in the stream exactly once: N messages, stream sequences 1..N, update sequences 1..N.
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  ASSERT_TRUE(eventually([&] {
    if (si != nullptr) jsStreamInfo_Destroy(si);
    si = nullptr;
    return js_GetStreamInfo(&si, js, "MD", nullptr, &jerr) == NATS_OK && si->State.Msgs == *published;
  })) << (si != nullptr ? si->State.Msgs : 0) << " messages in the stream, published " << *published << "\n" << out;
  EXPECT_EQ(si->State.FirstSeq, 1u);
  EXPECT_EQ(si->State.LastSeq, *published);
  jsStreamInfo_Destroy(si);
  std::vector<std::uint64_t> seqs;
  ASSERT_EQ(read_stream(url(client[1]) + "," + url(client[2]), "MD", *published, &seqs), "");
  std::set<std::uint64_t> unique(seqs.begin(), seqs.end());
  EXPECT_EQ(unique.size(), *published);
  EXPECT_EQ(*unique.begin(), 1u);
  EXPECT_EQ(*unique.rbegin(), *published);

  // A restarted edge replays the stream from its start (JetStream ordered consumer, deliver = "all") and
  // its SoupBinTCP subscriber ends with the capture's book.
  const std::uint16_t soup_port = free_port();
  write_file(dir_ + "/edge.toml",
             "[gateway]\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n[valves]\npolicy = \"spin\"\n"
             "spin_ns = \"20s\"\n[source.md]\ntype = \"nats\"\nservers = [\"" + url(client[1]) + "\", \"" +
                 url(client[2]) + "\"]\nsubjects = [\"md.*\"]\njetstream = true\nstream = \"MD\"\n"
             "deliver = \"all\"\nqueue_capacity = 65536\npipeline = \"passthrough\"\n"
             "[source.md.pipeline_options]\nkey = \"source\"\n"
             "[sink.subscribers]\ntype = \"soupbintcp\"\nlisten = \"127.0.0.1:" + std::to_string(soup_port) +
             "\"\nusername = \"tester\"\npassword = \"secret\"\nsession = \"EDGE000002\"\nretain = 1000000\n"
             "client_timeout = \"60s\"\n");
  GatewayProcess edge({"run", "--config", dir_ + "/edge.toml", "-q"});
  ASSERT_TRUE(edge.wait_for("nats source 'md': JetStream consumer on stream 'MD'")) << edge.output();
  SoupClient sub;
  ASSERT_TRUE(sub.connect_and_login(soup_port)) << edge.output_now();
  ASSERT_TRUE(sub.read_updates(*published)) << edge.output_now();
  EXPECT_EQ(sub.sequences.size(), *published);
  EXPECT_EQ(sub.book, ref);
  EXPECT_EQ(edge.terminate(), 0) << edge.output();

  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

/// Collects what arrives on `subject` (its own connection; libnats' thread appends under a mutex).
class Collector {
 public:
  Collector(const std::string& server, const std::string& subject) {
    if (natsConnection_ConnectTo(&nc_, server.c_str()) != NATS_OK) return;
    if (natsConnection_Subscribe(&sub_, nc_, subject.c_str(), &Collector::on_msg, this) != NATS_OK) return;
    natsSubscription_SetPendingLimits(sub_, -1, -1);
    ok_ = natsConnection_Flush(nc_) == NATS_OK;  // registered with the server before anything is published
  }
  ~Collector() {
    if (sub_ != nullptr) natsSubscription_Destroy(sub_);
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
  }
  static void on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
    auto* c = static_cast<Collector*>(self);
    std::lock_guard lock(c->mutex_);
    c->messages_.emplace_back(natsMsg_GetSubject(msg),
                              std::string(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
    natsMsg_Destroy(msg);
  }
  [[nodiscard]] bool ok() const { return ok_; }
  std::vector<std::pair<std::string, std::string>> messages() {
    std::lock_guard lock(mutex_);
    return messages_;
  }

 private:
  natsConnection* nc_ = nullptr;
  natsSubscription* sub_ = nullptr;
  bool ok_ = false;
  std::mutex mutex_;
  std::vector<std::pair<std::string, std::string>> messages_;
};

TEST_F(natsGateway, JsonUpdatesAndRawItchOnTypedSubjects) {
  const std::string cap = capture(5000, 4, nullptr);
  const std::uint16_t nats_port = free_port();
  NatsServer server({.port = nats_port, .log = dir_ + "/nats.log"});
  ASSERT_TRUE(server.start()) << server.log();
  Collector updates(url(nats_port), "md.T.*");
  Collector adds(url(nats_port), "md.A.*");
  Collector everything(url(nats_port), "md.>");
  ASSERT_TRUE(updates.ok() && adds.ok() && everything.ok());

  std::string config = feed_config(cap, "max", "\"" + url(nats_port) + "\"",
                                   "publish = \"all\"\npayload = \"json\"\nflush = \"asap\"\n");
  config = std::regex_replace(config, std::regex("output = \"updates\""), "output = \"both\"");
  config = std::regex_replace(config, std::regex("md\\.<SYMBOL>"), "md.<TYPE>.<SYMBOL>");
  write_file(dir_ + "/feed.toml", config);
  GatewayProcess feed({"run", "--config", dir_ + "/feed.toml", "-q"});
  ASSERT_EQ(feed.wait_exit(), 0) << feed.output() << "\n" << config;
  const auto published = number_after(feed.output(), "nats sink 'md': published ");
  ASSERT_TRUE(published.has_value()) << feed.output();
  EXPECT_NE(feed.output().find(", failed 0, pushback 0"), std::string::npos) << feed.output();

  // Updates arrive as JSON objects on md.T.<SYMBOL>; raw Add Orders as ITCH bytes on md.A.<SYMBOL>.
  ASSERT_TRUE(eventually([&] { return everything.messages().size() == *published; }))
      << everything.messages().size() << " of " << *published;
  std::vector<std::pair<std::string, std::string>> u;
  ASSERT_TRUE(eventually([&] {
    u = updates.messages();
    return !u.empty() && u.back().second.find("\"sequence\":") != std::string::npos &&
           number_after(u.back().second, "\"sequence\":") == std::optional<std::uint64_t>(u.size());
  })) << u.size() << " updates";
  const std::regex json(R"re(\{"type":"T","locate":\d+,"symbol":"([A-Z]+)","bid_price":\d+,"bid_qty":\d+,"ask_price":\d+,"ask_qty":\d+,"timestamp_ns":\d+,"sequence":(\d+),"stale":false\})re");
  for (std::size_t i = 0; i < u.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(u[i].second, m, json)) << u[i].second;
    EXPECT_EQ(u[i].first, "md.T." + m[1].str());
    EXPECT_EQ(std::stoull(m[2]), i + 1);  // core NATS on one connection keeps the order
  }
  std::vector<std::pair<std::string, std::string>> a;
  ASSERT_TRUE(eventually([&] {
    a = adds.messages();
    return !a.empty();
  }));
  EXPECT_LT(u.size() + a.size(), *published);  // the other ITCH types went to their own subjects
  for (const auto& [subject, payload] : a) {
    ASSERT_EQ(payload.size(), 36u) << subject;  // ITCH 5.0 Add Order, as received
    EXPECT_EQ(payload[0], 'A');
    EXPECT_EQ(subject.rfind("md.A.", 0), 0u) << subject;
  }
}

TEST_F(natsGateway, JetStreamSinkCreatesItsStreamAndEveryPublishIsAcked) {
  const std::string cap = capture(8000, 4, nullptr);
  const std::uint16_t nats_port = free_port();
  NatsServer server({.port = nats_port, .store = dir_ + "/js", .log = dir_ + "/nats.log"});
  ASSERT_TRUE(server.start()) << server.log();
  write_file(dir_ + "/feed.toml", feed_config(cap, "max", "\"" + url(nats_port) + "\"",
                                              "jetstream = true\nstream = \"MDX\"\nmax_pending = 256\n"));
  GatewayProcess feed({"run", "--config", dir_ + "/feed.toml", "-q"});
  ASSERT_EQ(feed.wait_exit(), 0) << feed.output();
  const std::string out = feed.output();
  EXPECT_NE(out.find("nats sink 'md': created stream 'MDX' (subjects md.*, replicas 1)"), std::string::npos) << out;
  const auto published = number_after(out, "nats sink 'md': published ");
  ASSERT_TRUE(published.has_value()) << out;
  EXPECT_GT(*published, 0u);
  EXPECT_NE(out.find("pending 0, failed 0"), std::string::npos) << out;
  EXPECT_EQ(number_after(out, ", acked "), published) << out;

  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, url(nats_port).c_str()), NATS_OK);
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  ASSERT_EQ(js_GetStreamInfo(&si, js, "MDX", nullptr, &jerr), NATS_OK);
  EXPECT_EQ(si->State.Msgs, *published);
  EXPECT_EQ(si->State.LastSeq, *published);
  jsStreamInfo_Destroy(si);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

TEST_F(natsGateway, NoServerAtStartIsRetriedWithBackoffThenPublishes) {
  const std::uint16_t nats_port = free_port();  // nothing listens there yet
  write_file(dir_ + "/gw.toml",
             "[gateway]\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n"
             "[source.gen]\ntype = \"synthetic\"\nrate = 2000\nkeys = 4\npipeline = \"passthrough\"\n"
             "[sink.md]\ntype = \"nats\"\nservers = [\"" + url(nats_port) + "\"]\nsubject = \"gen.all\"\n"
             "publish = \"all\"\nreconnect_wait = \"20ms\"\nreconnect_wait_max = \"100ms\"\nconnect_timeout = \"200ms\"\n");
  GatewayProcess gw({"run", "--config", dir_ + "/gw.toml", "-q"});
  std::string admin;
  ASSERT_TRUE(gw.wait_line("hypergate: admin on http://127.0.0.1:", &admin)) << gw.output();
  admin = admin.substr(0, admin.find_first_not_of("0123456789"));
  ASSERT_TRUE(gw.wait_for("nats sink 'md': no server reachable (" + url(nats_port) + "): retrying")) << gw.output();
  ASSERT_TRUE(gw.wait_for("hypergate: running")) << gw.output();

  // The run goes on and counts its attempts: /stats shows reconnect_attempts climbing.
  std::string stats;
  ASSERT_TRUE(eventually([&] {
    stats = sh("curl -s http://127.0.0.1:" + admin + "/stats");
    const auto attempts = number_after(stats, "\"reconnect_attempts\":");
    return attempts.has_value() && *attempts >= 3;
  })) << stats << gw.output_now();
  EXPECT_NE(stats.find("\"published\":"), std::string::npos) << stats;

  // A server appears on that port: the sink connects and what it buffered goes out.
  NatsServer server({.port = nats_port, .log = dir_ + "/nats.log"});
  ASSERT_TRUE(server.spawn());  // not awaited here: the sink's connect is what the test waits for
  ASSERT_TRUE(gw.wait_for("nats sink 'md': connected to " + url(nats_port))) << gw.output() << server.log();
  ASSERT_TRUE(eventually([&] {
    const std::string m = sh("curl -s http://127.0.0.1:" + admin + "/metrics");
    return m.find("hypergate_sink_detail{sink=\"md\",worker=\"0\",counter=\"published\"}") != std::string::npos;
  })) << gw.output_now();
  EXPECT_EQ(gw.terminate(), 0) << gw.output();
  const auto published = number_after(gw.output(), "nats sink 'md': published ");
  ASSERT_TRUE(published.has_value()) << gw.output();
  EXPECT_GT(*published, 0u);
  const auto attempts = number_after(gw.output(), "reconnect attempts ");
  ASSERT_TRUE(attempts.has_value()) << gw.output();
  EXPECT_GE(*attempts, 3u);
}

TEST_F(natsGateway, BadSubjectTemplateIsAConfigErrorWithItsPosition) {
  write_file(dir_ + "/bad.toml",
             "[gateway]\nworkers = 1\n[source.gen]\ntype = \"synthetic\"\npipeline = \"passthrough\"\n"
             "[sink.md]\ntype = \"nats\"\nsubject = \"md.<SYMBOL\"\n");
  GatewayProcess check({"config", "check", dir_ + "/bad.toml"});
  EXPECT_EQ(check.wait_exit(), 2) << check.output();
  EXPECT_NE(check.output().find(dir_ + "/bad.toml:8:11: sink.md.subject: bad subject template 'md.<SYMBOL': "
                                       "unterminated placeholder"),
            std::string::npos)
      << check.output();

  write_file(dir_ + "/bad2.toml",
             "[gateway]\nworkers = 1\n[source.gen]\ntype = \"synthetic\"\npipeline = \"passthrough\"\n"
             "[sink.md]\ntype = \"nats\"\nsubject = \"md..<SYMBOL>\"\nservers = [\"127.0.0.1:4222\"]\n");
  GatewayProcess check2({"run", "--config", dir_ + "/bad2.toml"});
  EXPECT_EQ(check2.wait_exit(), 2) << check2.output();
  EXPECT_NE(check2.output().find("bad2.toml:8:11: sink.md.subject: bad subject template 'md..<SYMBOL>': empty "
                                        "subject token"),
            std::string::npos)
      << check2.output();
  EXPECT_NE(check2.output().find("bad2.toml:9:11: sink.md.servers: '127.0.0.1:4222' is not a NATS server URL"),
            std::string::npos)
      << check2.output();
}

}  // namespace

/// One valve lane's counters, from /stats ("lanes":[...]) or the exit report ("lane   0 (worker 0, drop): ...").
struct LaneCounts {
  std::uint64_t in = 0, out = 0, dropped = 0, conflated = 0, in_flight = 0;
};

std::vector<LaneCounts> lanes_in_stats(const std::string& stats) {
  static const std::regex row(
      R"re("lane":\d+,"consumer":\d+,"counters":\{"in":(\d+),"out":(\d+),"dropped":(\d+),"conflated":(\d+),"in_flight":(\d+))re");
  std::vector<LaneCounts> out;
  for (auto it = std::sregex_iterator(stats.begin(), stats.end(), row); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    out.push_back({std::stoull(m[1]), std::stoull(m[2]), std::stoull(m[3]), std::stoull(m[4]), std::stoull(m[5])});
  }
  return out;
}

std::vector<LaneCounts> lanes_in_report(const std::string& report) {
  static const std::regex row(
      R"re(lane +\d+ \(worker \d+, \w+\): in (\d+) out (\d+) dropped (\d+) conflated (\d+) in_flight (\d+))re");
  std::vector<LaneCounts> out;
  for (auto it = std::sregex_iterator(report.begin(), report.end(), row); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    out.push_back({std::stoull(m[1]), std::stoull(m[2]), std::stoull(m[3]), std::stoull(m[4]), std::stoull(m[5])});
  }
  return out;
}

/// The pushback path, end to end: a synthetic feed (20k msg/s, 4 keys) into a nats sink on a gateway with
/// small valve lanes; the server is SIGKILLed mid-stream, so the sink's publishes are refused (core: the
/// small reconnect buffer fills, NATS_INSUFFICIENT_BUFFER; JetStream: max_pending publishes wait for acks
/// that never come) and handed back to the lane, whose policy (`policy`) drops or conflates. Checked from
/// /stats while the server is down and from the exit report: pushback > 0, the policy applied on the lanes,
/// in == out + dropped + conflated + in_flight on every lane, and every message the feed emitted is
/// published, failed, dropped or conflated (nothing lost silently). A server restarted on the same port:
/// the sink reconnects and publishes again.
void pushback_to_the_lane_policy(const std::string& dir, bool jetstream, const std::string& policy) {
  const std::uint16_t port = free_port();
  const std::string store = jetstream ? dir + "/js" : "";
  auto server =
      std::make_unique<NatsServer>(NatsServerOptions{.port = port, .store = store, .log = dir + "/nats1.log"});
  ASSERT_TRUE(server->start()) << server->log();
  const std::string sink_extra = jetstream ? "jetstream = true\nstream = \"GEN\"\nmax_pending = 32\n"
                                             "ack_wait = \"1s\"\ndrain_timeout = \"10s\"\n"
                                           : "reconnect_buffer = 4096\n";
  write_file(dir + "/gw.toml",
             "[gateway]\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n"
             "[valves]\nlanes = 4\ncapacity = 64\npolicy = \"" + policy + "\"\n"
             "[source.gen]\ntype = \"synthetic\"\nrate = 20000\nkeys = 4\npipeline = \"passthrough\"\n"
             "[source.gen.pipeline_options]\nkey = \"source\"\n"  // K0..K3: what conflation keeps per key
             "[sink.md]\ntype = \"nats\"\nservers = [\"" + url(port) + "\"]\nsubject = \"gen.all\"\npublish = \"all\"\n"
             "reconnect_wait = \"20ms\"\nreconnect_wait_max = \"100ms\"\n" + sink_extra);
  GatewayProcess gw({"run", "--config", dir + "/gw.toml", "-q"});
  std::string admin;
  ASSERT_TRUE(gw.wait_line("hypergate: admin on http://127.0.0.1:", &admin)) << gw.output();
  admin = admin.substr(0, admin.find_first_not_of("0123456789"));
  ASSERT_TRUE(gw.wait_for("nats sink 'md': connected to " + url(port))) << gw.output();
  if (jetstream) {
    ASSERT_TRUE(gw.wait_for("nats sink 'md': created stream 'GEN'")) << gw.output();
  }
  const auto stat = [&](const std::string& stats, const std::string& key) {
    return number_after(stats, "\"" + key + "\":").value_or(0);  // the last occurrence: the one instance
  };
  std::string stats;
  ASSERT_TRUE(eventually([&] {
    stats = sh("curl -s http://127.0.0.1:" + admin + "/stats");
    return stat(stats, "published") >= 2000;
  })) << stats << gw.output_now();
  const std::uint64_t pushback_before = stat(stats, "pushback");

  server->kill9();  // mid-stream: the feed goes on at 20k msg/s
  const std::string applied = policy == "conflate" ? "conflated" : "dropped";
  ASSERT_TRUE(eventually([&] {
    stats = sh("curl -s http://127.0.0.1:" + admin + "/stats");
    std::uint64_t lane_applied = 0;
    for (const LaneCounts& l : lanes_in_stats(stats)) lane_applied += policy == "conflate" ? l.conflated : l.dropped;
    return stat(stats, "pushback") > pushback_before && lane_applied > 0;
  })) << stats << gw.output_now();
  const std::vector<LaneCounts> down = lanes_in_stats(stats);
  ASSERT_FALSE(down.empty()) << stats;
  for (const LaneCounts& l : down) {
    EXPECT_EQ(l.in, l.out + l.dropped + l.conflated + l.in_flight) << stats;
  }
  const std::uint64_t published_down = stat(stats, "published");

  // The same port (and JetStream store), a new log.
  server = std::make_unique<NatsServer>(NatsServerOptions{.port = port, .store = store, .log = dir + "/nats2.log"});
  ASSERT_TRUE(server->spawn());
  ASSERT_TRUE(gw.wait_for("nats sink 'md': reconnected to " + url(port))) << gw.output() << server->log();
  ASSERT_TRUE(eventually([&] {
    stats = sh("curl -s http://127.0.0.1:" + admin + "/stats");
    return stat(stats, "published") >= published_down + 2000;
  })) << stats << gw.output_now();

  ASSERT_EQ(gw.terminate(), 0) << gw.output();
  const std::string out = gw.output();
  if (std::getenv("HG_TEST_VERBOSE") != nullptr) std::fprintf(stderr, "%s\n", out.c_str());
  const auto published = number_after(out, "nats sink 'md': published ");
  const auto failed = number_after(out, ", failed ");
  const auto pushback = number_after(out, ", pushback ");
  const auto emitted = number_after(out, "pipeline in ");
  ASSERT_TRUE(published && failed && pushback && emitted) << out;
  EXPECT_GT(*pushback, 0u) << out;
  const std::vector<LaneCounts> lanes = lanes_in_report(out);
  ASSERT_FALSE(lanes.empty()) << out;  // the lanes that carried traffic (4 keys may share lanes)
  std::uint64_t in = 0, sent = 0, dropped = 0, conflated = 0, in_flight = 0;
  for (const LaneCounts& l : lanes) {
    EXPECT_EQ(l.in, l.out + l.dropped + l.conflated + l.in_flight) << out;
    in += l.in;
    sent += l.out;
    dropped += l.dropped;
    conflated += l.conflated;
    in_flight += l.in_flight;
  }
  EXPECT_GT(policy == "conflate" ? conflated : dropped, 0u) << out;
  EXPECT_EQ(policy == "conflate" ? dropped : conflated, 0u) << out;
  EXPECT_EQ(in, *emitted) << out;  // every message the feed emitted reached a lane
  // What left the lanes is what the sink accepted: published or failed (publish = "all": nothing filtered).
  // JetStream: `failed` may also count published messages never acked, so nothing may fail there.
  if (jetstream) {
    EXPECT_EQ(*failed, 0u) << out;
    EXPECT_NE(out.find(", pending 0, "), std::string::npos) << out;  // every publish acked by the end
  }
  EXPECT_EQ(sent, *published + *failed) << out;
  EXPECT_EQ(*emitted, *published + *failed + dropped + conflated + in_flight) << out;
}

TEST_F(natsGateway, ServerKilledCoreSinkPushesBackAndTheLaneDropsThenPublishesAgain) {
  pushback_to_the_lane_policy(dir_, false, "drop");
}

TEST_F(natsGateway, ServerKilledJetStreamSinkPushesBackAndTheLaneConflatesThenPublishesAgain) {
  pushback_to_the_lane_policy(dir_, true, "conflate");
}
