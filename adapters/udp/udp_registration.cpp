// Registers the `udp` source and sink: the factories read and check their keys (see udp_source.hpp
// and udp_sink.hpp for the schema) and open nothing; sockets are opened by start().
#include <memory>
#include <string>

#include "hypergate/adapter/registry.hpp"
#include "protocols/moldudp64.hpp"
#include "udp/udp_sink.hpp"
#include "udp/udp_source.hpp"

namespace hypergate::udp {
namespace {

constexpr std::int64_t kMaxDatagram = 65507;  // IPv4 UDP payload limit

Error bad_config(std::string_view kind) {
  return Error{Status::InvalidArgument, "invalid " + std::string(kind) + " configuration (see the errors above)"};
}

/// Keys that only mean something for a multicast address: an error when present with a unicast one.
void reject_for_unicast(config::Section& section, std::string_view key, std::string_view address_key,
                        const std::optional<Ipv4Endpoint>& address) {
  if (address && !address->multicast() && section.has(key)) {
    section.error(key, "'" + std::string(key) + "' applies to a multicast " + std::string(address_key) + " only ('" +
                           address->to_string() + "' is unicast)");
  }
}

Result<std::unique_ptr<adapter::Source>> make_source(config::Section& section, const adapter::Context& ctx) {
  UdpSourceOptions o;
  o.name = ctx.name;
  bool ok = true;
  const auto listen = read_ipv4_endpoint(section, "listen", /*required=*/true);
  ok = ok && listen.has_value();
  const auto interface = read_ipv4(section, "interface", "127.0.0.1");
  ok = ok && interface.has_value();
  std::optional<in_addr> ssm;
  if (section.has("source")) {
    ssm = read_ipv4(section, "source", "");
    ok = ok && ssm.has_value();
  }
  reject_for_unicast(section, "interface", "listen", listen);
  reject_for_unicast(section, "source", "listen", listen);
  ok = ok && !(listen && !listen->multicast() && (section.has("interface") || section.has("source")));
  o.rcvbuf = static_cast<std::uint32_t>(section.integer("rcvbuf", 0, 0, 1ll << 30));
  o.max_datagram = static_cast<std::uint32_t>(section.integer("max_datagram", 2048, 64, kMaxDatagram));
  o.timestamps = section.boolean("timestamps", true);
  if (!ok) return bad_config("udp source");
  o.listen = *listen;
  o.interface = *interface;
  o.ssm_source = ssm;
  return std::unique_ptr<adapter::Source>(std::make_unique<UdpSource>(std::move(o)));
}

Result<std::unique_ptr<adapter::Sink>> make_sink(config::Section& section, const adapter::Context& ctx) {
  UdpSinkOptions o;
  o.name = ctx.name;
  o.this_worker = ctx.worker;
  bool ok = true;
  const auto destination = read_ipv4_endpoint(section, "destination", /*required=*/true);
  ok = ok && destination.has_value();
  if (destination && destination->port == 0) {
    section.error("destination", "destination port must not be 0");
    ok = false;
  }
  const auto interface = read_ipv4(section, "interface", "127.0.0.1");
  ok = ok && interface.has_value();
  for (std::string_view key : {"interface", "ttl", "loop"}) {
    reject_for_unicast(section, key, "destination", destination);
    ok = ok && !(destination && !destination->multicast() && section.has(key));
  }
  o.ttl = static_cast<int>(section.integer("ttl", 1, 0, 255));
  o.loop = section.boolean("loop", true);
  o.framing = section.choice("framing", "raw", {"raw", "moldudp64"}) == "moldudp64" ? Framing::MoldUdp64 : Framing::Raw;
  const auto last_worker = static_cast<std::int64_t>(ctx.workers == 0 ? 0 : ctx.workers - 1);
  o.owner_worker = static_cast<unsigned>(section.integer("worker", 0, 0, last_worker));

  // MoldUDP64 keys: read in any case (the schema is the same for both framings), refused for raw.
  o.session = section.string("session", "HYPERGATE");
  if (o.session.empty() || o.session.size() > protocols::mold::kSessionSize) {
    section.error("session", "a MoldUDP64 session name has 1 to 10 characters, got '" + o.session + "'");
    ok = false;
  }
  o.mtu = static_cast<std::uint32_t>(section.integer("mtu", 1400, 64, kMaxDatagram));
  o.heartbeat_interval_ns = section.duration_ns("heartbeat_interval", 1'000'000'000ull);
  if (section.has("heartbeat_interval") && o.heartbeat_interval_ns == 0) {
    section.error("heartbeat_interval", "must be greater than 0");
    ok = false;
  }
  if (section.has("retransmit_listen")) {
    o.retransmit_listen = read_ipv4_endpoint(section, "retransmit_listen", /*required=*/false);
    ok = ok && o.retransmit_listen.has_value();
  }
  o.retransmit_packets = static_cast<std::uint32_t>(
      section.integer("retransmit_packets", 4096, UdpSink::kMinRingPackets, 1 << 24));
  if (o.framing == Framing::Raw) {
    for (std::string_view key : {"session", "mtu", "heartbeat_interval", "retransmit_listen", "retransmit_packets"}) {
      if (section.has(key)) {
        section.error(key, "'" + std::string(key) + "' applies to framing = \"moldudp64\" only");
        ok = false;
      }
    }
  }
  if (!ok) return bad_config("udp sink");
  o.destination = *destination;
  o.interface = *interface;
  return std::unique_ptr<adapter::Sink>(std::make_unique<UdpSink>(std::move(o)));
}

// Static registration: this library is linked whole into `hypergate` and the tests.
const bool registered = [] {
  auto& registry = adapter::Registry::global();
  const bool source = registry
                          .add_source("udp",
                                      "IPv4 UDP unicast/multicast datagrams, one message each, batched recvmmsg, "
                                      "kernel timestamps and drop counter (listen, interface, source, rcvbuf, "
                                      "max_datagram, timestamps)",
                                      make_source)
                          .ok();
  const bool sink = registry
                        .add_sink("udp",
                                  "IPv4 UDP unicast/multicast out, raw datagrams or a MoldUDP64 republisher with "
                                  "heartbeats and a re-request server (destination, interface, ttl, loop, framing, "
                                  "worker, session, mtu, heartbeat_interval, retransmit_listen, retransmit_packets)",
                                  make_sink)
                        .ok();
  return source && sink;
}();

}  // namespace
}  // namespace hypergate::udp
