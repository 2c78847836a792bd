// UringServer::stop_batch(): a handler whose batch is full stops the completion loop; the completions
// behind it stay queued in the kernel and are handled, in order, by the next run_once(). Driven with
// real sockets on 127.0.0.1; the server runs on this test's own loop thread.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "loopback.hpp"
#include "uring/uring_server.hpp"

namespace hypergate::uring {
namespace {

using namespace hypergate::test;

// Echoes, and stops the batch after every `per_batch` deliveries.
class BatchingEcho final : public ConnectionHandler {
 public:
  explicit BatchingEcho(std::size_t per_batch) : per_batch_(per_batch) {}
  UringServer* server = nullptr;
  std::atomic<std::size_t> opened{0};
  void on_open(Connection&) noexcept override { opened.fetch_add(1); }
  std::size_t in_this_call = 0;  // deliveries since the loop last reset it (loop thread only)
  std::size_t most_in_one_call = 0;
  std::size_t on_data(Connection& c, std::span<char> data) noexcept override {
    if (c.write_room() < data.size()) return 0;
    c.write(std::string_view(data.data(), data.size()));
    ++in_this_call;
    most_in_one_call = std::max(most_in_one_call, in_this_call);
    if (in_this_call % per_batch_ == 0) server->stop_batch();
    return data.size();
  }

 private:
  std::size_t per_batch_;
};

ServerOptions local() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.max_connections = 64;
  o.buffer_count = 256;
  return o;
}

// `clients` connections each send one message once all are connected, so that their receive
// completions are queued together; the loop runs run_once() only after they all were sent.
void run_case(std::size_t per_batch, std::size_t clients, std::size_t& most, std::size_t& calls_with_data) {
  BatchingEcho handler(per_batch);
  std::atomic<std::uint16_t> port{0};
  std::atomic<bool> sent{false}, done{false};
  std::thread loop([&] {
    UringServer server(local(), handler);
    handler.server = &server;
    if (!server.start().ok()) {
      port.store(1);  // nothing listens there: connect_to() fails and the test with it
      return;
    }
    port.store(server.port());
    while (!done.load()) {
      if (!sent.load()) {
        // Accepts while the clients connect, then nothing until every message is in the kernel.
        if (handler.opened.load() < clients) server.run_once(1'000'000);
        else std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      handler.in_this_call = 0;
      server.run_once(1'000'000);
      if (handler.in_this_call != 0) ++calls_with_data;
    }
    server.stop();
  });
  while (port.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::vector<int> fds;
  for (std::size_t i = 0; i < clients; ++i) {
    const int fd = connect_to(port.load());
    if (fd < 0) {
      ADD_FAILURE() << "connect " << i;
      done.store(true);
      loop.join();
      return;
    }
    fds.push_back(fd);
  }
  // Every connection accepted (and its receive armed) before anything is sent: the loop then waits.
  while (handler.opened.load() < clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (std::size_t i = 0; i < clients; ++i) ASSERT_TRUE(send_all(fds[i], "m" + std::to_string(100 + i)));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // every receive completed in the kernel
  sent.store(true);
  for (std::size_t i = 0; i < clients; ++i) EXPECT_EQ(recv_exactly(fds[i], 4), "m" + std::to_string(100 + i));
  done.store(true);
  loop.join();
  for (const int fd : fds) close(fd);
  most = handler.most_in_one_call;
}

TEST(UringStopBatch, EveryConnectionIsServedAndNoCallHandlesMoreThanItsBatch) {
  std::size_t most = 0;
  std::size_t calls = 0;
  run_case(3, 12, most, calls);
  EXPECT_LE(most, 3u);
  EXPECT_GE(calls, 4u);  // 12 deliveries, at most 3 per call
}

TEST(UringStopBatch, ABatchOfOneTakesOneCompletionPerCall) {
  std::size_t most = 0;
  std::size_t calls = 0;
  run_case(1, 8, most, calls);
  EXPECT_EQ(most, 1u);
  EXPECT_GE(calls, 8u);
}

}  // namespace
}  // namespace hypergate::uring
