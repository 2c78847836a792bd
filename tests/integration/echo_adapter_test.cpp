// `echo` source end to end: the real `hypergate` binary with an echo source and a null sink on a free
// loopback port, driven by real sockets: 10 connections x 100 messages each come back byte-identical,
// `config check` knows the type, and SIGTERM exits 0.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway_process.hpp"
#include "loopback.hpp"

namespace {

using namespace std::chrono_literals;
using namespace hypergate::test;

/// The gateway as a child process with its own temp dir and config.
class Gateway {
 public:
  Gateway() : port_(free_port()), config_(dir_.path() + "/echo.toml") {
    std::ofstream(config_) << "[gateway]\nworkers = 1\n\n[source.echo]\ntype = \"echo\"\n"
                           << "listen = \"127.0.0.1:" << port_ << "\"\nmax_connections = 64\n"
                           << "idle_timeout = \"30s\"\n\n[sink.discard]\ntype = \"null\"\n";
  }

  /// Ready when the gateway says it runs and the echo listener accepts.
  bool start() {
    process_.emplace(std::vector<std::string>{"run", "--config", config_});
    return process_->wait_for("hypergate: running") && wait_until_accepting(port_);
  }

  /// SIGTERM, then the exit status (-1 when it did not exit normally).
  int terminate() { return process_ ? process_->terminate() : -1; }

  /// What the gateway printed so far.
  std::string log() { return process_ ? process_->output_now() : std::string(); }
  const std::string& config() const { return config_; }
  std::uint16_t port() const { return port_; }

 private:
  TempDir dir_{"hg_echo"};  // declared first: removed after the process is gone
  std::uint16_t port_;
  std::string config_;
  std::optional<GatewayProcess> process_;
};

TEST(EchoAdapter, ConfigCheckKnowsTheEchoType) {
  Gateway gw;
  std::string out;
  EXPECT_EQ(run_shell(kGatewayBinary + " config check " + gw.config() + " 2>&1", &out), 0) << out;
  // And an unknown type is refused, so the check above is meaningful.
  std::string bad;
  EXPECT_NE(run_shell(kGatewayBinary + " config check " + gw.config() + " --set source.echo.type=no_such_type 2>&1", &bad),
            0)
      << bad;
}

TEST(EchoAdapter, ConfigCheckKnowsSendZcThreshold) {
  Gateway gw;
  std::string out;
  EXPECT_EQ(run_shell(kGatewayBinary + " config check " + gw.config() + " --set source.echo.send_zc_threshold=16384 2>&1", &out),
            0)
      << out;
  std::string bad;
  EXPECT_EQ(run_shell(kGatewayBinary + " config check " + gw.config() + " --set source.echo.send_zc_threshold=-1 2>&1", &bad),
            2)
      << bad;
  EXPECT_NE(bad.find("send_zc_threshold"), std::string::npos) << bad;
}

TEST(EchoAdapter, EchoesThousandMessagesOnTenConnectionsAndExitsOnSigterm) {
  Gateway gw;
  ASSERT_TRUE(gw.start()) << "gateway did not start: " << gw.log();
  constexpr int kConnections = 10;
  constexpr int kPerConnection = 100;
  std::vector<int> fds;
  for (int c = 0; c < kConnections; ++c) {
    const int fd = connect_to(gw.port());
    ASSERT_GE(fd, 0) << "connect " << c;
    fds.push_back(fd);
  }
  // Interleave the connections: message m of every connection before message m + 1 of any.
  std::size_t echoed = 0;
  for (int m = 0; m < kPerConnection; ++m) {
    for (int c = 0; c < kConnections; ++c) {
      // Distinct content and length per (connection, message), including bytes 0 and 0xff.
      std::string msg = "c" + std::to_string(c) + "m" + std::to_string(m) + ":";
      msg.append(static_cast<std::size_t>(1 + (m * 37 + c * 11) % 700), static_cast<char>((m + c) & 0xff));
      msg.push_back('\0');
      msg.push_back(static_cast<char>(0xff));
      ASSERT_TRUE(send_all(fds[static_cast<std::size_t>(c)], msg));
      const std::string back = recv_exactly(fds[static_cast<std::size_t>(c)], msg.size());
      ASSERT_EQ(back, msg) << "connection " << c << " message " << m;
      ++echoed;
    }
  }
  EXPECT_EQ(echoed, static_cast<std::size_t>(kConnections * kPerConnection));
  // Nothing extra arrives: the echo is exact, not duplicated.
  for (int fd : fds) {
    char extra = 0;
    EXPECT_LT(recv(fd, &extra, 1, MSG_DONTWAIT), 1);
  }
  // A large burst on one connection (larger than a receive buffer) also comes back whole.
  std::string big(200 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) & 0xff);
  std::thread writer([&] { EXPECT_TRUE(send_all(fds[0], big)); });
  const std::string big_back = recv_exactly(fds[0], big.size());
  writer.join();
  EXPECT_TRUE(big_back == big) << "got " << big_back.size() << " of " << big.size() << " bytes";
  for (int fd : fds) close(fd);
  EXPECT_EQ(gw.terminate(), 0) << gw.log();
}

}  // namespace
