#pragma once
// DPDK environment: the [dpdk] section, the EAL (initialised once per process) and the ports.
//
//   [dpdk]
//   cores          = [0]          # EAL lcores (-l); default: lcore 0 on the calling thread's CPU set
//   memory         = 256          # MB reserved by the EAL (-m)
//   no_huge        = false        # --no-huge: plain anonymous memory (no hugepages on this machine)
//   in_memory      = true         # --in-memory: no shared runtime files (several processes at once)
//   no_pci         = false        # --no-pci: do not scan the PCI bus (vdevs only)
//   vdevs          = ["net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap", "net_ring0"]   # --vdev each
//   allow          = ["0000:03:00.0"]   # -a each (PCI allow list)
//   block          = []                 # -b each (PCI block list)
//   eal_args       = []                 # appended verbatim, e.g. ["--file-prefix=hg1"]
//   log_level      = "warning"          # --log-level
//   rx_descriptors = 1024         # per rx queue (adjusted to the PMD's limits)
//   tx_descriptors = 1024         # per tx queue
//   mbufs          = 8191         # mbufs per mempool (one mempool per NUMA socket in use)
//   mbuf_cache     = 256          # per-lcore mempool cache
//   promiscuous    = true
//   mtu            = 0            # 0 = the PMD's default
//
// Why it is shaped so
//  - DPDK allows one rte_eal_init per process. The settings are read from the configuration (the
//    section reader registered with the adapter registry, so `config check` validates them without
//    touching DPDK) and the EAL is brought up lazily by the first dpdk source or sink that starts, on
//    its own worker thread (the EAL's main lcore is that thread). A second start with other settings,
//    or an EAL some other code initialised, is an error with a message, never a crash.
//  - Ports are shared: a source and a sink may use the same port (net_ring loopback). Factories declare
//    what they need (an rx queue per source, a tx queue per worker) while the configuration is read;
//    the first start() configures and starts the port with all of it at once.
//  - DPDK types stay in adapters/dpdk/*.cpp: this header only forward-declares rte_mempool.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hypergate/adapter/adapter_counters.hpp"
#include "hypergate/config/config.hpp"
#include "hypergate/core/status.hpp"

struct rte_mempool;

namespace hypergate::dpdk {

struct EalSettings {
  std::vector<std::int64_t> cores;
  std::int64_t memory_mb = 256;
  bool no_huge = false;
  bool in_memory = true;
  bool no_pci = false;
  std::vector<std::string> vdevs;
  std::vector<std::string> allow;
  std::vector<std::string> block;
  std::vector<std::string> eal_args;
  std::string log_level = "warning";
  std::uint16_t rx_descriptors = 1024;
  std::uint16_t tx_descriptors = 1024;
  std::uint32_t mbufs = 8191;
  std::uint32_t mbuf_cache = 256;
  bool promiscuous = true;
  std::uint16_t mtu = 0;

  friend bool operator==(const EalSettings&, const EalSettings&) = default;
};

/// Reads [dpdk] (absent = defaults) into the process-wide settings the factories copy.
void read_dpdk_section(config::Section& section);
/// The settings of the last configuration read.
[[nodiscard]] EalSettings current_settings();

/// The EAL arguments `settings` translate to (argv[0] included). Exposed for tests and logs.
[[nodiscard]] std::vector<std::string> eal_arguments(const EalSettings& settings);

/// Brings the EAL up once per process (thread-safe, cold path). Later calls with equal settings
/// succeed at once; different settings are an error naming the first.
[[nodiscard]] Result<void> ensure_eal(const EalSettings& settings);

/// What an adapter asks of a port while the configuration is read (before anything starts).
struct PortClaim {
  std::string port;        ///< ethdev name ("net_ring0", a PCI address) or a decimal index
  bool wants_rx = false;   ///< true: one more rx queue for this claimant
  unsigned tx_queues = 0;  ///< tx queues needed (one per worker for sinks)
};
/// Records a claim and returns the rx queue index it will get (0.. in claim order) when wants_rx.
/// Claims from an earlier configuration load of the same process are forgotten by reset_claims().
[[nodiscard]] std::uint16_t claim_port(const PortClaim& claim);
void reset_claims();

/// A configured and started port, as the adapters use it.
struct PortHandle {
  std::uint16_t port_id = 0;
  std::string name;
  rte_mempool* pool = nullptr;
  std::uint16_t rx_queues = 0;
  std::uint16_t tx_queues = 0;
  bool rx_timestamp = false;           ///< the PMD stamps rx mbufs (dynamic field registered)
  int timestamp_offset = -1;           ///< dynfield offset, -1 when none
  std::uint64_t timestamp_flag = 0;    ///< ol_flags bit saying "this mbuf carries a stamp"
  bool tx_ip_checksum = false;         ///< PMD computes the IPv4 header checksum
  bool tx_udp_checksum = false;        ///< PMD computes the UDP checksum
};

/// Resolves `name_or_index`, configures and starts the port on first use (EAL must be up).
[[nodiscard]] Result<PortHandle> open_port(const std::string& name_or_index, const EalSettings& settings);

/// The adapter that opened `port_id` is done with it. When the last user closes it the port is stopped
/// and closed (a net_pcap tx file is flushed and closed, an af_packet socket released). Cold path.
void close_port(std::uint16_t port_id) noexcept;

/// Link, rte_eth_stats and non-zero xstats of a port as "key value" text lines (cold path: logs).
[[nodiscard]] std::string describe_port(std::uint16_t port_id);

/// Counters for SourceStats/SinkStats.
struct PortCounters {
  std::uint64_t ipackets = 0, opackets = 0, ibytes = 0, obytes = 0;
  std::uint64_t imissed = 0, ierrors = 0, oerrors = 0, rx_nombuf = 0;
  bool link_up = false;
  std::uint32_t link_speed_mbps = 0;
};
[[nodiscard]] PortCounters port_counters(std::uint16_t port_id) noexcept;

/// A port's figures for SourceStats/SinkStats::details: link state, rte_eth_stats and up to kXstats
/// PMD-specific xstats (the generic ethdev ones repeat rte_eth_stats). refresh() reads them on the
/// owning worker (a few hundred ns: call it on a timer, never per burst); fill() copies the last values
/// on any thread. Threading: bind() and refresh() on one thread; fill() anywhere.
class PortDetails {
 public:
  static constexpr std::size_t kBasic = 10;
  static constexpr std::size_t kXstats = adapter::AdapterCounters::kMaxAdapterCounters - kBasic;

  /// Cold path: chooses the xstats to follow. Call once, before the first refresh().
  void bind(std::uint16_t port_id);
  void refresh() noexcept;
  void fill(adapter::AdapterCounters& out) const noexcept;
  [[nodiscard]] std::uint64_t value(std::size_t i) const noexcept {
    return values_[i].load(std::memory_order_relaxed);  // relaxed: a counter snapshot, nothing ordered by it
  }
  enum Index : std::size_t { LinkUp, LinkSpeed, IPackets, IBytes, IMissed, IErrors, RxNoMbuf, OPackets, OBytes, OErrors };

 private:
  std::uint16_t port_ = 0;
  std::array<std::uint64_t, kXstats> xstat_ids_{};
  std::array<std::array<char, adapter::AdapterCounters::kMaxCounterName>, kXstats> xstat_names_{};
  std::atomic<std::size_t> xstats_{0};  // release in bind(), acquire in fill(): names are written before
  std::atomic<bool> bound_{false};      // release in bind(), acquire in fill()
  std::array<std::atomic<std::uint64_t>, kBasic + kXstats> values_{};
};

}  // namespace hypergate::dpdk
