#pragma once
// A nats-server child process on a loopback port, for every test and benchmark that needs a real server
// (integration/, stress/, bench/): spawn it with its options (JetStream with a store directory, cluster
// routes), wait until its port accepts, read its log, stop it with SIGTERM (a clean shutdown: the
// JetStream store is flushed) or SIGKILL, and start it again on the same port and store. The destructor
// SIGKILLs and reaps whatever still runs, so no test leaves a server behind.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "integration/loopback.hpp"  // free_port(), wait_until_accepting()

extern char** environ;

namespace hypergate::test {

inline const std::string kNatsServerBinary = "/usr/sbin/nats-server";

/// How a NatsServer runs. Every address is 127.0.0.1.
struct NatsServerOptions {
  std::uint16_t port = 0;            // the client port; 0: a free one, chosen when the NatsServer is made
  std::string store;                 // JetStream (-js) with its store in this directory (-sd); empty: none
  std::string log;                   // stdout and stderr appended to this file; empty: /dev/null
  std::string name;                  // server name (-n); empty: nats-server's default
  std::string cluster_name;          // --cluster_name; empty: none
  std::uint16_t cluster_port = 0;    // --cluster nats://127.0.0.1:<port>; 0: no cluster listener
  std::vector<std::uint16_t> routes;  // --routes nats://127.0.0.1:<port>,...; empty: none
};

/// One nats-server child. Not running until spawn() or start(); start() again after stop() or kill9()
/// restarts it on the same port and store, appending to the same log.
class NatsServer {
 public:
  explicit NatsServer(NatsServerOptions options) : o_(std::move(options)) {
    if (o_.port == 0) o_.port = free_port();
  }
  ~NatsServer() { kill9(); }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  /// Spawns the server without waiting for it; false when it could not be spawned (or already runs).
  [[nodiscard]] bool spawn() {
    if (pid_ > 0) return false;
    std::vector<std::string> args{kNatsServerBinary, "-a", "127.0.0.1", "-p", std::to_string(o_.port)};
    if (!o_.name.empty()) args.insert(args.end(), {"-n", o_.name});
    if (!o_.cluster_name.empty()) args.insert(args.end(), {"--cluster_name", o_.cluster_name});
    if (o_.cluster_port != 0) args.insert(args.end(), {"--cluster", loopback_url(o_.cluster_port)});
    if (!o_.routes.empty()) {
      std::string routes;
      for (const std::uint16_t r : o_.routes) routes += (routes.empty() ? "" : ",") + loopback_url(r);
      args.insert(args.end(), {"--routes", routes});
    }
    if (!o_.store.empty()) args.insert(args.end(), {"-js", "-sd", o_.store});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (o_.log.empty()) {
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    } else {
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, o_.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    }
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    const int rc = posix_spawn(&pid_, kNatsServerBinary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) pid_ = -1;
    return rc == 0;
  }

  /// Spawns the server and waits (10 s at most) until its port accepts; false otherwise (see log()).
  [[nodiscard]] bool start() { return spawn() && wait_until_accepting(); }

  /// Polls until the client port accepts a connection (true) or 10 s have passed (false).
  [[nodiscard]] bool wait_until_accepting() const { return running() && test::wait_until_accepting(o_.port); }

  /// SIGTERM (a clean shutdown), reaped; SIGKILL if it has not exited within 10 s.
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 2000; ++i) {  // 5 ms naps
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      timespec nap{0, 5'000'000};
      nanosleep(&nap, nullptr);
    }
    kill9();
  }

  /// SIGKILL (a crash: nothing is flushed), reaped.
  void kill9() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  [[nodiscard]] bool running() const { return pid_ > 0; }
  [[nodiscard]] std::uint16_t port() const { return o_.port; }
  [[nodiscard]] std::string url() const { return loopback_url(o_.port); }

  /// The whole log file ("" without one).
  [[nodiscard]] std::string log() const {
    if (o_.log.empty()) return "";
    std::ifstream f(o_.log);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  /// The log's last `max` characters.
  [[nodiscard]] std::string log_tail(std::size_t max = 3000) const {
    const std::string text = log();
    return text.size() > max ? text.substr(text.size() - max) : text;
  }

 private:
  static std::string loopback_url(std::uint16_t port) { return "nats://127.0.0.1:" + std::to_string(port); }

  NatsServerOptions o_;
  pid_t pid_ = -1;
};

}  // namespace hypergate::test
