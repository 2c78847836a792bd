// The market-data gateway end to end, with the real binary and real sockets on loopback:
//  1. `hypergate gen itch` writes a capture; `hypergate replay --book-json` computes its final top of book;
//     a gateway (udp multicast source -> itch pipeline -> soupbintcp sink) is fed the same capture by
//     `hypergate replay --send` onto a multicast group; a SoupBinTCP client logged in from sequence 1
//     receives normalized updates whose last value per symbol equals the replay's book; SIGTERM ends the
//     session with Z.
//  2. Gap recovery: the test sends a generated feed with two ranges left out, and runs the MoldUDP64
//     re-request server (answering from the full feed); the gateway detects both gaps, recovers them, and
//     the subscriber's final book equals the simple reference book over the full feed.
//  3. Without a re-request server the same loss is reported (exact ranges in --book-json) and not recovered.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../unit/itch_reference_book.hpp"
#include "gateway_process.hpp"
#include "loopback.hpp"
#include "market/tob_update.hpp"
#include "protocols/itch_generator.hpp"
#include "protocols/moldudp64.hpp"

namespace {

using hypergate::test::connect_to;
using hypergate::test::free_port;
using hypergate::test::GatewayProcess;
using hypergate::test::send_all;
using hypergate::test::sh;
namespace mold = hypergate::protocols::mold;
namespace itch = hypergate::protocols::itch;

struct Top {
  std::uint64_t bid_price = 0, bid_qty = 0, ask_price = 0, ask_qty = 0;
  bool operator==(const Top&) const = default;
};

std::string tmpdir() {
  char tmpl[] = "/tmp/hg_md_XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d != nullptr ? d : "/tmp";
}

// A multicast group unique enough per run (the port is free; the group's low bytes come from the pid).
std::string group() {
  const unsigned p = static_cast<unsigned>(getpid());
  return "239.193." + std::to_string((p >> 8) & 0xFF) + "." + std::to_string(p & 0xFF);
}

// A SoupBinTCP client: login, then sequenced data (normalized top-of-book updates) folded into a book.
class SoupClient {
 public:
  bool connect_and_login(std::uint16_t port, const std::string& user, const std::string& pass) {
    for (int i = 0; i < 200 && fd_ < 0; ++i) {  // "running" is printed once adapters started; retry anyway
      fd_ = connect_to(port);
      if (fd_ < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (fd_ < 0) return false;
    std::string body = "L";
    body += pad(user, 6) + pad(pass, 10) + pad("", 10) + lpad("1", 20);
    std::string pkt;
    pkt += static_cast<char>(body.size() >> 8);
    pkt += static_cast<char>(body.size() & 0xFF);
    pkt += body;
    if (!send_all(fd_, pkt)) return false;
    char type = 0;
    std::string payload;
    if (!next(type, payload)) return false;
    return type == 'A';
  }
  /// Reads one packet (5 s receive timeout from connect_to()).
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
  /// Folds sequenced updates until a server heartbeat arrives after `quiet` has become true (the sender
  /// finished: a heartbeat means a second with nothing left to send). Returns false on a broken stream.
  bool read_until_idle(const std::atomic<bool>& quiet, int max_heartbeats = 30) {
    int heartbeats = 0;
    for (;;) {
      char type = 0;
      std::string payload;
      if (!next(type, payload)) return false;
      if (type == 'S') {
        hypergate::market::TobUpdate u;
        if (hypergate::market::decode_tob_update(
                std::as_bytes(std::span<const char>(payload.data(), payload.size())), u) != hypergate::Status::Ok)
          return false;
        if (u.sequence != last_sequence_ + 1) out_of_order_ = true;
        last_sequence_ = u.sequence;
        book[std::string(u.symbol_trimmed())] = Top{u.bid_price, u.bid_qty, u.ask_price, u.ask_qty};
        stale = stale || u.stale();
        ++updates;
      } else if (type == 'H') {
        if (quiet.load() || ++heartbeats > max_heartbeats) return quiet.load();
      } else if (type == 'Z') {
        return false;
      }
    }
  }
  int fd() const { return fd_; }
  ~SoupClient() {
    if (fd_ >= 0) close(fd_);
  }
  std::map<std::string, Top> book;
  std::uint64_t updates = 0;
  bool stale = false;
  bool out_of_order_ = false;

 private:
  static std::string pad(const std::string& s, std::size_t n) { return (s + std::string(n, ' ')).substr(0, n); }
  static std::string lpad(const std::string& s, std::size_t n) { return std::string(n - s.size(), ' ') + s; }
  int fd_ = -1;
  std::uint64_t last_sequence_ = 0;
};

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

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string gateway_config(const std::string& grp, std::uint16_t feed_port, std::uint16_t soup_port,
                           const std::string& extra_pipeline_options = "") {
  return "[gateway]\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n[valves]\npolicy = \"spin\"\nspin_ns = 1000000\n"
         "[source.feed]\ntype = \"udp\"\nlisten = \"" + grp + ":" + std::to_string(feed_port) +
         "\"\ninterface = \"127.0.0.1\"\nrcvbuf = 4194304\npipeline = \"itch\"\n"
         "[source.feed.pipeline_options]\noutput = \"updates\"\nsinks = [\"subscribers\"]\n" + extra_pipeline_options +
         "[sink.subscribers]\ntype = \"soupbintcp\"\nlisten = \"127.0.0.1:" + std::to_string(soup_port) +
         "\"\nusername = \"tester\"\npassword = \"secret\"\nsession = \"MDTEST0001\"\nheartbeat_interval = \"300ms\"\n"
         "client_timeout = \"30s\"\nretain = 2000000\n";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

class MarketDataTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = tmpdir(); }
  void TearDown() override { sh("rm -rf '" + dir_ + "'"); }
  std::string dir_;
};

TEST_F(MarketDataTest, CaptureOverMulticastReachesASoupBinTcpSubscriberWithTheReplayBook) {
  const std::string bin = hypergate::test::kGatewayBinary;
  const std::string grp = group();
  const std::uint16_t feed_port = free_port(SOCK_DGRAM);
  const std::uint16_t soup_port = free_port();
  const std::string cap = dir_ + "/feed.pcap";
  const std::string gen = sh(bin + " gen itch --out " + cap + " --messages 40000 --symbol-count 12 --seed 5 --dst " +
                             grp + ":" + std::to_string(feed_port) + " 2>&1");
  ASSERT_NE(gen.find("40000 messages"), std::string::npos) << gen;
  const std::string replay = sh(bin + " replay " + cap + " -q --book-json " + dir_ + "/ref.json 2>&1");
  ASSERT_NE(replay.find("40000 ITCH messages"), std::string::npos) << replay;
  const auto ref = parse_book_json(read_file(dir_ + "/ref.json"));
  ASSERT_EQ(ref.size(), 12u) << read_file(dir_ + "/ref.json");

  write_file(dir_ + "/gw.toml", gateway_config(grp, feed_port, soup_port));
  GatewayProcess gw({"run", "--config", dir_ + "/gw.toml", "-q"});
  ASSERT_TRUE(gw.spawned());
  ASSERT_TRUE(gw.wait_for("hypergate: running")) << gw.output();
  SoupClient client;
  ASSERT_TRUE(client.connect_and_login(soup_port, "tester", "secret")) << gw.output();

  std::atomic<bool> sent{false};
  std::thread sender([&] {
    const std::string out = sh(bin + " replay " + cap + " -q --speed 20000pps --interface 127.0.0.1 --send " +
                               grp + ":" + std::to_string(feed_port) + " 2>&1");
    EXPECT_NE(out.find("0 send errors"), std::string::npos) << out;
    sent.store(true);
  });
  const bool ok = client.read_until_idle(sent);
  sender.join();
  ASSERT_TRUE(ok) << gw.output();
  EXPECT_FALSE(client.out_of_order_);
  EXPECT_FALSE(client.stale);
  EXPECT_EQ(client.book, ref);

  kill(gw.pid(), SIGTERM);
  char type = 0;
  std::string payload;
  bool got_z = false;
  while (client.next(type, payload)) got_z = got_z || type == 'Z';
  EXPECT_TRUE(got_z);
  EXPECT_EQ(gw.wait_exit(), 0) << gw.output();
  EXPECT_NE(gw.output().find("source feed (udp)"), std::string::npos) << gw.output();
}

// A MoldUDP64 re-request server answering from the full feed: each request -> the packets covering it.
class RerequestServer {
 public:
  explicit RerequestServer(const itch::GeneratedFeed& feed) : feed_(feed) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    timeval tv{0, 100'000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this] { serve(); });
  }
  ~RerequestServer() {
    stop_.store(true);
    thread_.join();
    close(fd_);
  }
  std::uint16_t port() const { return port_; }
  std::uint64_t requests() const { return requests_.load(); }

 private:
  void serve() {
    std::array<std::byte, 2048> buf{};
    while (!stop_.load()) {
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      const ssize_t n = recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n <= 0) continue;
      mold::Request r;
      if (mold::parse_request(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(n)), r) !=
          mold::PacketError::Ok)
        continue;
      requests_.fetch_add(1);
      const auto [first, last] = feed_.packets_for(r.sequence, r.count);
      for (std::size_t i = first; i < last; ++i) {
        const auto b = feed_.bytes(i);
        sendto(fd_, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
      }
    }
  }
  const itch::GeneratedFeed& feed_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> requests_{0};
  std::thread thread_;
};

// Sends the live (not dropped) packets of `feed` to group:port, paced (a few hundred microseconds apart).
void send_feed(const itch::GeneratedFeed& feed, const std::string& grp, std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  in_addr lo{};
  lo.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof lo);
  const unsigned char loop = 1;
  setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, grp.c_str(), &to.sin_addr);
  for (const auto& p : feed.packets) {
    if (p.dropped) continue;
    const auto b = feed.bytes(p);
    sendto(fd, b.data(), b.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  close(fd);
}

itch::GeneratedFeed lossy_feed() {
  itch::GeneratorOptions g;
  g.symbol_count = 10;
  g.message_count = 30'000;
  g.seed = 9;
  g.max_packet_bytes = 1400;  // as `hypergate gen itch` by default: the same options, the same packets
  g.drop_ranges = {{3000, 3100}, {12000, 12000}};
  return std::move(itch::generate_feed(g).value());
}

std::map<std::string, Top> reference_book(const itch::GeneratedFeed& feed) {
  hypergate::test::ReferenceBook ref;
  for (const auto& p : feed.packets) {  // every packet: the book the gateway must reach after recovery
    mold::PacketView v;
    if (mold::PacketView::parse(feed.bytes(p), v) != mold::PacketError::Ok) continue;
    for (const mold::MessageBlock b : v.messages()) ref.apply(b.data);
  }
  std::map<std::string, Top> out;
  for (const auto& [locate, padded] : ref.names()) {
    const auto t = ref.top(locate);
    out[padded.substr(0, padded.find_last_not_of(' ') + 1)] = Top{t.bid_price, t.bid_qty, t.ask_price, t.ask_qty};
  }
  return out;
}

TEST_F(MarketDataTest, GapsAreRecoveredFromTheRerequestServer) {
  const itch::GeneratedFeed feed = lossy_feed();
  std::size_t dropped = 0;
  for (const auto& p : feed.packets) dropped += p.dropped;
  ASSERT_GE(dropped, 2u);
  RerequestServer server(feed);
  const std::string grp = group();
  const std::uint16_t feed_port = free_port(SOCK_DGRAM);
  const std::uint16_t soup_port = free_port();
  write_file(dir_ + "/gw.toml", gateway_config(grp, feed_port, soup_port,
                                               "rerequest = \"127.0.0.1:" + std::to_string(server.port()) +
                                                   "\"\nretry_initial = \"5ms\"\nretry_attempts = 20\n"));
  GatewayProcess gw({"run", "--config", dir_ + "/gw.toml", "-q"});
  ASSERT_TRUE(gw.wait_for("hypergate: running")) << gw.output();
  SoupClient client;
  ASSERT_TRUE(client.connect_and_login(soup_port, "tester", "secret")) << gw.output();

  std::atomic<bool> sent{false};
  std::thread sender([&] {
    send_feed(feed, grp, feed_port);
    sent.store(true);
  });
  const bool ok = client.read_until_idle(sent);
  sender.join();
  ASSERT_TRUE(ok) << gw.output();
  EXPECT_GE(server.requests(), 2u);
  EXPECT_FALSE(client.stale) << "every gap was recoverable";
  EXPECT_FALSE(client.out_of_order_);
  EXPECT_EQ(client.book, reference_book(feed));

  kill(gw.pid(), SIGTERM);
  EXPECT_EQ(gw.wait_exit(), 0) << gw.output();
  // The report names the two gaps the pipeline saw.
  EXPECT_NE(gw.output().find("gaps 2"), std::string::npos) << gw.output();
}

TEST_F(MarketDataTest, ReplayReportsLossWithExactRangesWhenThereIsNoRerequestServer) {
  const std::string bin = hypergate::test::kGatewayBinary;
  const std::string cap = dir_ + "/lossy.pcap";
  const std::string gen = sh(bin + " gen itch --out " + cap +
                             " --messages 30000 --symbol-count 10 --seed 9 --drop 3000-3100 --drop 12000-12000 2>&1");
  ASSERT_NE(gen.find("30000 messages"), std::string::npos) << gen;
  const std::string out = sh(bin + " replay " + cap + " -q --book-json " + dir_ + "/b.json 2>&1");
  ASSERT_NE(out.find("gaps: 2"), std::string::npos) << out;
  // The exact missing ranges: the sequences of the packets the generator left out.
  const itch::GeneratedFeed feed = lossy_feed();
  std::string ranges;
  std::uint64_t first = 0, last = 0;
  for (const auto& p : feed.packets) {
    if (!p.dropped) continue;
    if (first != 0 && last + 1 == p.first_sequence) {
      last = p.first_sequence + p.count - 1;
      continue;
    }
    if (first != 0) ranges += (ranges.empty() ? "" : ", ") + ("[" + std::to_string(first) + ", " + std::to_string(last) + "]");
    first = p.first_sequence;
    last = p.first_sequence + p.count - 1;
  }
  ranges += (ranges.empty() ? "" : ", ") + ("[" + std::to_string(first) + ", " + std::to_string(last) + "]");
  const std::string json = read_file(dir_ + "/b.json");
  EXPECT_NE(json.find("\"gaps\": [" + ranges + "]"), std::string::npos) << json << "\nwant " << ranges;
  EXPECT_NE(json.find("\"stale\": true"), std::string::npos) << json;
}

}  // namespace
