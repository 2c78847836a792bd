// `dpdk` sink: Ethernet/IPv4/UDP frames built in mbufs and sent with rte_eth_tx_burst.
//
//   [sink.out]
//   type               = "dpdk"
//   port               = "net_pcap0"          # ethdev name or decimal index
//   source             = "10.0.0.1:40000"     # IPv4 source address and UDP port of every frame
//   destination        = "239.1.1.2:30002"    # IPv4 destination (unicast or a group) and UDP port
//   src_mac            = "02:00:00:00:00:01"
//   dst_mac            = ""                   # default: the group's MAC for multicast, else broadcast
//   framing            = "raw"                # raw: one datagram per message | moldudp64: packed packets
//   session, mtu, heartbeat_interval          # moldudp64, as for the udp sink
//   tx_retries         = 16                   # extra tx_burst calls before the rest is dropped (counted)
//   worker             = 0                    # moldudp64: the worker owning the sequence space
//
// Why it is shaped so
//  - send() works on the whole burst: one rte_pktmbuf_alloc_bulk, every frame built in place (headers
//    from pcap::CaptureWriter::build_frame: valid IPv4 header and UDP checksums), one rte_eth_tx_burst
//    plus at most tx_retries more for what the tx ring did not take; the rest is freed and counted as
//    drops. No allocation, lock or syscall per message.
//  - Checksums: computed in software; when the PMD advertises IPv4/UDP checksum offload the frame asks
//    the NIC instead (ol_flags, pseudo-header sum in the UDP field), as DPDK requires.
//  - moldudp64 packs consecutive messages into packets up to `mtu` (the PacketBuilder of
//    protocols/moldudp64.hpp, the udp sink's framing), sequences from 1, heartbeats from service() when
//    idle, an end of session at stop(). A sequence space has one owner: instances on other workers
//    refuse messages (counted as errors), like the udp sink. Raw framing sends from every worker on its
//    own tx queue.
//  - A mempool that runs dry is backpressure: send() accepts nothing and the caller's policy applies.
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "dpdk/dpdk_adapters.hpp"
#include "hypergate/core/clock.hpp"
#include "protocols/moldudp64.hpp"

namespace hypergate::dpdk {
namespace {

namespace mold = protocols::mold;

constexpr std::size_t kHeaders = pcap::CaptureWriter::kEthernetHeader + pcap::CaptureWriter::kIpv4Header +
                                 pcap::CaptureWriter::kUdpHeader;

class DpdkSink final : public adapter::Sink {
 public:
  static constexpr std::size_t kBatch = Burst<>::kCapacity;
  static constexpr std::size_t kMaxMtu = 2000;  // one mbuf (2048-byte data room) holds headers + payload
  static_assert(kHeaders + kMaxMtu <= RTE_MBUF_DEFAULT_DATAROOM, "a frame fits one default mbuf");

  explicit DpdkSink(SinkOptions o) : opt_(std::move(o)), session_(mold::SessionName::from(opt_.session)) {}
  ~DpdkSink() override { stop(); }

  [[nodiscard]] std::string_view type() const noexcept override { return "dpdk"; }

  [[nodiscard]] Result<void> start() override {
    if (!sending()) return {};  // a moldudp64 instance on a worker that does not own the session
    if (auto r = ensure_eal(opt_.eal); !r) return r;
    auto port = open_port(opt_.port, opt_.eal);
    if (!port) return port.error();
    port_ = *port;
    if (opt_.queue >= port_.tx_queues) {
      return Error{Status::InvalidArgument, "dpdk: sink '" + opt_.name + "': tx queue " + std::to_string(opt_.queue) +
                                                " of port " + port_.name + " was not configured"};
    }
    clock_ = &TscClock::instance();
    heartbeat_ticks_ = clock_->from_ns(opt_.heartbeat_interval_ns);
    last_packet_tsc_ = TscClock::ticks();
    details_.bind(port_.port_id);
    refresh_ticks_ = clock_->from_ns(100'000'000);  // port counters into stats: 10 times a second
    next_refresh_tsc_ = last_packet_tsc_ + refresh_ticks_;
    started_ = true;
    return {};
  }

  void stop() noexcept override {
    if (!started_) return;
    if (opt_.framing == SinkFraming::MoldUdp64) (void)send_control(/*end_of_session=*/true);
    started_ = false;
    details_.refresh();
    std::fprintf(stderr, "dpdk sink '%s': %s\n", opt_.name.c_str(), describe_port(port_.port_id).c_str());
    close_port(port_.port_id);
  }

  std::size_t send(const Burst<>& burst) noexcept override {
    if (burst.empty()) return 0;
    if (!sending()) {
      counters_.errors.add(burst.size());  // refused for good: another worker owns this session
      return burst.size();
    }
    if (!started_) return 0;
    return opt_.framing == SinkFraming::Raw ? send_raw(burst) : send_mold(burst);
  }

  std::size_t service() noexcept override {
    if (!started_) return 0;
    const std::uint64_t now = TscClock::ticks();
    if (now >= next_refresh_tsc_) [[unlikely]] {  // housekeeping on a TSC check
      next_refresh_tsc_ = now + refresh_ticks_;
      details_.refresh();
    }
    if (opt_.framing != SinkFraming::MoldUdp64) return 0;
    if (now - last_packet_tsc_ < heartbeat_ticks_) return 0;
    return send_control(/*end_of_session=*/false) ? 1 : 0;
  }

  [[nodiscard]] adapter::SinkStats stats() const noexcept override {
    adapter::SinkStats s = counters_.snapshot();
    details_.fill(s.details);
    return s;
  }

 private:
  [[nodiscard]] bool sending() const noexcept {
    return opt_.framing == SinkFraming::Raw || opt_.this_worker == opt_.owner_worker;
  }

  /// Writes headers + `payload` into `m`; software checksums, or the offload request.
  void build(rte_mbuf* m, std::span<const std::byte> payload) noexcept {
    auto* frame = rte_pktmbuf_mtod(m, std::byte*);
    const std::size_t len = pcap::CaptureWriter::build_frame(
        opt_.addresses, ip_id_++, payload, std::span<std::byte>(frame, kHeaders + payload.size()));
    m->data_len = static_cast<std::uint16_t>(len);
    m->pkt_len = static_cast<std::uint32_t>(len);
    if (port_.tx_ip_checksum || port_.tx_udp_checksum) {
      auto* ip = reinterpret_cast<rte_ipv4_hdr*>(frame + pcap::CaptureWriter::kEthernetHeader);
      m->l2_len = pcap::CaptureWriter::kEthernetHeader;
      m->l3_len = pcap::CaptureWriter::kIpv4Header;
      m->ol_flags |= RTE_MBUF_F_TX_IPV4;
      if (port_.tx_ip_checksum) {
        ip->hdr_checksum = 0;
        m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
      }
      if (port_.tx_udp_checksum) {
        auto* udp = reinterpret_cast<rte_udp_hdr*>(frame + pcap::CaptureWriter::kEthernetHeader +
                                                   pcap::CaptureWriter::kIpv4Header);
        m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
        udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
      }
    }
  }

  /// Sends mbufs[0..n): one tx_burst, bounded retries, the rest freed and counted. Returns frames sent.
  std::size_t transmit(rte_mbuf** mbufs, std::uint16_t n) noexcept {
    std::uint16_t sent = rte_eth_tx_burst(port_.port_id, opt_.queue, mbufs, n);
    for (std::uint32_t attempt = 0; sent < n && attempt < opt_.tx_retries; ++attempt) {
      sent = static_cast<std::uint16_t>(sent + rte_eth_tx_burst(port_.port_id, opt_.queue, mbufs + sent,
                                                                static_cast<std::uint16_t>(n - sent)));
    }
    if (sent < n) {
      rte_pktmbuf_free_bulk(mbufs + sent, n - sent);  // counted as drops by the caller
    }
    if (sent != 0) last_packet_tsc_ = TscClock::ticks();
    return sent;
  }

  std::size_t send_raw(const Burst<>& burst) noexcept {
    const auto n = static_cast<std::uint16_t>(burst.size() < kBatch ? burst.size() : kBatch);
    if (rte_pktmbuf_alloc_bulk(port_.pool, mbufs_.data(), n) != 0) return 0;  // pool dry: backpressure
    std::uint16_t built = 0;
    std::uint64_t bytes = 0, dropped = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
      const Message& msg = burst[i];
      if (msg.size > opt_.mtu) {
        ++dropped;  // never truncated, never split
        continue;
      }
      build(mbufs_[built], msg.payload());
      ++built;
      bytes += msg.size;
    }
    if (built < n) rte_pktmbuf_free_bulk(mbufs_.data() + built, n - built);
    const std::size_t sent = transmit(mbufs_.data(), built);
    counters_.drops.add(dropped + (built - sent));
    counters_.messages.add(sent);
    counters_.bytes.add(bytes);
    return n;
  }

  std::size_t send_mold(const Burst<>& burst) noexcept {
    std::uint16_t packets = 0;
    std::uint64_t dropped = 0, bytes = 0;
    std::optional<mold::PacketBuilder> packet;
    std::array<std::uint16_t, kBatch> counts{};
    bool pool_dry = false;
    const auto close = [&] {
      const protocols::Bytes done = packet->finish();
      rte_mbuf* m = rte_pktmbuf_alloc(port_.pool);
      if (m == nullptr) {
        pool_dry = true;
        dropped += packet->count();
      } else {
        build(m, done);
        counts[packets] = packet->count();
        mbufs_[packets++] = m;
      }
      packet.reset();
    };
    for (const Message& msg : burst) {
      if (msg.size > opt_.mtu - mold::kHeaderSize - mold::kBlockHeaderSize) {
        ++dropped;
        continue;
      }
      if (packet && !packet->append(msg.payload())) close();
      if (!packet) {
        packet.emplace(protocols::MutableBytes(scratch_[packets].data(), scratch_[packets].size()), opt_.mtu);
        packet->start(session_, next_sequence_);
        (void)packet->append(msg.payload());  // an empty packet takes any message that passed the check
      }
      ++next_sequence_;
      bytes += msg.size;
    }
    if (packet) close();
    const std::size_t sent = transmit(mbufs_.data(), packets);
    std::uint64_t lost = 0;
    for (std::size_t i = sent; i < packets; ++i) lost += counts[i];
    counters_.drops.add(dropped + lost);
    counters_.messages.add(burst.size() - dropped - lost);
    counters_.bytes.add(bytes);
    if (pool_dry) counters_.errors.add(1);
    return burst.size();
  }

  bool send_control(bool end_of_session) noexcept {
    std::array<std::byte, mold::kHeaderSize> bytes{};
    const std::size_t n = end_of_session ? mold::write_end_of_session(bytes, session_, next_sequence_)
                                         : mold::write_heartbeat(bytes, session_, next_sequence_);
    rte_mbuf* m = rte_pktmbuf_alloc(port_.pool);
    if (m == nullptr) return false;
    build(m, std::span<const std::byte>(bytes.data(), n));
    return transmit(&m, 1) == 1;
  }

  SinkOptions opt_;
  mold::SessionName session_;
  PortHandle port_;
  const TscClock* clock_ = nullptr;
  bool started_ = false;
  std::uint16_t ip_id_ = 0;
  std::uint64_t next_sequence_ = 1;
  std::uint64_t heartbeat_ticks_ = 0;
  std::uint64_t last_packet_tsc_ = 0;
  std::uint64_t refresh_ticks_ = 0;
  std::uint64_t next_refresh_tsc_ = 0;
  PortDetails details_;
  std::array<rte_mbuf*, kBatch> mbufs_{};
  // One packet per message at worst: a burst's packets are built here, then copied into their mbufs.
  std::array<std::array<std::byte, kMaxMtu>, kBatch> scratch_{};
  adapter::SinkCounters counters_;
};

}  // namespace

std::unique_ptr<adapter::Sink> make_sink(SinkOptions options) { return std::make_unique<DpdkSink>(std::move(options)); }

}  // namespace hypergate::dpdk
