// `udp` source and sink end to end: the real `hypergate` binary receives datagrams on a multicast
// group over loopback (udp source), passes them through the `passthrough` pipeline (one lane: key =
// source, so order is kept) to a MoldUDP64 republisher (udp sink, unicast to a test socket). The
// test checks the same payloads come out in order with contiguous sequence numbers and an end of
// session after SIGTERM, then has tshark (the judge of the format) decode what it received:
// MoldUDP64 fields present, no "Malformed" and no expert warnings.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway_process.hpp"
#include "loopback.hpp"
#include "protocols/moldudp64.hpp"

namespace {

using namespace std::chrono_literals;
using namespace hypergate::test;
namespace mold = hypergate::protocols::mold;

constexpr const char* kGroup = "239.77.9.9";

/// A UDP socket on 127.0.0.1:0 with a 5 s receive timeout, also able to send multicast on loopback.
class Udp {
 public:
  Udp() : fd_(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    in_addr lo{};
    lo.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof(lo));
    const int one = 1;
    setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one));
  }
  ~Udp() { close(fd_); }
  Udp(const Udp&) = delete;
  Udp& operator=(const Udp&) = delete;

  bool send_to(const char* ip, std::uint16_t port, const std::string& payload) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    return sendto(fd_, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) ==
           static_cast<ssize_t>(payload.size());
  }
  std::string receive() {
    std::string buf(65536, '\0');
    const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
    buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return buf;
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  int fd_;
  std::uint16_t port_ = 0;
};

/// The gateway as a child process: udp source on a multicast group -> passthrough -> udp sink.
class Gateway {
 public:
  explicit Gateway(std::uint16_t sink_port) : feed_port_(free_port(SOCK_DGRAM)), config_(dir_.path() + "/udp.toml") {
    std::ofstream(config_) << "[gateway]\nworkers = 1\n\n[admin]\nenabled = false\n\n"
                           << "[source.feed]\ntype = \"udp\"\nlisten = \"" << kGroup << ":" << feed_port_ << "\"\n"
                           << "interface = \"127.0.0.1\"\nrcvbuf = 1048576\npipeline = \"passthrough\"\n"
                           << "[source.feed.pipeline_options]\nkey = \"source\"\n\n"
                           << "[sink.republish]\ntype = \"udp\"\ndestination = \"127.0.0.1:" << sink_port << "\"\n"
                           << "framing = \"moldudp64\"\nsession = \"HGTEST\"\nmtu = 400\n"
                           << "heartbeat_interval = \"250ms\"\n";
  }

  bool start() {
    process_.emplace(std::vector<std::string>{"run", "--config", config_});
    // "running" is printed before the source has joined the group; its rcvbuf line comes after the
    // join, so from then on datagrams are queued, not lost.
    return process_->wait_for("hypergate: running") && process_->wait_for("udp source 'feed': rcvbuf");
  }

  /// SIGTERM, then the exit status (-1 when it did not exit normally).
  int terminate() { return process_ ? process_->terminate() : -1; }

  /// What the gateway printed so far.
  [[nodiscard]] std::string log() { return process_ ? process_->output_now() : std::string(); }
  [[nodiscard]] const std::string& dir() const { return dir_.path(); }
  [[nodiscard]] const std::string& config() const { return config_; }
  [[nodiscard]] std::uint16_t feed_port() const { return feed_port_; }

 private:
  TempDir dir_{"hg_udp"};  // declared first: removed after the process is gone
  std::uint16_t feed_port_;
  std::string config_;
  std::optional<GatewayProcess> process_;
};

struct Packet {
  std::uint64_t sequence = 0;
  std::uint16_t count = 0;
  std::vector<std::string> messages;
};

bool decode(const std::string& datagram, Packet& out) {
  mold::PacketView view;
  if (mold::PacketView::parse(hypergate::protocols::Bytes(reinterpret_cast<const std::byte*>(datagram.data()),
                                                          datagram.size()),
                              view) != mold::PacketError::Ok) {
    return false;
  }
  if (view.session_name().trimmed() != "HGTEST") return false;
  out.sequence = view.sequence();
  out.count = view.count();
  out.messages.clear();
  for (const mold::MessageBlock& m : view) out.messages.emplace_back(reinterpret_cast<const char*>(m.data.data()), m.data.size());
  return true;
}

/// text2pcap's input: each packet as hex lines with offsets starting at 0.
void write_hexdump(const std::string& path, const std::vector<std::string>& datagrams) {
  std::ofstream out(path);
  char line[24];
  for (const std::string& d : datagrams) {
    for (std::size_t off = 0; off < d.size(); off += 16) {
      std::snprintf(line, sizeof(line), "%06zx", off);
      out << line;
      for (std::size_t i = off; i < d.size() && i < off + 16; ++i) {
        std::snprintf(line, sizeof(line), " %02x", static_cast<unsigned char>(d[i]));
        out << line;
      }
      out << "\n";
    }
  }
}

/// Writes `datagrams` as UDP to `port` into <stem>.pcap (text2pcap) and returns tshark's decoding
/// with the MoldUDP64 dissector on that port (`-V` by default).
std::string tshark(const std::string& stem, const std::string& port, const std::vector<std::string>& datagrams,
                   const std::string& output = "-V") {
  write_hexdump(stem + ".txt", datagrams);
  const std::string conv = sh("text2pcap -q -u 40000," + port + " " + stem + ".txt " + stem + ".pcap 2>&1; echo rc=$?");
  EXPECT_NE(conv.find("rc=0"), std::string::npos) << conv;
  return sh("tshark -r " + stem + ".pcap -d udp.port==" + port + ",moldudp64 " + output + " 2>/dev/null");
}

TEST(UdpGateway, ConfigCheckKnowsTheUdpTypes) {
  Udp rx;
  Gateway gw(rx.port());
  std::string out = sh(kGatewayBinary + " config check " + gw.config() + " 2>&1; echo rc=$?");
  EXPECT_NE(out.find("rc=0"), std::string::npos) << out;
  out = sh(kGatewayBinary + " config check " + gw.config() + " --set sink.republish.session=ELEVENCHARS 2>&1; echo rc=$?");
  EXPECT_NE(out.find("1 to 10 characters"), std::string::npos) << out;
  EXPECT_EQ(out.find("rc=0"), std::string::npos) << out;
}

TEST(UdpGateway, MulticastInMoldUdp64OutInOrderAndTsharkDecodesIt) {
  Udp rx;
  Gateway gw(rx.port());
  ASSERT_TRUE(gw.start()) << "gateway did not start: " << gw.log();

  Udp tx;
  constexpr std::size_t kMessages = 300;
  std::vector<std::string> sent;
  for (std::size_t i = 0; i < kMessages; ++i) {
    std::string p = "order " + std::to_string(i) + " ";
    p.append(i % 50, static_cast<char>('A' + i % 26));
    sent.push_back(p);
    ASSERT_TRUE(tx.send_to(kGroup, gw.feed_port(), p));
    if (i % 32 == 31) std::this_thread::sleep_for(1ms);  // a feed, not a single burst
  }

  std::vector<std::string> datagrams;
  std::vector<std::string> got;
  std::uint64_t next = 1;
  // Heartbeats keep arriving while the gateway idles, so the receive timeout alone would never end a
  // loop that lost a datagram: bound it as a whole (a hang guard, not a timing assertion).
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (got.size() < kMessages) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "only " << got.size() << " messages\n" << gw.log();
    std::string d = rx.receive();
    ASSERT_FALSE(d.empty()) << "timed out after " << got.size() << " messages\n" << gw.log();
    Packet p;
    ASSERT_TRUE(decode(d, p)) << "not a MoldUDP64 packet of session HGTEST (" << d.size() << " bytes)";
    EXPECT_LE(d.size(), 400u);
    EXPECT_EQ(p.sequence, next);
    if (p.count != mold::kHeartbeatCount) {  // a heartbeat may come between two sends
      ASSERT_NE(p.count, mold::kEndOfSessionCount);
      next += p.count;
      got.insert(got.end(), p.messages.begin(), p.messages.end());
    }
    datagrams.push_back(std::move(d));
  }
  EXPECT_EQ(got, sent);

  // Idle: a heartbeat carrying the next sequence; then SIGTERM: end of session.
  {
    const std::string d = rx.receive();
    Packet p;
    ASSERT_TRUE(decode(d, p)) << "no heartbeat while idle";
    EXPECT_EQ(p.count, mold::kHeartbeatCount);
    EXPECT_EQ(p.sequence, kMessages + 1);
    datagrams.push_back(d);
  }
  EXPECT_EQ(gw.terminate(), 0) << gw.log();
  std::string end_of_session;
  for (int i = 0; i < 20 && end_of_session.empty(); ++i) {
    const std::string d = rx.receive();
    Packet p;
    if (d.empty() || !decode(d, p)) break;
    if (p.count == mold::kEndOfSessionCount) {
      end_of_session = d;
      EXPECT_EQ(p.sequence, kMessages + 1);
    } else {
      datagrams.push_back(d);  // a late heartbeat
    }
  }
  ASSERT_FALSE(end_of_session.empty()) << gw.log();

  // tshark judges the wire format: every data and heartbeat packet decodes without a malformed
  // field or any expert info at all.
  const std::string port = std::to_string(rx.port());
  const std::string decoded = tshark(gw.dir() + "/data", port, datagrams);
  EXPECT_NE(decoded.find("MoldUDP64"), std::string::npos) << decoded.substr(0, 2000);
  EXPECT_NE(decoded.find("Sequence: 1\n"), std::string::npos) << decoded.substr(0, 2000);
  EXPECT_NE(decoded.find("Message Block"), std::string::npos) << decoded.substr(0, 2000);
  for (const char* bad : {"Malformed", "Expert Info"}) {
    const std::size_t at = decoded.find(bad);
    EXPECT_EQ(at, std::string::npos) << decoded.substr(at > 3000 ? at - 3000 : 0, 4000);
  }
  const std::string counts = tshark(gw.dir() + "/data", port, datagrams, "-T fields -e moldudp64.count");
  EXPECT_EQ(static_cast<std::size_t>(std::count(counts.begin(), counts.end(), '\n')), datagrams.size()) << counts;

  // The end-of-session packet is a bare 20-byte header with Count 0xFFFF, as PROTOCOLS.md §2 says.
  // tshark decodes it, but its dissector takes any header-only packet with a non-zero count for a
  // re-request and attaches a Comment-level note ("Number of Requested Messages"): allowed here,
  // anything stronger (Note, Warn, Error) or a malformed packet is not.
  const std::string eos = tshark(gw.dir() + "/eos", port, {end_of_session});
  EXPECT_NE(eos.find("Count: 65535"), std::string::npos) << eos;
  EXPECT_EQ(eos.find("Malformed"), std::string::npos) << eos;
  for (const char* severity : {"(Note/", "(Warning/", "(Error/", "(Warn/"}) {
    EXPECT_EQ(eos.find(severity), std::string::npos) << eos;
  }
}

}  // namespace
