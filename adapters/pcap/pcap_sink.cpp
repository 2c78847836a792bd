// `pcap` sink: writes the messages it is sent into a nanosecond pcap (Ethernet + IPv4 + UDP frames).
//
//   [sink.capture]
//   type    = "pcap"
//   path    = "out.pcap"
//   src     = "10.0.0.1:40000"     # IPv4 source address and port of every frame
//   dst     = "239.1.1.1:30001"    # IPv4 destination (a multicast group gets the group's MAC)
//   src_mac = "02:00:00:00:00:01"  # optional
//   dst_mac = "02:00:00:00:00:02"  # optional (default: derived from a multicast dst, else this value)
//   framing = "raw"                # raw: one frame per message | moldudp64: messages packed into packets
//   session = "HYPERGATE"          # moldudp64 session name (10 characters, space padded)
//   mtu     = 1500                 # moldudp64: IP MTU; packets carry at most mtu - 28 UDP payload bytes
//   worker  = 0                    # the worker whose instance writes the file
//
// Sinks exist once per worker but one file has one writer: only the instance on `worker` opens and
// writes it. The other instances accept what they are sent (so the valves do not retry forever) and
// count every such message in stats().errors ("refused"): route this sink's traffic to that worker.
// Frames are stamped with CLOCK_REALTIME read once per send() (per burst). moldudp64 framing uses
// protocols::mold::PacketBuilder: contiguous sequence numbers from 1, a packet is closed when the next
// message would not fit `mtu`, and on flush() / stop(). A message that cannot fit even an empty packet
// (raw: > 65507 bytes; moldudp64: > mtu - 28 - 22) is dropped and counted in drops.
#include <time.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hypergate/adapter/registry.hpp"
#include "pcap/capture_writer.hpp"
#include "protocols/moldudp64.hpp"

namespace hypergate::pcap {
namespace {

namespace mold = protocols::mold;

constexpr std::size_t kIpUdpHeaders = CaptureWriter::kIpv4Header + CaptureWriter::kUdpHeader;

[[nodiscard]] std::uint64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

class PcapSink final : public adapter::Sink {
 public:
  enum class Framing : std::uint8_t { Raw, MoldUdp64 };
  struct Options {
    std::string path;
    FrameAddresses addresses;
    Framing framing = Framing::Raw;
    mold::SessionName session = mold::SessionName::from("HYPERGATE");
    std::size_t mtu = 1500;
    bool writer = true;  // this instance is on the writing worker
  };

  explicit PcapSink(Options o) : opt_(std::move(o)) {}

  [[nodiscard]] std::string_view type() const noexcept override { return "pcap"; }

  [[nodiscard]] Result<void> start() override {
    if (!opt_.writer) return {};
    Result<CaptureWriter> w = CaptureWriter::create(opt_.path, opt_.addresses);
    if (!w) return w.error();
    writer_.emplace(std::move(w).value());
    if (opt_.framing == Framing::MoldUdp64) {
      packet_.assign(opt_.mtu - kIpUdpHeaders, std::byte{0});
      builder_.emplace(protocols::MutableBytes(packet_.data(), packet_.size()), packet_.size());
    }
    return {};
  }

  void stop() noexcept override {
    flush();
    if (writer_) {
      if (!writer_->close()) bump(errors_);
      writer_.reset();
    }
  }

  std::size_t send(const Burst<>& burst) noexcept override {
    if (!writer_) {  // not the writing worker (or not started): refused, counted
      bump(errors_, burst.size());
      return burst.size();
    }
    const std::uint64_t now = realtime_ns();
    std::uint64_t accepted = 0;
    std::uint64_t bytes = 0;
    for (const Message& m : burst) {
      const bool ok = opt_.framing == Framing::Raw ? write_raw(m, now) : append_mold(m, now);
      if (!ok) continue;
      ++accepted;
      bytes += m.size;
    }
    bump(messages_, accepted);
    bump(bytes_, bytes);
    return burst.size();
  }

  void flush() noexcept override {
    if (!writer_) return;
    if (builder_ && open_ && !builder_->empty()) emit_packet(realtime_ns());
    if (!writer_->flush()) bump(errors_);
  }

  [[nodiscard]] adapter::SinkStats stats() const noexcept override {
    adapter::SinkStats s;
    // relaxed: counters only (one writer thread, monotonic values for readers)
    s.messages = messages_.load(std::memory_order_relaxed);
    s.bytes = bytes_.load(std::memory_order_relaxed);
    s.drops = drops_.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
    // relaxed: only the owning worker writes; stats() readers want a monotonic count, nothing ordered by it.
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  bool write_raw(const Message& m, std::uint64_t now) noexcept {
    if (m.size > CaptureWriter::kMaxPayload) {
      bump(drops_);
      return false;
    }
    if (!writer_->write(m.payload(), now)) {
      bump(errors_);
      return false;
    }
    return true;
  }

  bool append_mold(const Message& m, std::uint64_t now) noexcept {
    // Too large for even an empty packet: dropped before it closes the packet being filled.
    if (m.size > packet_.size() - mold::kHeaderSize - mold::kBlockHeaderSize || m.size > 0xFFFF) {
      bump(drops_);
      return false;
    }
    if (open_ && !builder_->fits(m.size)) emit_packet(now);
    if (!open_) {
      builder_->start(opt_.session, next_sequence_);
      open_ = true;
    }
    if (!builder_->append(m.payload())) {  // cannot happen after the size check; counted, never silent
      bump(drops_);
      return false;
    }
    return true;
  }

  void emit_packet(std::uint64_t now) noexcept {
    next_sequence_ = builder_->next_sequence();
    const protocols::Bytes packet = builder_->finish();
    open_ = false;
    if (!writer_->write(packet, now)) bump(errors_);
  }

  Options opt_;
  std::optional<CaptureWriter> writer_;
  std::vector<std::byte> packet_;               // one MoldUDP64 packet under construction
  std::optional<mold::PacketBuilder> builder_;  // writes into packet_
  bool open_ = false;                           // builder_ holds a started packet
  std::uint64_t next_sequence_ = 1;             // MoldUDP64 sequence of the next message
  std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> drops_{0};
  std::atomic<std::uint64_t> errors_{0};
};

/// "a.b.c.d:port" -> address and port; errors recorded at `key`.
bool read_address(config::Section& section, std::string_view key, std::string_view def, std::uint32_t& ip,
                  std::uint16_t& port) {
  const std::optional<config::Endpoint> ep = section.endpoint(key, def);
  if (!ep) return false;  // the Section reported it
  Result<std::uint32_t> a = parse_ipv4(ep->host);
  if (!a) {
    section.error(key, "expected an IPv4 address and port (a.b.c.d:port)");
    return false;
  }
  ip = *a;
  port = ep->port;
  return true;
}

Result<std::unique_ptr<adapter::Sink>> make_pcap_sink(config::Section& section, const adapter::Context& ctx) {
  PcapSink::Options o;
  if (std::optional<std::string> path = section.required_string("path")) o.path = std::move(*path);
  FrameAddresses& a = o.addresses;
  read_address(section, "src", "127.0.0.1:40000", a.src_ip, a.src_port);
  const bool dst_ok = read_address(section, "dst", "127.0.0.1:30001", a.dst_ip, a.dst_port);
  if (dst_ok && (a.dst_ip >> 28) == 0xE) a.dst_mac = multicast_mac(a.dst_ip);
  if (section.has("src_mac")) {
    if (Result<MacAddress> mac = parse_mac(section.string("src_mac", ""))) {
      a.src_mac = *mac;
    } else {
      section.error("src_mac", mac.error().message);
    }
  }
  if (section.has("dst_mac")) {
    if (Result<MacAddress> mac = parse_mac(section.string("dst_mac", ""))) {
      a.dst_mac = *mac;
    } else {
      section.error("dst_mac", mac.error().message);
    }
  }
  const std::string framing = section.choice("framing", "raw", {"raw", "moldudp64"});
  o.framing = framing == "moldudp64" ? PcapSink::Framing::MoldUdp64 : PcapSink::Framing::Raw;
  const std::string session = section.string("session", "HYPERGATE");
  if (session.size() > mold::kSessionSize) section.error("session", "at most 10 characters");
  o.session = mold::SessionName::from(session);
  // Smallest useful MTU: headers + a MoldUDP64 header + one 2-byte block header.
  constexpr std::int64_t kMinMtu = static_cast<std::int64_t>(kIpUdpHeaders + mold::kHeaderSize + mold::kBlockHeaderSize);
  o.mtu = static_cast<std::size_t>(section.integer("mtu", 1500, kMinMtu, 65535));
  const auto worker = static_cast<unsigned>(section.integer("worker", 0, 0, 1023));
  if (worker >= ctx.workers) section.error("worker", "no such worker (the gateway has " + std::to_string(ctx.workers) + ")");
  o.writer = ctx.worker == worker;
  return std::unique_ptr<adapter::Sink>(std::make_unique<PcapSink>(std::move(o)));
}

const bool registered = [] {
  return adapter::Registry::global()
      .add_sink("pcap", "writes messages to a nanosecond pcap of UDP frames (path, src, dst, framing, mtu, worker)",
                make_pcap_sink)
      .ok();
}();

}  // namespace
}  // namespace hypergate::pcap
