// The DPDK environment (see eal.hpp): settings, one EAL per process, ports configured on first use.
#include "dpdk/eal.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <sched.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <algorithm>
#include <map>
#include <string>

namespace hypergate::dpdk {
namespace {

// Everything here is cold path (configuration, start-up) and guarded by one mutex.
std::mutex& state_mutex() {
  static std::mutex m;
  return m;
}
struct ClaimTotals {
  std::uint16_t rx = 0;
  unsigned tx = 0;
};
struct State {
  EalSettings settings;                          // last configuration read
  std::map<std::string, ClaimTotals> claims;     // by the port string adapters used
  bool eal_up = false;
  EalSettings eal_settings;                      // what the EAL was started with
  std::string eal_error;                         // a failed init cannot be retried (DPDK's rule)
  std::map<std::uint16_t, PortHandle> ports;     // started ports
  std::map<std::uint16_t, unsigned> port_users;  // open_port() calls not yet matched by close_port()
  std::map<int, rte_mempool*> pools;             // by socket
};
State& state() {
  static State s;
  return s;
}

Error fail(std::string message) { return Error{Status::InvalidArgument, "dpdk: " + std::move(message)}; }

std::string join_cpus(const cpu_set_t& set) {
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out += (out.empty() ? "" : ",") + std::to_string(c);
  }
  return out;
}

std::uint64_t hugepages_total() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  std::uint64_t value = 0;
  while (f >> key) {
    if (key == "HugePages_Total:") {
      f >> value;
      return value;
    }
    f.ignore(1 << 10, '\n');
  }
  return 0;
}

bool parse_index(const std::string& s, std::uint16_t& out) {
  if (s.empty()) return false;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v > 0xFFFF) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

std::string port_name(std::uint16_t id) {
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  if (rte_eth_dev_get_name_by_port(id, name) != 0) return "?";
  return name;
}

std::string ports_list() {
  std::string out;
  std::uint16_t id = 0;
  RTE_ETH_FOREACH_DEV(id) { out += (out.empty() ? "" : ", ") + std::to_string(id) + " " + port_name(id); }
  return out.empty() ? "none" : out;
}

std::string rte_message(int code) { return std::string(rte_strerror(code)) + " (rte_errno " + std::to_string(code) + ")"; }

Result<rte_mempool*> pool_for_socket(State& st, int socket, const EalSettings& s) {
  if (auto it = st.pools.find(socket); it != st.pools.end()) return it->second;
  const std::string name = "hg_pool_s" + std::to_string(socket);
  rte_mempool* pool = rte_pktmbuf_pool_create(name.c_str(), s.mbufs, s.mbuf_cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                              socket);
  if (pool == nullptr) {
    return fail("cannot create mempool '" + name + "' of " + std::to_string(s.mbufs) + " mbufs on socket " +
                std::to_string(socket) + ": " + rte_message(rte_errno) +
                " (raise [dpdk] memory or lower mbufs)");
  }
  st.pools.emplace(socket, pool);
  return pool;
}

}  // namespace

void read_dpdk_section(config::Section& s) {
  EalSettings e;
  e.cores = s.integer_list("cores", 0, RTE_MAX_LCORE - 1);
  e.memory_mb = s.integer("memory", 256, 16, 1 << 20);
  e.no_huge = s.boolean("no_huge", false);
  e.in_memory = s.boolean("in_memory", true);
  e.no_pci = s.boolean("no_pci", false);
  e.vdevs = s.string_list("vdevs");
  for (const auto& v : e.vdevs) {
    if (v.empty() || v.front() == ',') s.error("vdevs", "a vdev starts with its driver and name, e.g. \"net_ring0\"");
  }
  e.allow = s.string_list("allow");
  e.block = s.string_list("block");
  if (!e.allow.empty() && !e.block.empty()) s.error("block", "give either an allow list or a block list, not both");
  e.eal_args = s.string_list("eal_args");
  e.log_level = s.choice("log_level", "warning",
                         {"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"});
  e.rx_descriptors = static_cast<std::uint16_t>(s.integer("rx_descriptors", 1024, 32, 32768));
  e.tx_descriptors = static_cast<std::uint16_t>(s.integer("tx_descriptors", 1024, 32, 32768));
  e.mbufs = static_cast<std::uint32_t>(s.integer("mbufs", 8191, 512, 1 << 24));
  e.mbuf_cache = static_cast<std::uint32_t>(s.integer("mbuf_cache", 256, 0, RTE_MEMPOOL_CACHE_MAX_SIZE));
  e.promiscuous = s.boolean("promiscuous", true);
  e.mtu = static_cast<std::uint16_t>(s.integer("mtu", 0, 0, 9600));
  if (e.mtu != 0 && e.mtu < 68) s.error("mtu", "an IPv4 MTU is at least 68 (0 = the PMD's default)");
  std::lock_guard lock(state_mutex());
  state().settings = std::move(e);
  state().claims.clear();  // a new configuration: its factories claim again
}

EalSettings current_settings() {
  std::lock_guard lock(state_mutex());
  return state().settings;
}

void reset_claims() {
  std::lock_guard lock(state_mutex());
  state().claims.clear();
}

std::uint16_t claim_port(const PortClaim& claim) {
  std::lock_guard lock(state_mutex());
  ClaimTotals& t = state().claims[claim.port];
  std::uint16_t queue = 0;
  if (claim.wants_rx) queue = t.rx++;
  if (claim.tx_queues > t.tx) t.tx = claim.tx_queues;
  return queue;
}

std::vector<std::string> eal_arguments(const EalSettings& s) {
  std::vector<std::string> a{"hypergate"};
  if (!s.cores.empty()) {
    std::string list;
    for (auto c : s.cores) list += (list.empty() ? "" : ",") + std::to_string(c);
    a.push_back("-l");
    a.push_back(list);
  } else {
    // lcore 0 runs on whatever CPUs the starting thread may use: the EAL keeps the runtime's pinning.
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) {
      a.push_back("--lcores=0@(" + join_cpus(set) + ")");
    } else {
      a.push_back("-l");
      a.push_back("0");
    }
  }
  a.push_back("-m");
  a.push_back(std::to_string(s.memory_mb));
  // --no-huge implies legacy memory, which DPDK refuses with --in-memory; --no-shconf gives the same
  // "no shared runtime files" there, so several processes can run side by side.
  if (s.no_huge) a.push_back("--no-huge");
  if (s.in_memory) a.push_back(s.no_huge ? "--no-shconf" : "--in-memory");
  if (s.no_pci) a.push_back("--no-pci");
  a.push_back("--no-telemetry");
  a.push_back("--log-level=" + s.log_level);
  for (const auto& v : s.vdevs) a.push_back("--vdev=" + v);
  for (const auto& v : s.allow) a.push_back("--allow=" + v);
  for (const auto& v : s.block) a.push_back("--block=" + v);
  for (const auto& v : s.eal_args) a.push_back(v);
  return a;
}

// A worker other than the one that ran rte_eal_init is a non-EAL thread: registering it gives it an
// lcore id, hence its own mempool cache (rte_pktmbuf_alloc/free without touching the shared ring each
// time). Failure (no free lcore id) only costs that cache: a warning, not an error.
namespace {
void register_this_thread() {
  if (rte_lcore_id() != LCORE_ID_ANY) return;
  if (rte_thread_register() != 0) {
    std::fprintf(stderr, "dpdk: warning: cannot register this worker thread with the EAL (%s): no mempool cache\n",
                 rte_strerror(rte_errno));
  }
}
}  // namespace

Result<void> ensure_eal(const EalSettings& s) {
  std::lock_guard lock(state_mutex());
  State& st = state();
  if (st.eal_up) {
    if (st.eal_settings == s) {
      register_this_thread();
      return {};
    }
    return fail("EAL already initialised in this process with other [dpdk] settings (DPDK allows one "
                "rte_eal_init per process: run the other configuration in its own process)");
  }
  if (!st.eal_error.empty()) return fail(st.eal_error);
  if (!s.no_huge && hugepages_total() == 0) {
    st.eal_error = "no hugepages reserved (HugePages_Total is 0 in /proc/meminfo): set no_huge = true in [dpdk] "
                   "(plain memory, fine for vdevs and tests) or reserve hugepages, e.g. "
                   "`echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages`";
    return fail(st.eal_error);
  }
  std::vector<std::string> args = eal_arguments(s);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int r = rte_eal_init(static_cast<int>(args.size()), argv.data());
  if (r < 0) {
    const int code = rte_errno;
    std::string cmd;
    for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
    st.eal_error = code == EALREADY
                       ? "EAL already initialised in this process by someone else (rte_eal_init: " +
                             rte_message(code) + ")"
                       : "rte_eal_init failed: " + rte_message(code) +
                             (code == ENODEV && !s.vdevs.empty()
                                  ? " - a vdev's driver is not available (known PMDs here include net_pcap, "
                                    "net_ring, net_null, net_af_packet; the name must start with the driver's)"
                                  : "") +
                             " (EAL's own messages are above; arguments: " + cmd + ")";
    return fail(st.eal_error);
  }
  st.eal_up = true;
  st.eal_settings = s;
  if (rte_eth_dev_count_avail() == 0) {
    return fail("no Ethernet ports after EAL init: no NIC is bound to a DPDK driver and no vdev created one "
                "(add one to [dpdk] vdevs, e.g. \"net_ring0\" or \"net_pcap0,rx_pcap=in.pcap\")");
  }
  return {};
}

Result<PortHandle> open_port(const std::string& which, const EalSettings& s) {
  std::lock_guard lock(state_mutex());
  State& st = state();
  if (!st.eal_up) return fail("EAL is not initialised");
  const unsigned count = rte_eth_dev_count_avail();
  if (count == 0) return fail("no Ethernet ports (add a vdev to [dpdk] vdevs)");
  std::uint16_t id = 0;
  if (parse_index(which, id)) {
    if (!rte_eth_dev_is_valid_port(id)) {
      return fail("port index " + which + " out of range (" + std::to_string(count) + " port(s): " + ports_list() + ")");
    }
  } else if (rte_eth_dev_get_port_by_name(which.c_str(), &id) != 0) {
    return fail("no port named '" + which + "' (ports: " + ports_list() +
                "; a vdev's port is named after the vdev, e.g. net_ring0)");
  }
  if (auto it = st.ports.find(id); it != st.ports.end()) {
    ++st.port_users[id];
    return it->second;
  }

  ClaimTotals want{};
  for (const auto& [key, t] : st.claims) {
    std::uint16_t kid = 0;
    const bool same = parse_index(key, kid) ? kid == id : (rte_eth_dev_get_port_by_name(key.c_str(), &kid) == 0 && kid == id);
    if (!same) continue;
    want.rx = static_cast<std::uint16_t>(want.rx + t.rx);
    want.tx = std::max(want.tx, t.tx);
  }
  if (want.rx == 0) want.rx = 1;  // every port gets an rx queue (a PMD needs one to start)
  if (want.tx == 0) want.tx = 1;

  rte_eth_dev_info info{};
  if (int r = rte_eth_dev_info_get(id, &info); r != 0) return fail("rte_eth_dev_info_get(" + which + "): " + rte_message(-r));
  PortHandle h;
  h.port_id = id;
  h.name = port_name(id);
  if (want.rx > info.max_rx_queues) {
    return fail("port " + h.name + " (" + info.driver_name + ") has " + std::to_string(info.max_rx_queues) +
                " rx queue(s), " + std::to_string(want.rx) + " dpdk source(s) use it");
  }
  const auto tx = static_cast<std::uint16_t>(std::min<unsigned>(want.tx, info.max_tx_queues));
  rte_eth_conf conf{};
  if (want.rx > 1 && info.flow_type_rss_offloads != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  }
  if ((info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP) != 0) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
    h.rx_timestamp = rte_mbuf_dyn_rx_timestamp_register(&h.timestamp_offset, &h.timestamp_flag) == 0;
    if (!h.rx_timestamp) conf.rxmode.offloads &= ~RTE_ETH_RX_OFFLOAD_TIMESTAMP;
  }
  if ((info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0) {
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    h.tx_ip_checksum = true;
  }
  if ((info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0) {
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    h.tx_udp_checksum = true;
  }
  if (int r = rte_eth_dev_configure(id, want.rx, tx, &conf); r != 0) {
    return fail("rte_eth_dev_configure(" + h.name + ", " + std::to_string(want.rx) + " rx, " + std::to_string(tx) +
                " tx): " + rte_message(-r));
  }
  std::uint16_t rxd = s.rx_descriptors, txd = s.tx_descriptors;
  if (int r = rte_eth_dev_adjust_nb_rx_tx_desc(id, &rxd, &txd); r != 0) {
    return fail("rte_eth_dev_adjust_nb_rx_tx_desc(" + h.name + "): " + rte_message(-r));
  }
  int socket = rte_eth_dev_socket_id(id);
  if (socket < 0) socket = static_cast<int>(rte_socket_id());
  auto pool = pool_for_socket(st, socket, s);
  if (!pool) return pool.error();
  h.pool = *pool;
  rte_eth_rxconf rxconf = info.default_rxconf;
  rxconf.offloads = conf.rxmode.offloads;
  for (std::uint16_t q = 0; q < want.rx; ++q) {
    if (int r = rte_eth_rx_queue_setup(id, q, rxd, static_cast<unsigned>(socket), &rxconf, h.pool); r != 0) {
      return fail("rte_eth_rx_queue_setup(" + h.name + ", queue " + std::to_string(q) + "): " + rte_message(-r));
    }
  }
  rte_eth_txconf txconf = info.default_txconf;
  txconf.offloads = conf.txmode.offloads;
  for (std::uint16_t q = 0; q < tx; ++q) {
    if (int r = rte_eth_tx_queue_setup(id, q, txd, static_cast<unsigned>(socket), &txconf); r != 0) {
      return fail("rte_eth_tx_queue_setup(" + h.name + ", queue " + std::to_string(q) + "): " + rte_message(-r));
    }
  }
  if (s.mtu != 0) {
    if (int r = rte_eth_dev_set_mtu(id, s.mtu); r != 0) {
      return fail("rte_eth_dev_set_mtu(" + h.name + ", " + std::to_string(s.mtu) + "): " + rte_message(-r));
    }
  }
  if (int r = rte_eth_dev_start(id); r != 0) return fail("rte_eth_dev_start(" + h.name + "): " + rte_message(-r));
  if (s.promiscuous) {
    const int r = rte_eth_promiscuous_enable(id);
    if (r != 0 && r != -ENOTSUP) {
      std::fprintf(stderr, "dpdk: port %s: promiscuous mode: %s\n", h.name.c_str(), rte_strerror(-r));
    }
  }
  h.rx_queues = want.rx;
  h.tx_queues = tx;
  std::fprintf(stderr, "dpdk: port %u %s (%s) started: %u rx / %u tx queue(s), %u/%u descriptors%s%s%s\n", id,
               h.name.c_str(), info.driver_name, want.rx, tx, rxd, txd, h.rx_timestamp ? ", rx timestamps" : "",
               h.tx_ip_checksum ? ", tx ip checksum offload" : "", h.tx_udp_checksum ? ", tx udp checksum offload" : "");
  st.ports.emplace(id, h);
  st.port_users[id] = 1;
  return h;
}

void close_port(std::uint16_t id) noexcept {
  std::lock_guard lock(state_mutex());
  State& st = state();
  auto users = st.port_users.find(id);
  if (users == st.port_users.end() || users->second == 0) return;
  if (--users->second != 0) return;
  st.port_users.erase(users);
  st.ports.erase(id);
  if (int r = rte_eth_dev_stop(id); r != 0) {
    std::fprintf(stderr, "dpdk: port %u: rte_eth_dev_stop: %s\n", id, rte_strerror(-r));
  }
  if (int r = rte_eth_dev_close(id); r != 0) {
    std::fprintf(stderr, "dpdk: port %u: rte_eth_dev_close: %s\n", id, rte_strerror(-r));
  }
}

PortCounters port_counters(std::uint16_t id) noexcept {
  PortCounters c;
  rte_eth_stats s{};
  if (rte_eth_stats_get(id, &s) == 0) {
    c.ipackets = s.ipackets;
    c.opackets = s.opackets;
    c.ibytes = s.ibytes;
    c.obytes = s.obytes;
    c.imissed = s.imissed;
    c.ierrors = s.ierrors;
    c.oerrors = s.oerrors;
    c.rx_nombuf = s.rx_nombuf;
  }
  rte_eth_link link{};
  if (rte_eth_link_get_nowait(id, &link) == 0) {
    c.link_up = link.link_status == RTE_ETH_LINK_UP;
    c.link_speed_mbps = link.link_speed;
  }
  return c;
}

namespace {
constexpr std::array<const char*, PortDetails::kBasic> kBasicNames{
    "link_up", "link_speed_mbps", "ipackets", "ibytes", "imissed", "ierrors", "rx_nombuf", "opackets", "obytes", "oerrors"};

// The ethdev layer's own xstats, which repeat rte_eth_stats: not worth a details slot.
bool generic_xstat(std::string_view n) {
  for (std::string_view g : {"rx_good_packets", "tx_good_packets", "rx_good_bytes", "tx_good_bytes", "rx_missed_errors",
                             "rx_errors", "tx_errors", "rx_mbuf_allocation_errors"}) {
    if (n == g) return true;
  }
  return n.starts_with("rx_q") || n.starts_with("tx_q");
}
}  // namespace

void PortDetails::bind(std::uint16_t port_id) {
  port_ = port_id;
  std::size_t chosen = 0;
  const int n = rte_eth_xstats_get_names(port_id, nullptr, 0);
  if (n > 0) {
    std::vector<rte_eth_xstat_name> names(static_cast<std::size_t>(n));
    if (rte_eth_xstats_get_names(port_id, names.data(), static_cast<unsigned>(n)) == n) {
      for (int i = 0; i < n && chosen < kXstats; ++i) {
        const std::string_view name(names[static_cast<std::size_t>(i)].name);
        if (generic_xstat(name)) continue;
        xstat_ids_[chosen] = static_cast<std::uint64_t>(i);
        const std::size_t len = std::min(name.size(), adapter::AdapterCounters::kMaxCounterName - 1);
        std::copy_n(name.data(), len, xstat_names_[chosen].data());
        xstat_names_[chosen][len] = '\0';
        ++chosen;
      }
    }
  }
  xstats_.store(chosen, std::memory_order_release);  // release: pairs with the acquire-load in fill()
  bound_.store(true, std::memory_order_release);     // release: pairs with the acquire-load in fill()
  refresh();
}

void PortDetails::refresh() noexcept {
  const PortCounters c = port_counters(port_);
  const std::array<std::uint64_t, kBasic> basic{c.link_up ? 1u : 0u, c.link_speed_mbps, c.ipackets, c.ibytes, c.imissed,
                                                 c.ierrors, c.rx_nombuf, c.opackets, c.obytes, c.oerrors};
  // relaxed: single writer; readers want a recent snapshot, nothing is ordered by these values.
  for (std::size_t i = 0; i < kBasic; ++i) values_[i].store(basic[i], std::memory_order_relaxed);
  const std::size_t x = xstats_.load(std::memory_order_relaxed);  // relaxed: this thread wrote it in bind()
  if (x == 0) return;
  std::array<std::uint64_t, kXstats> v{};
  if (rte_eth_xstats_get_by_id(port_, xstat_ids_.data(), v.data(), static_cast<unsigned>(x)) != static_cast<int>(x)) return;
  for (std::size_t i = 0; i < x; ++i) values_[kBasic + i].store(v[i], std::memory_order_relaxed);
}

void PortDetails::fill(adapter::AdapterCounters& out) const noexcept {
  if (!bound_.load(std::memory_order_acquire)) return;  // acquire: pairs with the release-store in bind()
  for (std::size_t i = 0; i < kBasic; ++i) out.add(kBasicNames[i], value(i));
  const std::size_t x = xstats_.load(std::memory_order_acquire);  // acquire: the names were written before
  for (std::size_t i = 0; i < x; ++i) out.add(std::string_view(xstat_names_[i].data()), value(kBasic + i));
}

std::string describe_port(std::uint16_t id) {
  const PortCounters c = port_counters(id);
  std::string out = "port " + std::to_string(id) + " " + port_name(id) + ": link " + (c.link_up ? "up" : "down") +
                    " " + std::to_string(c.link_speed_mbps) + " Mbps, ipackets " + std::to_string(c.ipackets) +
                    ", opackets " + std::to_string(c.opackets) + ", imissed " + std::to_string(c.imissed) +
                    ", ierrors " + std::to_string(c.ierrors) + ", oerrors " + std::to_string(c.oerrors) +
                    ", rx_nombuf " + std::to_string(c.rx_nombuf);
  const int n = rte_eth_xstats_get_names(id, nullptr, 0);
  if (n > 0) {
    std::vector<rte_eth_xstat_name> names(static_cast<std::size_t>(n));
    std::vector<rte_eth_xstat> values(static_cast<std::size_t>(n));
    if (rte_eth_xstats_get_names(id, names.data(), static_cast<unsigned>(n)) == n &&
        rte_eth_xstats_get(id, values.data(), static_cast<unsigned>(n)) == n) {
      for (const auto& v : values) {
        if (v.value == 0 || v.id >= names.size()) continue;
        out += std::string(", ") + names[v.id].name + " " + std::to_string(v.value);
      }
    }
  }
  return out;
}

}  // namespace hypergate::dpdk
