// `echo` source end to end: the real `hypergate` binary with an echo source and a null sink on a free
// loopback port, driven by real sockets: 10 connections x 100 messages each come back byte-identical,
// `config check` knows the type, and SIGTERM exits 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "loopback.hpp"

namespace {

using namespace std::chrono_literals;
using namespace hypergate::test;

const std::string kBinary = HG_BINARY_DIR "/framework/gateway/hypergate";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// Runs a shell command; returns its exit status and (through `out`) its stdout+stderr.
int sh(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out->append(buf.data(), n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// The gateway as a child process with its own temp dir and config.
class Gateway {
 public:
  Gateway() {
    char tmpl[] = "/tmp/hg_echo_XXXXXX";
    dir_ = mkdtemp(tmpl);
    port_ = free_port();
    config_ = dir_ + "/echo.toml";
    std::ofstream(config_) << "[gateway]\nworkers = 1\n\n[source.echo]\ntype = \"echo\"\n"
                           << "listen = \"127.0.0.1:" << port_ << "\"\nmax_connections = 64\n"
                           << "idle_timeout = \"30s\"\n\n[sink.discard]\ntype = \"null\"\n";
  }
  ~Gateway() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    const std::string cmd = "rm -rf " + dir_;
    (void)std::system(cmd.c_str());
  }

  bool start() {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string log = dir_ + "/gateway.log";
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(kBinary.c_str(), kBinary.c_str(), "run", "--config", config_.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {  // up to 10 s
      if (read_file(log()).find("hypergate: running") != std::string::npos) {
        const int fd = connect_to(port_);
        if (fd >= 0) {
          close(fd);
          return true;
        }
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  /// SIGTERM, then the exit status (or -1 when it did not exit normally within 10 s).
  int terminate() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(50ms);
    }
    return -1;
  }

  std::string log() const { return dir_ + "/gateway.log"; }
  const std::string& config() const { return config_; }
  std::uint16_t port() const { return port_; }

 private:
  std::string dir_;
  std::string config_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST(EchoAdapter, ConfigCheckKnowsTheEchoType) {
  Gateway gw;
  std::string out;
  EXPECT_EQ(sh(kBinary + " config check " + gw.config(), &out), 0) << out;
  // And an unknown type is refused, so the check above is meaningful.
  std::string bad;
  EXPECT_NE(sh(kBinary + " config check " + gw.config() + " --set source.echo.type=no_such_type", &bad), 0) << bad;
}

TEST(EchoAdapter, EchoesThousandMessagesOnTenConnectionsAndExitsOnSigterm) {
  Gateway gw;
  ASSERT_TRUE(gw.start()) << "gateway did not start: " << read_file(gw.log());
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
  EXPECT_EQ(gw.terminate(), 0) << read_file(gw.log());
}

}  // namespace
