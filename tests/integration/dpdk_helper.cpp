// dpdk_helper: DPDK scenarios that need their own process (one EAL per process), driven by dpdk_test.
//
//   dpdk_helper loopback N                 net_ring0: dpdk sink (MoldUDP64) -> ring -> dpdk source; checks
//                                          every message comes back once, in order, with its bytes
//   dpdk_helper receive VDEV GROUP:PORT N MS   a dpdk source on VDEV keeps MoldUDP64 packets to GROUP:PORT
//                                          and checks N messages "hg-<seq>" arrive in order within MS
//   dpdk_helper eal-twice                  calls rte_eal_init itself, then starts a dpdk source: the
//                                          adapter must refuse with a message (exit 1), not crash
//
// Prints one "result: ..." line; exit 0 = the scenario held, 1 = it did not, 2 = usage.
#include <rte_eal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dpdk/dpdk_adapters.hpp"
#include "dpdk/eal.hpp"
#include "protocols/moldudp64.hpp"

namespace {

namespace dp = hypergate::dpdk;
namespace mold = hypergate::protocols::mold;
using hypergate::Burst;

dp::EalSettings base_settings(std::vector<std::string> vdevs) {
  dp::EalSettings e;
  e.no_huge = true;
  e.no_pci = true;
  e.memory_mb = 128;
  e.mbufs = 2047;
  e.vdevs = std::move(vdevs);
  return e;
}

std::string expected_message(std::uint64_t seq) {
  std::string m = "hg-" + std::to_string(seq) + "-";
  while (m.size() < 8 + seq % 61) m += static_cast<char>('a' + seq % 26);
  return m;
}

/// Folds the MoldUDP64 packets of a burst into (next expected sequence, mismatches).
struct MoldChecker {
  std::uint64_t next = 1;
  std::uint64_t messages = 0;
  std::uint64_t bad = 0;
  std::uint64_t packets = 0;
  bool prefix_only = false;  // receive mode: payloads are "hg-<seq>"
  void take(const Burst<>& b) {
    for (const auto& m : b) {
      mold::PacketView v;
      if (mold::PacketView::parse(m.payload(), v) != mold::PacketError::Ok) {
        ++bad;
        continue;
      }
      ++packets;
      for (const auto& block : v.messages()) {
        const std::string got(reinterpret_cast<const char*>(block.data.data()), block.data.size());
        const std::string want = prefix_only ? "hg-" + std::to_string(block.sequence) : expected_message(block.sequence);
        if (block.sequence != next || got != want) ++bad;
        next = block.sequence + 1;
        ++messages;
      }
    }
  }
};

int loopback(std::uint64_t n) {
  const dp::EalSettings eal = base_settings({"net_ring0"});
  dp::SinkOptions so;
  so.name = "loop_out";
  so.eal = eal;
  so.port = "net_ring0";
  so.framing = dp::SinkFraming::MoldUdp64;
  so.session = "LOOPBACK";
  so.addresses.dst_ip = 0xEF010203;  // 239.1.2.3
  so.addresses.dst_port = 31001;
  so.addresses.dst_mac = hypergate::pcap::multicast_mac(so.addresses.dst_ip);
  dp::SourceOptions ro;
  ro.name = "loop_in";
  ro.eal = eal;
  ro.port = "net_ring0";
  ro.address = 0xEF010203;
  ro.udp_port = 31001;
  (void)dp::claim_port({so.port, false, 1});
  ro.queue = dp::claim_port({ro.port, true, 0});
  auto sink = dp::make_sink(so);
  auto source = dp::make_source(ro);
  if (auto r = sink->start(); !r) return std::printf("result: sink start failed: %s\n", r.error().message.c_str()), 1;
  if (auto r = source->start(); !r) return std::printf("result: source start failed: %s\n", r.error().message.c_str()), 1;

  std::vector<std::string> bodies;
  for (std::uint64_t s = 1; s <= n; ++s) bodies.push_back(expected_message(s));
  MoldChecker check;
  std::uint64_t sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Burst<> out;
  while (check.messages < n && std::chrono::steady_clock::now() < deadline) {
    if (sent < n) {
      Burst<> in;
      while (in.size() < in.capacity() && sent + in.size() < n) {
        const std::string& body = bodies[sent + in.size()];
        in.emplace_back().set_payload(body.data(), body.size());
      }
      sent += sink->send(in);
    }
    out.clear();
    if (source->poll(out) != 0) {
      check.take(out);
      source->release(out);
    }
  }
  const auto st = source->stats();
  const auto kt = sink->stats();
  source->stop();
  sink->stop();
  std::printf("result: sent %llu messages, received %llu messages in %llu packets, %llu bad, sink drops %llu, "
              "source messages %llu\n",
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(check.messages),
              static_cast<unsigned long long>(check.packets), static_cast<unsigned long long>(check.bad),
              static_cast<unsigned long long>(kt.drops), static_cast<unsigned long long>(st.messages));
  return check.messages == n && check.bad == 0 && kt.drops == 0 ? 0 : 1;
}

int receive(const std::string& vdev, const std::string& group_port, std::uint64_t n, int ms) {
  const auto colon = group_port.rfind(':');
  auto ip = hypergate::pcap::parse_ipv4(group_port.substr(0, colon));
  if (colon == std::string::npos || !ip) return std::printf("result: bad GROUP:PORT\n"), 2;
  dp::SourceOptions ro;
  ro.name = "rx";
  ro.eal = base_settings({vdev});
  ro.port = vdev.substr(0, vdev.find(','));
  ro.address = *ip;
  ro.udp_port = static_cast<std::uint16_t>(std::stoi(group_port.substr(colon + 1)));
  ro.queue = dp::claim_port({ro.port, true, 0});
  auto source = dp::make_source(ro);
  if (auto r = source->start(); !r) return std::printf("result: source start failed: %s\n", r.error().message.c_str()), 1;
  std::printf("ready\n");
  std::fflush(stdout);
  MoldChecker check;
  check.prefix_only = true;
  Burst<> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (check.messages < n && std::chrono::steady_clock::now() < deadline) {
    out.clear();
    if (source->poll(out) != 0) {
      check.take(out);
      source->release(out);
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  source->stop();
  std::printf("result: received %llu messages in %llu packets, %llu bad\n",
              static_cast<unsigned long long>(check.messages), static_cast<unsigned long long>(check.packets),
              static_cast<unsigned long long>(check.bad));
  return check.messages == n && check.bad == 0 ? 0 : 1;
}

int eal_twice() {
  const dp::EalSettings eal = base_settings({"net_null0"});
  std::vector<std::string> args = dp::eal_arguments(eal);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) return std::printf("result: first init failed\n"), 2;
  dp::SourceOptions ro;
  ro.name = "late";
  ro.eal = eal;
  ro.port = "net_null0";
  ro.queue = dp::claim_port({ro.port, true, 0});
  auto source = dp::make_source(ro);
  auto r = source->start();
  std::printf("result: %s\n", r ? "started (unexpected)" : r.error().message.c_str());
  return r ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "loopback" && argc == 3) return loopback(std::strtoull(argv[2], nullptr, 10));
  if (mode == "receive" && argc == 6) return receive(argv[2], argv[3], std::strtoull(argv[4], nullptr, 10), std::atoi(argv[5]));
  if (mode == "eal-twice") return eal_twice();
  std::fprintf(stderr, "usage: dpdk_helper loopback N | receive VDEV GROUP:PORT N MS | eal-twice\n");
  return 2;
}
