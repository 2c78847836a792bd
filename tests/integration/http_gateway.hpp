#pragma once
// The gateway on configs/http.toml as a child process, for the HTTP integration tests (fire_test,
// http_scale_test): the fire and catch-all listeners moved to free loopback ports with --set, the admin
// listener on an ephemeral port (tests run in parallel), output captured in a temp dir.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "loopback.hpp"

namespace hypergate::test {

inline const std::string kBinary = HG_BINARY_DIR "/framework/gateway/hypergate";
inline const std::string kConfig = HG_SOURCE_DIR "/configs/http.toml";

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The gateway process; fire and catch-all on free ports.
class Gateway {
 public:
  /// `extra`: more command-line arguments (--set, --plugin).
  explicit Gateway(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
    char tmpl[] = "/tmp/hg_http_XXXXXX";
    dir_ = mkdtemp(tmpl);
    fire_port_ = free_port();
    catchall_port_ = free_port();
  }
  ~Gateway() {
    kill_now();
    (void)std::system(("rm -rf " + dir_).c_str());
  }

  bool start() {
    std::vector<std::string> args = {kBinary, "run", "--config", kConfig,
                                     "--set", "source.fire.listen=127.0.0.1:" + std::to_string(fire_port_),
                                     "--set", "source.catchall.listen=127.0.0.1:" + std::to_string(catchall_port_),
                                     "--set", "source.catchall.statsd_interval=0s",
                                     "--set", "admin.listen=127.0.0.1:0"};  // tests run in parallel
    args.insert(args.end(), extra_.begin(), extra_.end());
    const std::string log = dir_ + "/gateway.log";
    (void)std::remove(log.c_str());
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(kBinary.c_str(), argv.data());
      _exit(127);
    }
    // Ready once the gateway says its sources run and the port accepts (a predecessor killed with -9
    // may still hold a listener for a few milliseconds: connect alone is not proof).
    for (int i = 0; i < 200; ++i) {  // up to 10 s
      using namespace std::chrono_literals;
      if (slurp(log).find("hypergate: running") != std::string::npos) {
        // Both listeners: the sources start one after the other on their worker.
        const int fd = connect_to(fire_port_);
        const int fd2 = fd >= 0 ? connect_to(catchall_port_) : -1;
        if (fd >= 0) close(fd);
        if (fd2 >= 0) {
          close(fd2);
          return true;
        }
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  /// SIGTERM and wait: the gateway prints its report (and the fire source its counters) on the way out.
  std::string stop_and_log() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    return log();
  }
  void kill_now() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  std::string log() const { return slurp(dir_ + "/gateway.log"); }
  std::string url(const std::string& path = "/fire") const {
    return "http://127.0.0.1:" + std::to_string(fire_port_) + path;
  }
  std::uint16_t port() const { return fire_port_; }
  std::uint16_t catchall_port() const { return catchall_port_; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }

 private:
  std::vector<std::string> extra_;
  std::string dir_;
  std::uint16_t fire_port_ = 0;
  std::uint16_t catchall_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace hypergate::test
