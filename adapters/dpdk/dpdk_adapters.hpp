#pragma once
// The `dpdk` source and sink behind the adapter interface: options as the factories read them
// (dpdk_registration.cpp), and constructors. No DPDK type appears here; see dpdk_source.cpp and
// dpdk_sink.cpp for the shapes and guarantees, eal.hpp for the [dpdk] section.
#include <cstdint>
#include <memory>
#include <string>

#include "dpdk/eal.hpp"
#include "hypergate/adapter/sink.hpp"
#include "hypergate/adapter/source.hpp"
#include "pcap/capture_writer.hpp"

namespace hypergate::dpdk {

struct SourceOptions {
  std::string name;                       ///< instance name, for log lines
  EalSettings eal;                        ///< the [dpdk] section at configuration time
  std::string port;                       ///< ethdev name or decimal index
  std::uint16_t queue = 0;                ///< rx queue (claim order among the port's sources)
  std::uint32_t address = 0;              ///< destination IPv4 to keep (host order), 0 = any
  std::uint16_t udp_port = 0;             ///< destination UDP port to keep, 0 = any
  bool timestamps = true;                 ///< use the PMD's rx timestamps when offered
  std::uint64_t finish_after_idle_ns = 0; ///< 0 = never finished
};

enum class SinkFraming : std::uint8_t { Raw, MoldUdp64 };

struct SinkOptions {
  std::string name;
  EalSettings eal;
  std::string port;
  std::uint16_t queue = 0;                ///< tx queue of this instance (its worker)
  unsigned this_worker = 0;
  unsigned owner_worker = 0;              ///< moldudp64: the one worker owning the sequence space
  SinkFraming framing = SinkFraming::Raw;
  std::string session = "HYPERGATE";
  std::uint32_t mtu = 1400;               ///< largest UDP payload produced
  std::uint64_t heartbeat_interval_ns = 1'000'000'000ull;
  std::uint32_t tx_retries = 16;          ///< extra rte_eth_tx_burst calls for what the ring did not take
  pcap::FrameAddresses addresses;         ///< src/dst MAC, IPv4 and UDP port stamped on every frame
};

[[nodiscard]] std::unique_ptr<adapter::Source> make_source(SourceOptions options);
[[nodiscard]] std::unique_ptr<adapter::Sink> make_sink(SinkOptions options);

}  // namespace hypergate::dpdk
