// UDP adapter benchmarks over loopback, each against a named baseline in the same run:
//   udp/hypergate_source/receive      UdpSource::poll (one recvmmsg per burst, kernel stamps, drop
//                                     counter) vs udp/recvfrom_loop/receive (one recvfrom per datagram)
//   udp/hypergate_raw_sink/send       UdpSink raw framing (one sendmmsg per burst) vs
//                                     udp/sendto_loop/send (one sendto per datagram)
//   udp/hypergate_mold_sink/send      UdpSink MoldUDP64 framing (packing into 1400-byte packets kept
//                                     in the retransmission ring, one sendmmsg per burst)
// Items are 64-byte datagrams/messages. Each iteration moves one burst of 32 through the kernel: the
// receive cases send it first with one sendmmsg (the same cost on both sides), the send cases drain
// it afterwards with one recvmmsg (same again), so the difference between the pairs is the adapter.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <array>
#include <memory>
#include <string>

#include "udp/udp_sink.hpp"
#include "udp/udp_source.hpp"

namespace {

using namespace hypergate;

constexpr std::size_t kBurst = Burst<>::kCapacity;
constexpr std::size_t kPayload = 64;

/// A plain loopback UDP socket: bound to 127.0.0.1:0, 4 MiB receive buffer.
struct PlainSocket {
  PlainSocket() : fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    const int rcvbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  }
  ~PlainSocket() { close(fd); }
  PlainSocket(const PlainSocket&) = delete;
  PlainSocket& operator=(const PlainSocket&) = delete;
  int fd;
  sockaddr_in addr{};
};

/// Sends one burst of kBurst datagrams to `to` with a single sendmmsg.
class BurstSender {
 public:
  explicit BurstSender(sockaddr_in to) : to_(to) {
    payload_.fill('p');
    for (std::size_t i = 0; i < kBurst; ++i) {
      iov_[i] = iovec{payload_.data(), payload_.size()};
      msgs_[i].msg_hdr.msg_name = &to_;
      msgs_[i].msg_hdr.msg_namelen = sizeof(to_);
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
    }
  }
  bool send() { return sendmmsg(socket_.fd, msgs_.data(), kBurst, 0) == static_cast<int>(kBurst); }

 private:
  PlainSocket socket_;
  sockaddr_in to_;
  std::array<char, kPayload> payload_{};
  std::array<iovec, kBurst> iov_{};
  std::array<mmsghdr, kBurst> msgs_{};
};

/// Drains up to one burst with a single recvmmsg; returns the datagrams read.
class BurstDrain {
 public:
  BurstDrain() {
    for (std::size_t i = 0; i < kBurst; ++i) {
      iov_[i] = iovec{bufs_[i].data(), bufs_[i].size()};
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
    }
  }
  int drain(int fd) { return recvmmsg(fd, msgs_.data(), kBurst, MSG_DONTWAIT, nullptr); }

 private:
  std::array<std::array<char, 2048>, kBurst> bufs_{};
  std::array<iovec, kBurst> iov_{};
  std::array<mmsghdr, kBurst> msgs_{};
};

void BM_HypergateSourceReceive(benchmark::State& state) {
  udp::UdpSourceOptions o;
  o.name = "bench";
  o.listen.addr.s_addr = htonl(INADDR_LOOPBACK);
  o.rcvbuf = 4 << 20;
  udp::UdpSource source(o);
  if (!source.start().ok()) {
    state.SkipWithError("start failed");
    return;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(source.local_port());
  BurstSender sender(to);
  Burst<> burst;
  for (auto _ : state) {
    if (!sender.send()) state.SkipWithError("send failed");
    std::size_t got = 0;
    while (got < kBurst) {
      burst.clear();
      got += source.poll(burst);
      benchmark::DoNotOptimize(burst.data());
      source.release(burst);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBurst));
}
BENCHMARK(BM_HypergateSourceReceive)->Name("udp/hypergate_source/receive");

void BM_RecvfromLoopReceive(benchmark::State& state) {
  PlainSocket rx;
  BurstSender sender(rx.addr);
  std::array<char, 2048> buf{};
  for (auto _ : state) {
    if (!sender.send()) state.SkipWithError("send failed");
    for (std::size_t got = 0; got < kBurst;) {
      if (recvfrom(rx.fd, buf.data(), buf.size(), MSG_DONTWAIT, nullptr, nullptr) > 0) ++got;
      benchmark::DoNotOptimize(buf.data());
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBurst));
}
BENCHMARK(BM_RecvfromLoopReceive)->Name("udp/recvfrom_loop/receive");

template <udp::Framing F>
void BM_HypergateSinkSend(benchmark::State& state) {
  PlainSocket rx;
  udp::UdpSinkOptions o;
  o.name = "bench";
  o.destination.addr = rx.addr.sin_addr;
  o.destination.port = ntohs(rx.addr.sin_port);
  o.framing = F;
  o.heartbeat_interval_ns = 3'600'000'000'000ull;
  udp::UdpSink sink(o);
  if (!sink.start().ok()) {
    state.SkipWithError("start failed");
    return;
  }
  std::array<char, kPayload> payload{};
  payload.fill('m');
  Burst<> burst;
  for (std::size_t i = 0; i < kBurst; ++i) burst.emplace_back().set_payload(payload.data(), payload.size());
  BurstDrain drain;
  for (auto _ : state) {
    if (sink.send(burst) != kBurst) state.SkipWithError("send refused");
    while (drain.drain(rx.fd) > 0) {
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBurst));
}
BENCHMARK(BM_HypergateSinkSend<udp::Framing::Raw>)->Name("udp/hypergate_raw_sink/send");
BENCHMARK(BM_HypergateSinkSend<udp::Framing::MoldUdp64>)->Name("udp/hypergate_mold_sink/send");

void BM_SendtoLoopSend(benchmark::State& state) {
  PlainSocket rx;
  PlainSocket tx;
  std::array<char, kPayload> payload{};
  payload.fill('m');
  BurstDrain drain;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBurst; ++i) {
      if (sendto(tx.fd, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&rx.addr),
                 sizeof(rx.addr)) < 0) {
        state.SkipWithError("sendto failed");
      }
    }
    while (drain.drain(rx.fd) > 0) {
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBurst));
}
BENCHMARK(BM_SendtoLoopSend)->Name("udp/sendto_loop/send");

}  // namespace

BENCHMARK_MAIN();
