#pragma once
// The gateway on configs/http.toml as a child process, for the HTTP integration tests (fire_test,
// http_scale_test): the fire and catch-all listeners moved to free loopback ports with --set, the admin
// listener on an ephemeral port (tests run in parallel). Spawned and reaped by GatewayProcess (its output
// read through a pipe); a temp dir for the files a test writes.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gateway_process.hpp"
#include "loopback.hpp"

namespace hypergate::test {

inline const std::string kConfig = HG_SOURCE_DIR "/configs/http.toml";

/// The gateway process; fire and catch-all on free ports.
class Gateway {
 public:
  /// `extra`: more command-line arguments (--set, --plugin).
  explicit Gateway(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
    fire_port_ = free_port();
    catchall_port_ = free_port();
  }
  ~Gateway() { kill_now(); }   // before dir_ goes: the gateway may still be writing into it

  bool start() {
    std::vector<std::string> args = {"run", "--config", kConfig,
                                     "--set", "source.fire.listen=127.0.0.1:" + std::to_string(fire_port_),
                                     "--set", "source.catchall.listen=127.0.0.1:" + std::to_string(catchall_port_),
                                     "--set", "source.catchall.statsd_interval=0s",
                                     "--set", "admin.listen=127.0.0.1:0"};  // tests run in parallel
    args.insert(args.end(), extra_.begin(), extra_.end());
    last_log_.clear();
    process_ = std::make_unique<GatewayProcess>(args);
    if (!process_->spawned() || !process_->wait_for("hypergate: running")) return false;
    // Ready once the gateway says its sources run and both ports accept (the sources start one after
    // the other on their worker; a predecessor killed with -9 may still hold a listener for a few
    // milliseconds: connect alone is not proof).
    for (int i = 0; i < 200; ++i) {  // up to 10 s
      using namespace std::chrono_literals;
      const int fd = connect_to(fire_port_);
      const int fd2 = fd >= 0 ? connect_to(catchall_port_) : -1;
      if (fd >= 0) close(fd);
      if (fd2 >= 0) {
        close(fd2);
        return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  /// SIGTERM and wait: the gateway prints its report (and the fire source its counters) on the way out.
  std::string stop_and_log() {
    if (process_) {
      process_->terminate();
      last_log_ = process_->output();
      process_.reset();
    }
    return last_log_;
  }
  /// SIGKILL and reap (GatewayProcess's destructor); the output so far stays readable through log().
  void kill_now() {
    if (process_) {
      last_log_ = process_->output_now();
      process_.reset();
    }
  }
  /// Everything the gateway printed so far (or before it was stopped).
  std::string log() { return process_ ? process_->output_now() : last_log_; }
  std::string url(const std::string& path = "/fire") const {
    return "http://127.0.0.1:" + std::to_string(fire_port_) + path;
  }
  std::uint16_t port() const { return fire_port_; }
  std::uint16_t catchall_port() const { return catchall_port_; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  const std::string& dir() const { return dir_.path(); }

 private:
  std::vector<std::string> extra_;
  TempDir dir_{"hg_http"};
  std::uint16_t fire_port_ = 0;
  std::uint16_t catchall_port_ = 0;
  std::unique_ptr<GatewayProcess> process_;
  std::string last_log_;
};

}  // namespace hypergate::test
