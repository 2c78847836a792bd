#pragma once
// Test support for the io_uring transport: a UringServer run on its own thread (RunningServer), the
// echo handler on one (RunningEcho), and an echo client that sends and reads at once.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "uring/uring_server.hpp"

namespace hypergate::uring::test {

/// A UringServer on its own thread. The ring is created, run and torn down on that thread, as the
/// server's contract asks: io_uring notifies the ring's creator when the ring is torn down, and that
/// notification interrupts a blocking socket call with a timeout (EINTR) in whichever thread it is.
class RunningServer {
 public:
  RunningServer(ServerOptions o, ConnectionHandler& handler) : server_(std::move(o), handler) {
    std::promise<void> ready;
    auto started = ready.get_future();
    thread_ = std::thread([this, &ready] {
      auto r = server_.start();
      ok_ = r.ok();
      if (!ok_) error_ = r.error().message;
      ready.set_value();
      if (ok_) server_.run(stop_);
      server_.stop();
    });
    started.wait();
  }
  ~RunningServer() { stop(); }
  /// Stops the loop and joins the thread (the server's stop() runs there); idempotent.
  void stop() {
    if (!thread_.joinable()) return;
    stop_.store(true, std::memory_order_release);  // release: pairs with the acquire-load in run()
    thread_.join();
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  std::uint16_t port() const { return server_.port(); }
  ServerStats stats() const { return server_.stats(); }

 private:
  UringServer server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  bool ok_ = false;  // written before ready.set_value(), read after started.wait()
  std::string error_;
};

class RunningEcho {
 public:
  explicit RunningEcho(ServerOptions o) : server_(std::move(o), handler_) {}
  bool ok() const { return server_.ok(); }
  const std::string& error() const { return server_.error(); }
  std::uint16_t port() const { return server_.port(); }
  ServerStats stats() const { return server_.stats(); }
  void stop() { server_.stop(); }

 private:
  EchoHandler handler_;
  RunningServer server_;
};

/// Sends `msg` and reads the echo concurrently (poll), as a real echo client must for big messages.
/// `read_pause` > 0 makes a slow reader: it reads at most `read_chunk` bytes, then sleeps, so the
/// server's sends fill the socket and come back short. Gives up after 30 s or 5 s without progress.
inline std::string echo_round_trip(int fd, const std::string& msg,
                                   std::chrono::microseconds read_pause = std::chrono::microseconds{0},
                                   std::size_t read_chunk = 65536) {
  std::string got;
  got.reserve(msg.size());
  std::size_t sent = 0;
  std::vector<char> buf(read_chunk);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  while (got.size() < msg.size() && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, static_cast<short>(POLLIN | (sent < msg.size() ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 5000) <= 0) break;
    if ((p.revents & POLLOUT) != 0 && sent < msg.size()) {
      const ssize_t w = send(fd, msg.data() + sent, std::min<std::size_t>(msg.size() - sent, 256 * 1024),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) sent += static_cast<std::size_t>(w);
    }
    if ((p.revents & POLLIN) != 0) {
      const ssize_t r = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (r == 0) break;
      if (r > 0) got.append(buf.data(), static_cast<std::size_t>(r));
      if (read_pause.count() != 0) std::this_thread::sleep_for(read_pause);
    }
  }
  return got;
}

}  // namespace hypergate::uring::test
