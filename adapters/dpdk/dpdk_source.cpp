// `dpdk` source: UDP payloads received on a DPDK port's rx queue, zero-copy out of the mbufs.
//
//   [source.feed]
//   type              = "dpdk"
//   port              = "net_pcap0"        # ethdev name (a vdev's name, a PCI address) or a decimal index
//   listen            = "239.1.1.1:30001"  # keep datagrams to this group/address and UDP port;
//                                          # 0.0.0.0 = any address, port 0 = any port (default "0.0.0.0:0")
//   timestamps        = true               # the PMD's rx timestamp when it offers one, else the TSC at poll
//   finish_after_idle = "0s"               # > 0: finished() once nothing arrived for that long (since
//                                          # start or the last frame): a net_pcap replay ends with its file
//   pipeline          = "itch"             # MoldUDP64 datagrams, exactly like the udp and pcap sources
//
// Why it is shaped so
//  - poll() is one rte_eth_rx_burst for up to the burst's free room (at most kBatch frames): no syscall,
//    no allocation, one TSC read. Each frame is parsed in place (pcap/frame_parser.hpp: Ethernet, VLAN,
//    IPv4, UDP, bounds-checked) and the Message points at the UDP payload inside the mbuf.
//  - Payload lifetime: the mbufs of a poll stay allocated until release() for that burst, then go back
//    to the mempool with one rte_pktmbuf_free_bulk. The runtime releases every non-empty poll once, in
//    poll order; a poll that hands out nothing frees its mbufs at once (no release will come). Up to
//    kMaxOutstanding polls may be held; after that poll() returns 0 until a release (backpressure: the
//    NIC ring fills and the PMD counts imissed, exported as drops).
//  - Frames that are not IPv4/UDP, fragments, or for another address/port are freed with the poll and
//    not counted as errors; malformed ones (truncated, bad header lengths, multi-segment) are rejects.
//  - Timestamps: a PMD that offers RTE_ETH_RX_OFFLOAD_TIMESTAMP stamps mbufs in its own clock; start()
//    maps that clock onto the TSC with two rte_eth_read_clock samples. Without either, rx_tsc = TSC at poll.
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "dpdk/dpdk_adapters.hpp"
#include "dpdk/eal.hpp"
#include "hypergate/adapter/registry.hpp"
#include "hypergate/core/clock.hpp"
#include "pcap/frame_parser.hpp"

namespace hypergate::dpdk {
namespace {

class DpdkSource final : public adapter::Source {
 public:
  static constexpr std::size_t kBatch = Burst<>::kCapacity;
  static constexpr std::size_t kMaxOutstanding = 8;
  static_assert((kMaxOutstanding & (kMaxOutstanding - 1)) == 0, "poll FIFO indices are masked");

  explicit DpdkSource(SourceOptions o) : opt_(std::move(o)) {}
  ~DpdkSource() override { stop(); }

  [[nodiscard]] std::string_view type() const noexcept override { return "dpdk"; }

  [[nodiscard]] Result<void> start() override {
    if (auto r = ensure_eal(opt_.eal); !r) return r;
    auto port = open_port(opt_.port, opt_.eal);
    if (!port) return port.error();
    port_ = *port;
    if (opt_.queue >= port_.rx_queues) {
      return Error{Status::InvalidArgument, "dpdk: source '" + opt_.name + "': rx queue " +
                                                std::to_string(opt_.queue) + " of port " + port_.name +
                                                " was not configured (the port started with " +
                                                std::to_string(port_.rx_queues) + ")"};
    }
    calibrate_timestamps();
    details_.bind(port_.port_id);
    clock_ = &TscClock::instance();
    refresh_ticks_ = clock_->from_ns(kRefreshNs);
    last_rx_tsc_ = TscClock::ticks();  // idle is measured from start until the first frame
    next_refresh_tsc_ = last_rx_tsc_ + refresh_ticks_;
    idle_ticks_ = clock_->from_ns(opt_.finish_after_idle_ns);
    started_ = true;
    std::fprintf(stderr, "dpdk source '%s': port %s rx queue %u, timestamps: %s\n", opt_.name.c_str(),
                 port_.name.c_str(), opt_.queue, hw_stamps_ ? "hardware" : "tsc at poll");
    return {};
  }

  void stop() noexcept override {
    if (!started_) return;
    started_ = false;
    while (polls_back_ != polls_out_) free_oldest();
    publish_port_counters();
    std::fprintf(stderr, "dpdk source '%s': %s\n", opt_.name.c_str(), describe_port(port_.port_id).c_str());
    close_port(port_.port_id);
  }

  std::size_t poll(Burst<>& out) noexcept override {
    if (!started_) return 0;
    const std::uint64_t now = TscClock::ticks();
    if (now >= next_refresh_tsc_) [[unlikely]] {  // housekeeping on a TSC check, never per message
      next_refresh_tsc_ = now + refresh_ticks_;
      publish_port_counters();
    }
    if (polls_out_ - polls_back_ == kMaxOutstanding) return 0;  // every batch slot held: wait for release()
    std::size_t want = out.capacity() - out.size();
    if (want > kBatch) want = kBatch;
    if (want == 0) return 0;
    Batch& b = batches_[polls_out_ & (kMaxOutstanding - 1)];
    const std::uint16_t got = rte_eth_rx_burst(port_.port_id, opt_.queue, b.mbufs.data(), static_cast<std::uint16_t>(want));
    if (got == 0) {
      if (idle_ticks_ != 0 && now - last_rx_tsc_ > idle_ticks_ && !finished_flag_) {
        // release: pairs with the acquire-load in finished(), read by the runtime's control thread.
        finished_.store(true, std::memory_order_release);
        finished_flag_ = true;
      }
      return 0;
    }
    last_rx_tsc_ = now;
    std::size_t appended = 0;
    std::uint64_t bytes = 0;
    std::uint64_t rejected = 0;
    for (std::uint16_t i = 0; i < got; ++i) {
      rte_mbuf* m = b.mbufs[i];
      if (m->nb_segs != 1) {
        ++rejected;  // a datagram larger than one mbuf: never handed out half
        continue;
      }
      const auto* data = rte_pktmbuf_mtod(m, const std::byte*);
      pcap::UdpDatagram d;
      const pcap::FrameVerdict v = pcap::parse_frame(pcap::LinkType::Ethernet,
                                                     std::span<const std::byte>(data, m->data_len), m->pkt_len, d);
      if (v != pcap::FrameVerdict::Accepted) {
        if (v == pcap::FrameVerdict::Truncated || v == pcap::FrameVerdict::BadHeader) ++rejected;
        continue;
      }
      if ((opt_.udp_port != 0 && d.dst_port != opt_.udp_port) || (opt_.address != 0 && d.dst_ip != opt_.address)) {
        continue;  // another feed on the same wire
      }
      Message& msg = out.emplace_back();
      msg.set_payload(d.payload.data(), d.payload.size());
      msg.rx_tsc = hw_stamps_ && (m->ol_flags & port_.timestamp_flag) != 0 ? to_tsc(stamp_of(m)) : now;
      bytes += d.payload.size();
      ++appended;
    }
    b.count = got;
    if (appended == 0) {
      rte_pktmbuf_free_bulk(b.mbufs.data(), got);  // no release() comes for an empty poll
    } else {
      ++polls_out_;
      counters_.polled(appended, bytes);
    }
    if (rejected != 0) counters_.rejects.add(rejected);
    return appended;
  }

  void release(Burst<>& done) noexcept override {
    (void)done;  // one release per non-empty poll, in poll order (see the header comment)
    if (polls_back_ != polls_out_) free_oldest();
  }

  [[nodiscard]] bool finished() const noexcept override {
    return finished_.load(std::memory_order_acquire);  // acquire: pairs with the release-store in poll()
  }

  [[nodiscard]] adapter::SourceStats stats() const noexcept override {
    adapter::SourceStats s = counters_.snapshot();
    details_.fill(s.details);
    return s;
  }

 private:
  struct Batch {
    std::array<rte_mbuf*, kBatch> mbufs{};
    std::uint16_t count = 0;
  };

  void free_oldest() noexcept {
    Batch& b = batches_[polls_back_++ & (kMaxOutstanding - 1)];
    rte_pktmbuf_free_bulk(b.mbufs.data(), b.count);
    b.count = 0;
  }

  /// The port's figures into details_, and the NIC's drop counters (imissed: ring full; rx_nombuf:
  /// mempool empty) and errors as the source's drops/errors. Not free (rte_eth_stats_get, xstats):
  /// every kRefreshNs from poll(), and at stop.
  void publish_port_counters() noexcept {
    details_.refresh();
    counters_.drops.set(details_.value(PortDetails::IMissed) + details_.value(PortDetails::RxNoMbuf));
    counters_.errors.set(details_.value(PortDetails::IErrors));
  }

  [[nodiscard]] std::uint64_t stamp_of(const rte_mbuf* m) const noexcept {
    return *RTE_MBUF_DYNFIELD(m, port_.timestamp_offset, const rte_mbuf_timestamp_t*);
  }
  [[nodiscard]] std::uint64_t to_tsc(std::uint64_t device) const noexcept {
    const double dt = static_cast<double>(static_cast<std::int64_t>(device - device0_)) * tsc_per_device_tick_;
    return static_cast<std::uint64_t>(static_cast<double>(tsc0_) + dt);
  }

  void calibrate_timestamps() noexcept {
    hw_stamps_ = false;
    if (!opt_.timestamps || !port_.rx_timestamp) return;
    std::uint64_t d0 = 0, d1 = 0;
    if (rte_eth_read_clock(port_.port_id, &d0) != 0) return;
    const std::uint64_t t0 = TscClock::ticks();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (rte_eth_read_clock(port_.port_id, &d1) != 0 || d1 <= d0) return;
    const std::uint64_t t1 = TscClock::ticks();
    tsc_per_device_tick_ = static_cast<double>(t1 - t0) / static_cast<double>(d1 - d0);
    device0_ = d1;
    tsc0_ = t1;
    hw_stamps_ = true;
  }

  SourceOptions opt_;
  PortHandle port_;
  const TscClock* clock_ = nullptr;
  bool started_ = false;
  bool hw_stamps_ = false;
  double tsc_per_device_tick_ = 1.0;
  std::uint64_t device0_ = 0, tsc0_ = 0;
  // Owner-thread state.
  std::array<Batch, kMaxOutstanding> batches_{};
  std::uint64_t polls_out_ = 0;   // non-empty polls handed out
  std::uint64_t polls_back_ = 0;  // of those, released
  std::uint64_t idle_ticks_ = 0;
  std::uint64_t last_rx_tsc_ = 0;
  static constexpr std::uint64_t kRefreshNs = 100'000'000;  // port counters into stats: 10 times a second
  std::uint64_t refresh_ticks_ = 0;
  std::uint64_t next_refresh_tsc_ = 0;
  PortDetails details_;
  bool finished_flag_ = false;
  // Read from any thread.
  std::atomic<bool> finished_{false};
  adapter::SourceCounters counters_;
};

}  // namespace

std::unique_ptr<adapter::Source> make_source(SourceOptions options) {
  return std::make_unique<DpdkSource>(std::move(options));
}

}  // namespace hypergate::dpdk
