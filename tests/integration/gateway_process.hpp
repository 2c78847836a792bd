#pragma once
// The real `hypergate` binary as a child process, for integration tests: spawn with arguments, read its
// output until a line appears, signal it, reap it with its exit code. One class for every integration
// test that runs the gateway, so none carries its own fork/exec, log file or waitpid loop.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

extern char** environ;

namespace hypergate::test {

inline const std::string kGatewayBinary = HG_BINARY_DIR "/framework/gateway/hypergate";
inline constexpr int kGatewayHangGuardMs = 60'000;

/// The gateway as a child process, its stdout and stderr captured through one pipe. Every wait is bounded
/// by kGatewayHangGuardMs (a hang guard, not a timing assertion): a child that outlives it is killed.
class GatewayProcess {
 public:
  explicit GatewayProcess(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
    std::vector<std::string> argv_s{kGatewayBinary};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, kGatewayBinary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (rc != 0) {
      close(fds[0]);
      pid_ = -1;
      return;
    }
    fd_ = fds[0];
  }
  ~GatewayProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  GatewayProcess(const GatewayProcess&) = delete;
  GatewayProcess& operator=(const GatewayProcess&) = delete;

  [[nodiscard]] bool spawned() const { return pid_ > 0; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const std::string& output() const { return output_; }
  /// After wait_exit(): true when the hang guard expired and the child was killed.
  [[nodiscard]] bool hung() const { return hung_; }
  /// After wait_exit(): the signal that ended the child, 0 when it exited.
  [[nodiscard]] int term_signal() const { return term_signal_; }

  /// The output so far, after reading whatever is ready without waiting: for failure messages while
  /// the child runs (and it keeps the pipe from filling up in a long test).
  const std::string& output_now() {
    char buf[4096];
    for (pollfd p{fd_, POLLIN, 0}; fd_ >= 0 && poll(&p, 1, 0) > 0;) {
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      output_.append(buf, static_cast<std::size_t>(n));
    }
    return output_;
  }

  /// Reads output until `text` appears (true) or the output ends / the guard expires (false).
  bool wait_for(const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kGatewayHangGuardMs);
    while (output_.find(text) == std::string::npos) {
      if (!read_some(deadline)) return false;
    }
    return true;
  }

  /// Waits for a line starting with `prefix` and stores the rest of it (without the newline) in `rest`.
  bool wait_line(const std::string& prefix, std::string* rest) {
    if (!wait_for(prefix)) return false;
    const std::size_t at = output_.find(prefix) + prefix.size();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kGatewayHangGuardMs);
    while (output_.find('\n', at) == std::string::npos) {
      if (!read_some(deadline)) return false;
    }
    *rest = output_.substr(at, output_.find('\n', at) - at);
    return true;
  }

  /// Reads to the end of the output and reaps the child; returns its exit code (-1: killed/hung).
  int wait_exit() {
    if (pid_ <= 0 || reaped_) return -1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kGatewayHangGuardMs);
    while (read_some(deadline)) {
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      hung_ = true;
      kill(pid_, SIGKILL);
    }
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    if (WIFSIGNALED(status)) term_signal_ = WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  /// SIGTERM, then wait_exit().
  int terminate() {
    if (pid_ > 0 && !reaped_) kill(pid_, SIGTERM);
    return wait_exit();
  }

 private:
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0 || fd_ < 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) return false;  // EOF: the child exited
      output_.append(buf, static_cast<std::size_t>(n));
      return true;
    }
  }
  pid_t pid_ = -1;
  int fd_ = -1;
  bool reaped_ = false;
  bool hung_ = false;
  int term_signal_ = 0;
  std::string output_;
};

}  // namespace hypergate::test
