// `soupbintcp` sink end to end: the real `hypergate` binary runs a synthetic source (count = N,
// keys = K) -> passthrough pipeline -> soupbintcp sink on one worker, and real TCP clients speak
// SoupBinTCP 3.0 to it: bad credentials get J; a login from sequence 1 gets A then N S packets whose
// payloads are the synthetic source's; sequence 0 is live only; a replay from N-10 gets exactly the
// last 10; a silent client gets H then is dropped after client_timeout; a client sending R stays; O
// closes; SIGTERM sends Z, closes and exits 0. tshark (the SoupBinTCP dissector) judges the bytes a
// client received, written into a pcap by text2pcap: Login Accepted and Sequenced Data, nothing
// malformed and no expert info.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gateway_process.hpp"
#include "loopback.hpp"

namespace {

using namespace std::chrono_literals;
using namespace hypergate::test;

constexpr int kCount = 200;       // messages the synthetic source produces
constexpr int kKeys = 8;
constexpr int kSize = 32;         // payload bytes: sequence number (8, little-endian) + filler
const std::string kSession = "HGTEST";

/// What the synthetic source puts in message `seq` (see adapters/builtin/synthetic_source.cpp).
std::string synthetic_payload(std::uint64_t seq) {
  std::string p(kSize, '\0');
  for (int b = 0; b < 8; ++b) p[static_cast<std::size_t>(b)] = static_cast<char>((seq >> (8 * b)) & 0xFF);
  for (int i = 8; i < kSize; ++i) p[static_cast<std::size_t>(i)] = static_cast<char>('a' + i % 26);
  return p;
}

std::uint64_t payload_sequence(const std::string& p) {
  std::uint64_t v = 0;
  for (int b = 7; b >= 0; --b) v = (v << 8) | static_cast<unsigned char>(p[static_cast<std::size_t>(b)]);
  return v;
}

struct Packet {
  char type = 0;
  std::string payload;
  std::string raw;  // the whole packet as received
};

/// A SoupBinTCP client on a blocking socket (5 s receive timeout from connect_to()).
class Client {
 public:
  explicit Client(std::uint16_t port) : fd_(connect_to(port)) {}
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  [[nodiscard]] bool connected() const { return fd_ >= 0; }

  bool login(const std::string& user, const std::string& pass, const std::string& session, std::uint64_t seq) {
    auto pad = [](std::string s, std::size_t n) {
      s.resize(n, ' ');
      return s;
    };
    std::string digits = std::to_string(seq);
    const std::string payload = pad(user, 6) + pad(pass, 10) + pad(session, 10) + std::string(20 - digits.size(), ' ') + digits;
    return send_packet('L', payload);
  }

  bool send_packet(char type, const std::string& payload) {
    std::string p;
    p.push_back(static_cast<char>((payload.size() + 1) >> 8));
    p.push_back(static_cast<char>((payload.size() + 1) & 0xFF));
    p.push_back(type);
    p += payload;
    return send_all(fd_, p);
  }

  /// The next packet; type 0 when the connection closed (or the receive timed out).
  Packet next(int timeout_ms = 5000) {
    set_timeout(timeout_ms);
    Packet p;
    const std::string header = recv_exactly(fd_, 2);
    if (header.size() != 2) {
      closed_ = header.empty();
      return p;
    }
    const std::size_t length = (static_cast<std::size_t>(static_cast<unsigned char>(header[0])) << 8) |
                               static_cast<unsigned char>(header[1]);
    const std::string body = recv_exactly(fd_, length);
    if (body.size() != length || length == 0) return p;
    p.type = body[0];
    p.payload = body.substr(1);
    p.raw = header + body;
    stream_ += p.raw;
    return p;
  }

  /// True when the peer closed the connection (a read returned 0) within `timeout_ms`, skipping
  /// heartbeats; false if anything else arrived or nothing happened.
  bool closed_by_peer(int timeout_ms = 5000) {
    for (;;) {
      const Packet p = next(timeout_ms);
      if (p.type == 'H') continue;
      return p.type == 0 && closed_;
    }
  }

  [[nodiscard]] const std::string& stream() const { return stream_; }

 private:
  void set_timeout(int ms) {
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  int fd_ = -1;
  bool closed_ = false;
  std::string stream_;
};

/// The gateway as a child process: synthetic -> passthrough -> soupbintcp, one worker. An `echo`
/// source with no clients keeps the gateway running once the synthetic source has finished.
class Gateway {
 public:
  explicit Gateway(const std::string& sink_extra = "") : port_(free_port()), config_(dir_.path() + "/soup.toml") {
    const std::uint16_t keep_port = free_port();
    std::ofstream(config_) << "[gateway]\nworkers = 1\n\n[admin]\nenabled = false\n\n"
                           << "[source.synth]\ntype = \"synthetic\"\nrate = 0\ncount = " << kCount
                           << "\nkeys = " << kKeys << "\nsize = " << kSize << "\npipeline = \"passthrough\"\n"
                           << "[source.synth.pipeline_options]\nkey = \"source\"\n\n"
                           << "[source.keepalive]\ntype = \"echo\"\nlisten = \"127.0.0.1:" << keep_port << "\"\n\n"
                           << "[sink.subscribers]\ntype = \"soupbintcp\"\nlisten = \"127.0.0.1:" << port_ << "\"\n"
                           << "username = \"hguser\"\npassword = \"secret\"\nsession = \"" << kSession << "\"\n"
                           << "heartbeat_interval = \"250ms\"\nclient_timeout = \"2s\"\nmax_subscribers = 16\n"
                           << sink_extra;
  }

  /// Ready when the gateway says it runs and the soupbintcp listener accepts.
  bool start() {
    process_.emplace(std::vector<std::string>{"run", "--config", config_});
    return process_->wait_for("hypergate: running") && wait_until_accepting(port_);
  }

  /// SIGTERM, then the exit status (-1 when it did not exit normally).
  int terminate() { return process_ ? process_->terminate() : -1; }

  /// What the gateway printed so far (all of it after terminate()).
  [[nodiscard]] std::string log() { return process_ ? process_->output_now() : std::string(); }
  [[nodiscard]] const std::string& config() const { return config_; }
  [[nodiscard]] const std::string& dir() const { return dir_.path(); }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  TempDir dir_{"hg_soup"};  // declared first: removed after the process is gone
  std::uint16_t port_;
  std::string config_;
  std::optional<GatewayProcess> process_;
};

/// Writes `stream` (whole SoupBinTCP packets) as server->client TCP segments of at most ~1400 bytes,
/// cut at packet boundaries, and returns tshark's verbose decoding.
std::string tshark_decode(const std::string& stream, const std::string& dir) {
  const std::string text = dir + "/stream.txt";
  const std::string pcap = dir + "/stream.pcap";
  {
    std::ofstream out(text);
    std::size_t at = 0;
    while (at < stream.size()) {
      std::size_t end = at;
      while (end + 2 <= stream.size()) {  // extend by whole packets
        const std::size_t len = (static_cast<std::size_t>(static_cast<unsigned char>(stream[end])) << 8) |
                                static_cast<unsigned char>(stream[end + 1]);
        if (end + 2 + len > stream.size() || (end != at && end + 2 + len - at > 1400)) break;
        end += 2 + len;
      }
      if (end == at) break;
      for (std::size_t i = at; i < end; i += 16) {  // one text2pcap packet: offsets restart at 0
        char line[128];
        int n = std::snprintf(line, sizeof(line), "%06zx", i - at);
        for (std::size_t j = i; j < std::min(end, i + 16); ++j)
          n += std::snprintf(line + n, sizeof(line) - static_cast<std::size_t>(n), " %02x",
                             static_cast<unsigned char>(stream[j]));
        out << line << "\n";
      }
      at = end;
    }
  }
  (void)sh("text2pcap -q -T 9000,40000 " + text + " " + pcap + " 2>&1");
  return sh("tshark -r " + pcap + " -d tcp.port==9000,soupbintcp -V 2>&1");
}

/// Waits until the whole synthetic run is in the session (a replay from 1 yields kCount messages), so
/// that afterwards a live subscriber sees only heartbeats.
bool session_complete(std::uint16_t port) {
  Client c(port);
  if (!c.login("hguser", "secret", "", 1) || c.next().type != 'A') return false;
  for (int n = 0; n < kCount;) {
    const Packet p = c.next();
    if (p.type == 'S') ++n;
    else if (p.type != 'H') return false;
  }
  return c.send_packet('O', "") && c.closed_by_peer();
}

std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

TEST(SoupBinTcp, ConfigCheckKnowsTheTypeAndRejectsBadValues) {
  Gateway gw;
  const std::string ok = sh(kGatewayBinary + " config check " + gw.config() + " 2>&1; echo rc=$?");
  EXPECT_NE(ok.find("rc=0"), std::string::npos) << ok;
  const std::string bad = sh(kGatewayBinary + " config check " + gw.config() +
                             " --set sink.subscribers.slow_consumer=drop 2>&1; echo rc=$?");
  EXPECT_EQ(bad.find("rc=0"), std::string::npos) << bad;
  EXPECT_NE(bad.find("slow_consumer"), std::string::npos) << bad;
  const std::string no_user = sh(kGatewayBinary + " config check " + gw.config() +
                                 " --set sink.subscribers.username=toolongname 2>&1; echo rc=$?");
  EXPECT_EQ(no_user.find("rc=0"), std::string::npos) << no_user;
}

TEST(SoupBinTcp, LoginReplayLiveAndTailThenTsharkDecodesTheStream) {
  Gateway gw;
  ASSERT_TRUE(gw.start()) << gw.log();

  {  // bad credentials -> J 'A', then the server closes
    Client c(gw.port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.login("hguser", "wrong", "", 1));
    const Packet p = c.next();
    EXPECT_EQ(p.type, 'J');
    EXPECT_EQ(p.payload, "A");
    EXPECT_TRUE(c.closed_by_peer());
  }
  {  // unknown session -> J 'S'
    Client c(gw.port());
    ASSERT_TRUE(c.login("hguser", "secret", "NOSUCH", 1));
    const Packet p = c.next();
    EXPECT_EQ(p.type, 'J');
    EXPECT_EQ(p.payload, "S");
  }

  // From sequence 1: A, then every message the synthetic source produced.
  Client full(gw.port());
  ASSERT_TRUE(full.login("hguser", "secret", kSession, 1));
  const Packet a = full.next();
  ASSERT_EQ(a.type, 'A');
  ASSERT_EQ(a.payload.size(), 30u);
  EXPECT_EQ(a.payload.substr(0, 10), std::string(10 - kSession.size(), ' ') + kSession);
  EXPECT_EQ(a.payload.substr(10), std::string(19, ' ') + "1");
  std::vector<std::string> session;  // payloads in session order
  while (session.size() < static_cast<std::size_t>(kCount)) {
    const Packet p = full.next();
    if (p.type == 'H') continue;
    ASSERT_EQ(p.type, 'S') << "after " << session.size() << " messages";
    session.push_back(p.payload);
  }
  // Every synthetic message exactly once, byte for byte; per key in source order (the valves keep
  // per-key order; different keys may interleave differently through the lanes).
  std::set<std::uint64_t> seen;
  std::map<std::uint64_t, std::uint64_t> last_per_key;
  for (const std::string& p : session) {
    ASSERT_EQ(p.size(), static_cast<std::size_t>(kSize));
    const std::uint64_t seq = payload_sequence(p);
    EXPECT_EQ(p, synthetic_payload(seq));
    EXPECT_TRUE(seen.insert(seq).second) << "duplicate " << seq;
    const std::uint64_t key = (seq - 1) % kKeys;
    EXPECT_GT(seq, last_per_key[key]);
    last_per_key[key] = seq;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kCount));
  EXPECT_EQ(*seen.begin(), 1u);
  EXPECT_EQ(*seen.rbegin(), static_cast<std::uint64_t>(kCount));

  {  // sequence 0: live only -> A with the next sequence, then heartbeats and no data
    Client live(gw.port());
    ASSERT_TRUE(live.login("hguser", "secret", "", 0));
    const Packet p = live.next();
    ASSERT_EQ(p.type, 'A');
    EXPECT_EQ(p.payload.substr(10), std::string(17, ' ') + std::to_string(kCount + 1));
    const Packet q = live.next();
    EXPECT_EQ(q.type, 'H');
  }
  {  // replay of the last 10 (the requested sequence is the next one wanted: N-9 after N-10 seen),
     // identical to the full stream
    Client tail(gw.port());
    ASSERT_TRUE(tail.login("hguser", "secret", "", kCount - 9));
    const Packet p = tail.next();
    ASSERT_EQ(p.type, 'A');
    EXPECT_EQ(p.payload.substr(10), std::string(17, ' ') + std::to_string(kCount - 9));
    for (int s = kCount - 9; s <= kCount; ++s) {
      const Packet d = tail.next();
      ASSERT_EQ(d.type, 'S');
      EXPECT_EQ(d.payload, session[static_cast<std::size_t>(s - 1)]) << "sequence " << s;
    }
    EXPECT_EQ(tail.next().type, 'H');  // and nothing more
  }

  // tshark decodes what the full client received.
  const std::string decoded = tshark_decode(full.stream(), gw.dir());
  EXPECT_EQ(count_of(decoded, "SoupBinTCP, Login Accepted"), 1u) << decoded.substr(0, 2000);
  EXPECT_EQ(count_of(decoded, "SoupBinTCP, Sequenced Data"), static_cast<std::size_t>(kCount));
  EXPECT_EQ(decoded.find("Malformed"), std::string::npos);
  EXPECT_EQ(decoded.find("Expert Info"), std::string::npos);
  EXPECT_NE(decoded.find("Session:     " + kSession), std::string::npos);

  EXPECT_EQ(gw.terminate(), 0) << gw.log();
  const std::string log = gw.log();
  EXPECT_NE(log.find("logins_accepted=3 "), std::string::npos) << log;
  EXPECT_NE(log.find("logins_rejected=2 "), std::string::npos) << log;
}

TEST(SoupBinTcp, HeartbeatsTimeoutRefreshAndLogout) {
  Gateway gw;
  ASSERT_TRUE(gw.start()) << gw.log();
  ASSERT_TRUE(session_complete(gw.port()));
  Client silent(gw.port());
  ASSERT_TRUE(silent.login("hguser", "secret", "", 0));
  Client refresh(gw.port());
  ASSERT_TRUE(refresh.login("hguser", "secret", "", 0));
  ASSERT_EQ(silent.next().type, 'A');
  ASSERT_EQ(refresh.next().type, 'A');

  // The refreshing client sends R every 250 ms for 3 s (client_timeout is 2 s) and only ever gets H.
  int heartbeats = 0;
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(refresh.send_packet('R', ""));
    const Packet p = refresh.next(1000);
    ASSERT_EQ(p.type, 'H') << "round " << i;
    ++heartbeats;
  }
  EXPECT_GE(heartbeats, 12);

  // The silent one got heartbeats too, and has been dropped by now (it sent nothing for > 2 s).
  int silent_heartbeats = 0;
  for (;;) {
    const Packet p = silent.next();
    if (p.type != 'H') {
      EXPECT_EQ(p.type, 0);
      break;
    }
    ++silent_heartbeats;
  }
  EXPECT_GE(silent_heartbeats, 2);

  // O: the server closes the connection.
  ASSERT_TRUE(refresh.send_packet('O', ""));
  EXPECT_TRUE(refresh.closed_by_peer());

  EXPECT_EQ(gw.terminate(), 0);
  const std::string log = gw.log();
  EXPECT_NE(log.find("timeouts=1 "), std::string::npos) << log;
  EXPECT_NE(log.find("logins_accepted=3 "), std::string::npos) << log;
}

TEST(SoupBinTcp, SigtermSendsEndOfSessionAndExitsZero) {
  Gateway gw;
  ASSERT_TRUE(gw.start()) << gw.log();
  ASSERT_TRUE(session_complete(gw.port()));
  Client c(gw.port());
  ASSERT_TRUE(c.login("hguser", "secret", "", 0));
  ASSERT_EQ(c.next().type, 'A');
  // Wait for a heartbeat so the login has certainly been processed, then stop the gateway.
  ASSERT_EQ(c.next().type, 'H');
  std::thread stopper([&gw] {
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(gw.terminate(), 0);
  });
  char last = 0;
  for (;;) {
    const Packet p = c.next();
    if (p.type == 0) break;
    last = p.type;
  }
  stopper.join();
  EXPECT_EQ(last, 'Z');
  const std::string decoded = tshark_decode(c.stream(), gw.dir());
  EXPECT_EQ(count_of(decoded, "SoupBinTCP, End of Session"), 1u) << decoded.substr(0, 2000);
  EXPECT_EQ(decoded.find("Malformed"), std::string::npos);
}

}  // namespace
