// `scripts/bench.sh dpdk`: market data into the itch pipeline on one core, DPDK rx against recvmmsg.
//   dpdk/hypergate_source/net_ring_itch       the `dpdk` source on a net_ring port (EAL --no-huge): one
//                                             rte_eth_rx_burst per poll, Ethernet/IPv4/UDP parsed in place,
//                                             payloads zero-copy into MoldUDP64 + ITCH decode + order book +
//                                             top of book in Hyperion, mbufs freed in bulk at release
//   dpdk/recvmmsg_baseline/loopback_itch      the same pipeline fed by the `udp` source (one recvmmsg per
//                                             poll) on a loopback socket
// Both replay the same generated feed (MoldUDP64 datagrams of <= 256 bytes, ~8 ITCH messages each, 50
// symbols). Each iteration first fills the transport with kFill datagrams with the timer paused (net_ring:
// mbufs built and tx-burst into the ring, which is rx on the same port; loopback: sendmmsg), then times
// draining them through source + pipeline. items_per_second = datagrams (packets per second per core);
// the counter itch_msgs_per_s = ITCH messages. net_null is not used: its frames are not IPv4/UDP, so
// they would measure the parser's reject path, not the pipeline.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <vector>

#include "dpdk/dpdk_adapters.hpp"
#include "dpdk/eal.hpp"
#include "hypergate/config/config.hpp"
#include "itch_bench_support.hpp"
#include "market/itch_pipeline.hpp"
#include "pcap/capture_writer.hpp"
#include "protocols/itch_generator.hpp"
#include "udp/udp_source.hpp"

namespace {

namespace hg = hypergate;
namespace dp = hypergate::dpdk;
namespace itch = hypergate::protocols::itch;

constexpr std::size_t kFill = 512;  // datagrams per iteration (net_ring's rings hold 1024)
constexpr std::uint32_t kGroup = 0xEF010101;  // 239.1.1.1
constexpr std::uint16_t kPort = 30001;

struct Feed {
  itch::GeneratedFeed feed;
  std::vector<std::size_t> data_packets;  // indices of packets carrying messages
  std::vector<std::vector<std::byte>> frames;
};

const Feed& feed() {
  static const Feed f = [] {
    Feed out;
    itch::GeneratorOptions g;
    g.symbol_count = 50;
    g.message_count = 2'000'000;
    g.max_packet_bytes = 256;
    g.seed = 21;
    out.feed = std::move(itch::generate_feed(g).value());
    hg::pcap::FrameAddresses a;
    a.dst_ip = kGroup;
    a.dst_port = kPort;
    a.src_port = 40000;
    a.dst_mac = hg::pcap::multicast_mac(kGroup);
    for (std::size_t i = 0; i < out.feed.packets.size(); ++i) {
      const auto& p = out.feed.packets[i];
      if (p.end_of_session || p.count == 0) continue;
      out.data_packets.push_back(i);
      const auto bytes = out.feed.bytes(p);
      std::vector<std::byte> frame(bytes.size() + 42);
      (void)hg::pcap::CaptureWriter::build_frame(a, 0, bytes, frame);
      out.frames.push_back(std::move(frame));
    }
    return out;
  }();
  return f;
}

using hypergate::bench::CountingDownstream;

/// The itch pipeline, recreated (timer paused) whenever the feed wraps so every pass sees a fresh session.
class PipelineUnderTest {
 public:
  PipelineUnderTest() {
    opt_ = hypergate::bench::default_itch_options();
    pipeline_ = hypergate::market::ItchPipeline::create(opt_).value();
  }
  void restart() { pipeline_ = hypergate::market::ItchPipeline::create(opt_).value(); }
  void process(hg::Burst<>& in) { pipeline_->process(in, emitter_); }
  [[nodiscard]] std::uint64_t messages() const { return pipeline_->stats().messages; }

 private:
  hypergate::market::ItchPipelineOptions opt_;
  std::unique_ptr<hypergate::market::ItchPipeline> pipeline_;
  CountingDownstream down_;
  hg::route::Emitter emitter_{down_};
};

/// Drains `want` datagrams from `source` through the pipeline; returns ITCH messages decoded.
template <class Source>
std::uint64_t drain(Source& source, PipelineUnderTest& p, std::size_t want) {
  const std::uint64_t before = p.messages();
  hg::Burst<> burst;
  std::uint64_t empty = 0;
  for (std::size_t got = 0; got < want;) {
    burst.clear();
    const std::size_t n = source.poll(burst);
    if (n == 0) {
      if (++empty > 50'000'000) break;  // a datagram was lost (full buffer): do not spin forever
      continue;
    }
    empty = 0;
    got += n;
    p.process(burst);
    source.release(burst);
  }
  return p.messages() - before;
}

/// The EAL, the net_ring port and the dpdk source, brought up once per process (Google Benchmark calls a
/// benchmark function several times; DPDK allows one EAL per process).
struct NetRingRig {
  std::unique_ptr<hg::adapter::Source> source;
  dp::PortHandle port;
  std::string error;
};
NetRingRig& net_ring_rig() {
  static NetRingRig rig = [] {
    NetRingRig r;
    dp::EalSettings eal;
    eal.no_huge = true;
    eal.no_pci = true;
    eal.memory_mb = 256;
    eal.mbufs = 8191;
    eal.vdevs = {"net_ring0"};
    dp::SourceOptions o;
    o.name = "bench";
    o.eal = eal;
    o.port = "net_ring0";
    o.address = kGroup;
    o.udp_port = kPort;
    o.queue = dp::claim_port({o.port, true, 1});
    r.source = dp::make_source(o);
    if (auto s = r.source->start(); !s) {
      r.error = s.error().message;
      return r;
    }
    auto port = dp::open_port(o.port, eal);
    if (!port) {
      r.error = port.error().message;
      return r;
    }
    r.port = *port;
    return r;
  }();
  return rig;
}

void BM_DpdkNetRing(benchmark::State& state) {
  const Feed& f = feed();
  NetRingRig& rig = net_ring_rig();
  if (!rig.error.empty()) {
    state.SkipWithError(rig.error.c_str());
    return;
  }
  auto& source = rig.source;
  const dp::PortHandle* port = &rig.port;
  PipelineUnderTest p;
  std::size_t next = 0;
  std::uint64_t msgs = 0;
  std::array<rte_mbuf*, kFill> mbufs{};
  for (auto _ : state) {
    state.PauseTiming();
    if (next + kFill > f.frames.size()) {
      next = 0;
      p.restart();
    }
    if (rte_pktmbuf_alloc_bulk(port->pool, mbufs.data(), kFill) != 0) {
      state.SkipWithError("mempool empty");
      break;
    }
    for (std::size_t i = 0; i < kFill; ++i) {
      const auto& fr = f.frames[next + i];
      std::memcpy(rte_pktmbuf_mtod(mbufs[i], void*), fr.data(), fr.size());
      mbufs[i]->data_len = static_cast<std::uint16_t>(fr.size());
      mbufs[i]->pkt_len = static_cast<std::uint32_t>(fr.size());
    }
    std::size_t queued = 0;
    while (queued < kFill) {
      queued += rte_eth_tx_burst(port->port_id, 0, mbufs.data() + queued, static_cast<std::uint16_t>(kFill - queued));
    }
    next += kFill;
    state.ResumeTiming();
    msgs += drain(*source, p, kFill);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kFill));
  state.counters["itch_msgs_per_s"] = benchmark::Counter(static_cast<double>(msgs), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DpdkNetRing)->Name("dpdk/hypergate_source/net_ring_itch")->UseRealTime();

void BM_RecvmmsgLoopback(benchmark::State& state) {
  const Feed& f = feed();
  hg::udp::UdpSourceOptions o;
  o.name = "bench";
  o.listen.addr.s_addr = htonl(INADDR_LOOPBACK);
  o.rcvbuf = 4 << 20;  // net.core.rmem_max here; kFill datagrams need ~0.7 MB
  o.timestamps = false;
  hg::udp::UdpSource source(o);
  if (!source.start().ok()) {
    state.SkipWithError("udp source start failed");
    return;
  }
  const int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int big = 16 << 20;
  (void)setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(source.local_port());
  std::array<iovec, kFill> iov{};
  std::array<mmsghdr, kFill> msgs_out{};
  PipelineUnderTest p;
  std::size_t next = 0;
  std::uint64_t msgs = 0;
  for (auto _ : state) {
    state.PauseTiming();
    if (next + kFill > f.data_packets.size()) {
      next = 0;
      p.restart();
    }
    for (std::size_t i = 0; i < kFill; ++i) {
      const auto bytes = f.feed.bytes(f.data_packets[next + i]);
      iov[i] = iovec{const_cast<std::byte*>(bytes.data()), bytes.size()};
      msgs_out[i] = mmsghdr{};
      msgs_out[i].msg_hdr.msg_name = &to;
      msgs_out[i].msg_hdr.msg_namelen = sizeof(to);
      msgs_out[i].msg_hdr.msg_iov = &iov[i];
      msgs_out[i].msg_hdr.msg_iovlen = 1;
    }
    for (std::size_t sent = 0; sent < kFill;) {
      const int r = sendmmsg(tx, msgs_out.data() + sent, static_cast<unsigned>(kFill - sent), 0);
      if (r <= 0) {
        state.SkipWithError("sendmmsg failed");
        break;
      }
      sent += static_cast<std::size_t>(r);
    }
    next += kFill;
    state.ResumeTiming();
    msgs += drain(source, p, kFill);
  }
  close(tx);
  source.stop();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kFill));
  state.counters["itch_msgs_per_s"] = benchmark::Counter(static_cast<double>(msgs), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RecvmmsgLoopback)->Name("dpdk/recvmmsg_baseline/loopback_itch")->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
