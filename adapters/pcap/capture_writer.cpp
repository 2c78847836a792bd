// CaptureWriter (see capture_writer.hpp): frames built by hand, records written by libpcap's dumper.
#include "pcap/capture_writer.hpp"

#include <pcap/pcap.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

namespace hypergate::pcap {
namespace {

constexpr int kSnaplen = 262144;  // libpcap's MAXIMUM_SNAPLEN: larger than any frame we write
static_assert(CaptureWriter::kMaxFrame <= static_cast<std::size_t>(kSnaplen), "every frame fits the snaplen");

void put16(std::byte* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v);
}
void put32(std::byte* p, std::uint32_t v) noexcept {
  put16(p, static_cast<std::uint16_t>(v >> 16));
  put16(p + 2, static_cast<std::uint16_t>(v));
}

/// One's-complement sum of big-endian 16-bit words (odd length: last byte padded with zero).
[[nodiscard]] std::uint64_t sum16(const std::byte* p, std::size_t n) noexcept {
  std::uint64_t sum = 0;
  std::size_t i = 0;
  for (; i + 1 < n; i += 2) {
    sum += (std::to_integer<std::uint64_t>(p[i]) << 8) | std::to_integer<std::uint64_t>(p[i + 1]);
  }
  if (i < n) sum += std::to_integer<std::uint64_t>(p[i]) << 8;
  return sum;
}
[[nodiscard]] std::uint16_t fold(std::uint64_t sum) noexcept {
  while ((sum >> 16) != 0) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xFFFF);
}

}  // namespace

Result<std::uint32_t> parse_ipv4(std::string_view text) {
  std::uint32_t addr = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int octet = 0; octet < 4; ++octet) {
    unsigned v = 0;
    const auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc{} || next == p || next - p > 3 || v > 255) {
      return Error{Status::InvalidArgument, "\"" + std::string(text) + "\" is not an IPv4 address (a.b.c.d)"};
    }
    addr = (addr << 8) | v;
    p = next;
    if (octet < 3) {
      if (p == end || *p != '.') {
        return Error{Status::InvalidArgument, "\"" + std::string(text) + "\" is not an IPv4 address (a.b.c.d)"};
      }
      ++p;
    }
  }
  if (p != end) return Error{Status::InvalidArgument, "\"" + std::string(text) + "\" is not an IPv4 address (a.b.c.d)"};
  return addr;
}

Result<MacAddress> parse_mac(std::string_view text) {
  MacAddress mac{};
  const Error bad{Status::InvalidArgument, "\"" + std::string(text) + "\" is not a MAC address (xx:xx:xx:xx:xx:xx)"};
  if (text.size() != 17) return bad;
  for (std::size_t i = 0; i < 6; ++i) {
    unsigned v = 0;
    const char* p = text.data() + i * 3;
    const auto [next, ec] = std::from_chars(p, p + 2, v, 16);
    if (ec != std::errc{} || next != p + 2) return bad;
    if (i < 5 && text[i * 3 + 2] != ':') return bad;
    mac[i] = static_cast<std::uint8_t>(v);
  }
  return mac;
}

MacAddress multicast_mac(std::uint32_t group) noexcept {
  return {0x01, 0x00, 0x5E, static_cast<std::uint8_t>((group >> 16) & 0x7F), static_cast<std::uint8_t>(group >> 8),
          static_cast<std::uint8_t>(group)};
}

std::size_t CaptureWriter::build_frame(const FrameAddresses& a, std::uint16_t ip_id,
                                       std::span<const std::byte> payload, std::span<std::byte> frame) noexcept {
  const std::size_t udp_len = kUdpHeader + payload.size();
  const std::size_t ip_len = kIpv4Header + udp_len;
  std::byte* p = frame.data();
  // Ethernet II
  std::memcpy(p, a.dst_mac.data(), 6);
  std::memcpy(p + 6, a.src_mac.data(), 6);
  put16(p + 12, 0x0800);
  // IPv4: version 4, IHL 5, DSCP 0, total length, id, DF, TTL 64, UDP, checksum, addresses
  std::byte* ip = p + kEthernetHeader;
  ip[0] = std::byte{0x45};
  ip[1] = std::byte{0};
  put16(ip + 2, static_cast<std::uint16_t>(ip_len));
  put16(ip + 4, ip_id);
  put16(ip + 6, 0x4000);
  ip[8] = std::byte{64};
  ip[9] = std::byte{17};
  put16(ip + 10, 0);
  put32(ip + 12, a.src_ip);
  put32(ip + 16, a.dst_ip);
  put16(ip + 10, fold(sum16(ip, kIpv4Header)));
  // UDP, checksum over the pseudo header (src, dst, zero, protocol, UDP length) + header + payload
  std::byte* udp = ip + kIpv4Header;
  put16(udp, a.src_port);
  put16(udp + 2, a.dst_port);
  put16(udp + 4, static_cast<std::uint16_t>(udp_len));
  put16(udp + 6, 0);
  if (!payload.empty()) std::memcpy(udp + kUdpHeader, payload.data(), payload.size());
  std::uint64_t sum = (a.src_ip >> 16) + (a.src_ip & 0xFFFF) + (a.dst_ip >> 16) + (a.dst_ip & 0xFFFF) + 17u + udp_len;
  sum += sum16(udp, udp_len);
  std::uint16_t check = fold(sum);
  if (check == 0) check = 0xFFFF;  // RFC 768: a computed 0 is sent as all ones (0 = no checksum)
  put16(udp + 6, check);
  return kEthernetHeader + ip_len;
}

Result<CaptureWriter> CaptureWriter::create(const std::string& path, const FrameAddresses& addresses) {
  CaptureWriter w;
  w.addr_ = addresses;
  w.path_ = path;
  w.dead_ = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, kSnaplen, PCAP_TSTAMP_PRECISION_NANO);
  if (w.dead_ == nullptr) return Error{Status::IoError, path + ": libpcap could not create a capture handle"};
  w.dumper_ = pcap_dump_open(w.dead_, path.c_str());
  if (w.dumper_ == nullptr) {
    return Error{Status::IoError, path + ": cannot create capture: " + std::string(pcap_geterr(w.dead_))};
  }
  w.frame_.assign(kMaxFrame, std::byte{0});
  return w;
}

CaptureWriter::CaptureWriter(CaptureWriter&& o) noexcept
    : addr_(o.addr_),
      dead_(std::exchange(o.dead_, nullptr)),
      dumper_(std::exchange(o.dumper_, nullptr)),
      frame_(std::move(o.frame_)),
      ip_id_(o.ip_id_),
      frames_(o.frames_),
      bytes_(o.bytes_),
      path_(std::move(o.path_)) {}

CaptureWriter& CaptureWriter::operator=(CaptureWriter&& o) noexcept {
  if (this != &o) {
    release();
    addr_ = o.addr_;
    dead_ = std::exchange(o.dead_, nullptr);
    dumper_ = std::exchange(o.dumper_, nullptr);
    frame_ = std::move(o.frame_);
    ip_id_ = o.ip_id_;
    frames_ = o.frames_;
    bytes_ = o.bytes_;
    path_ = std::move(o.path_);
  }
  return *this;
}

CaptureWriter::~CaptureWriter() { release(); }

void CaptureWriter::release() noexcept {
  if (dumper_ != nullptr) pcap_dump_close(dumper_);  // flushes
  if (dead_ != nullptr) pcap_close(dead_);
  dumper_ = nullptr;
  dead_ = nullptr;
}

Result<void> CaptureWriter::write(std::span<const std::byte> payload, std::uint64_t capture_ns) noexcept {
  if (dumper_ == nullptr) return Error{Status::Closed, path_ + ": capture writer is closed"};
  if (payload.size() > kMaxPayload) {
    return Error{Status::ValueTooLarge, path_ + ": UDP payload larger than 65507 bytes"};
  }
  const std::size_t n = build_frame(addr_, ip_id_++, payload, frame_);
  pcap_pkthdr hdr{};
  // With a NANO-precision handle the dumper writes tv_usec as the nanosecond field of the record.
  hdr.ts.tv_sec = static_cast<time_t>(capture_ns / 1'000'000'000ull);
  hdr.ts.tv_usec = static_cast<suseconds_t>(capture_ns % 1'000'000'000ull);
  hdr.caplen = static_cast<bpf_u_int32>(n);
  hdr.len = static_cast<bpf_u_int32>(n);
  pcap_dump(reinterpret_cast<u_char*>(dumper_), &hdr, reinterpret_cast<const u_char*>(frame_.data()));
  ++frames_;
  bytes_ += payload.size();
  return {};
}

Result<void> CaptureWriter::flush() noexcept {
  if (dumper_ == nullptr) return Error{Status::Closed, path_ + ": capture writer is closed"};
  if (pcap_dump_flush(dumper_) != 0) return Error{Status::IoError, path_ + ": write failed: " + std::strerror(errno)};
  return {};
}

Result<void> CaptureWriter::close() noexcept {
  if (dumper_ == nullptr) return {};
  Result<void> r = flush();
  release();
  return r;
}

}  // namespace hypergate::pcap
