// Registers the [dpdk] section and the `dpdk` source and sink. The factories read and check their
// keys and claim port queues (bookkeeping only): nothing touches DPDK before start().
#include <memory>
#include <string>

#include "dpdk/dpdk_adapters.hpp"
#include "dpdk/eal.hpp"
#include "hypergate/adapter/registry.hpp"
#include "protocols/moldudp64.hpp"

namespace hypergate::dpdk {
namespace {

Error bad_config(std::string_view kind) {
  return Error{Status::InvalidArgument, "invalid " + std::string(kind) + " configuration (see the errors above)"};
}

/// "a.b.c.d:port" -> host-order address and port; reports through the section.
bool read_ipv4_port(config::Section& s, std::string_view key, std::string_view def, bool required,
                    std::uint32_t& address, std::uint16_t& port) {
  if (required && !s.has(key)) {
    (void)s.required_string(key);
    return false;
  }
  const auto ep = s.endpoint(key, def);
  if (!ep) return false;
  auto ip = pcap::parse_ipv4(ep->host == "" ? "0.0.0.0" : ep->host);
  if (!ip) {
    s.error(key, "expected an IPv4 address and port, got host '" + ep->host + "'");
    return false;
  }
  address = *ip;
  port = ep->port;
  return true;
}

std::string read_port(config::Section& s) {
  auto port = s.required_string("port");
  if (!port) return {};
  if (port->empty()) s.error("port", "an ethdev name (e.g. \"net_ring0\") or a decimal port index");
  return *port;
}

Result<std::unique_ptr<adapter::Source>> make_dpdk_source(config::Section& s, const adapter::Context& ctx) {
  SourceOptions o;
  o.name = ctx.name;
  o.eal = current_settings();
  o.port = read_port(s);
  bool ok = !o.port.empty();
  ok = read_ipv4_port(s, "listen", "0.0.0.0:0", false, o.address, o.udp_port) && ok;
  o.timestamps = s.boolean("timestamps", true);
  o.finish_after_idle_ns = s.duration_ns("finish_after_idle", 0);
  if (!ok) return bad_config("dpdk source");
  o.queue = claim_port(PortClaim{o.port, true, 0});
  return make_source(std::move(o));
}

Result<std::unique_ptr<adapter::Sink>> make_dpdk_sink(config::Section& s, const adapter::Context& ctx) {
  SinkOptions o;
  o.name = ctx.name;
  o.eal = current_settings();
  o.this_worker = ctx.worker;
  o.port = read_port(s);
  bool ok = !o.port.empty();
  ok = read_ipv4_port(s, "destination", "", true, o.addresses.dst_ip, o.addresses.dst_port) && ok;
  if (ok && o.addresses.dst_port == 0) {
    s.error("destination", "destination port must not be 0");
    ok = false;
  }
  ok = read_ipv4_port(s, "source", "10.0.0.1:40000", false, o.addresses.src_ip, o.addresses.src_port) && ok;
  if (auto mac = pcap::parse_mac(s.string("src_mac", "02:00:00:00:00:01"))) {
    o.addresses.src_mac = *mac;
  } else {
    s.error("src_mac", mac.error().message);
    ok = false;
  }
  const std::string dst_mac = s.string("dst_mac", "");
  if (!dst_mac.empty()) {
    if (auto mac = pcap::parse_mac(dst_mac)) {
      o.addresses.dst_mac = *mac;
    } else {
      s.error("dst_mac", mac.error().message);
      ok = false;
    }
  } else if ((o.addresses.dst_ip >> 28) == 0xE) {
    o.addresses.dst_mac = pcap::multicast_mac(o.addresses.dst_ip);
  } else {
    o.addresses.dst_mac = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  }
  o.framing = s.choice("framing", "raw", {"raw", "moldudp64"}) == "moldudp64" ? SinkFraming::MoldUdp64
                                                                              : SinkFraming::Raw;
  const auto last_worker = static_cast<std::int64_t>(ctx.workers == 0 ? 0 : ctx.workers - 1);
  o.owner_worker = static_cast<unsigned>(s.integer("worker", 0, 0, last_worker));
  o.session = s.string("session", "HYPERGATE");
  if (o.session.empty() || o.session.size() > protocols::mold::kSessionSize) {
    s.error("session", "a MoldUDP64 session name has 1 to 10 characters, got '" + o.session + "'");
    ok = false;
  }
  o.mtu = static_cast<std::uint32_t>(s.integer("mtu", 1400, 64, 2000));
  o.heartbeat_interval_ns = s.duration_ns("heartbeat_interval", 1'000'000'000ull);
  if (s.has("heartbeat_interval") && o.heartbeat_interval_ns == 0) {
    s.error("heartbeat_interval", "must be greater than 0");
    ok = false;
  }
  o.tx_retries = static_cast<std::uint32_t>(s.integer("tx_retries", 16, 0, 1 << 20));
  if (o.framing == SinkFraming::Raw) {
    for (std::string_view key : {"session", "heartbeat_interval", "worker"}) {
      if (s.has(key)) {
        s.error(key, "'" + std::string(key) + "' applies to framing = \"moldudp64\" only");
        ok = false;
      }
    }
  }
  if (!ok) return bad_config("dpdk sink");
  // Raw: every worker's instance sends on its own tx queue. MoldUDP64: only the owner sends.
  o.queue = static_cast<std::uint16_t>(o.framing == SinkFraming::Raw ? ctx.worker : 0);
  (void)claim_port(PortClaim{o.port, false, o.framing == SinkFraming::Raw ? ctx.workers : 1u});
  return make_sink(std::move(o));
}

// Static registration: this library is linked whole into `hypergate` and the tests (HG_ADAPTER_LIBS).
const bool registered = [] {
  auto& registry = adapter::Registry::global();
  const bool section = registry
                           .add_section("dpdk",
                                        "DPDK EAL and port settings (cores, memory, no_huge, in_memory, no_pci, "
                                        "vdevs, allow, block, eal_args, log_level, rx_descriptors, tx_descriptors, "
                                        "mbufs, mbuf_cache, promiscuous, mtu)",
                                        read_dpdk_section)
                           .ok();
  const bool source = registry
                          .add_source("dpdk",
                                      "UDP payloads from a DPDK port's rx queue, zero-copy from the mbufs "
                                      "(port, listen, timestamps, finish_after_idle)",
                                      make_dpdk_source)
                          .ok();
  const bool sink = registry
                        .add_sink("dpdk",
                                  "Ethernet/IPv4/UDP frames built in mbufs, raw or MoldUDP64 (port, source, "
                                  "destination, src_mac, dst_mac, framing, session, mtu, heartbeat_interval, "
                                  "tx_retries, worker)",
                                  make_dpdk_sink)
                        .ok();
  return section && source && sink;
}();

}  // namespace
}  // namespace hypergate::dpdk
