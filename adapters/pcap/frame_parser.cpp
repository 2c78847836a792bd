// Frame parser (see frame_parser.hpp): link layer -> IPv4 -> UDP, every read bounds-checked.
#include "pcap/frame_parser.hpp"

namespace hypergate::pcap {
namespace {

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherVlan = 0x8100;   // 802.1Q
constexpr std::uint16_t kEtherQinQ = 0x88A8;   // 802.1ad service tag
constexpr std::uint16_t kEtherVlan9100 = 0x9100;  // pre-standard QinQ, still seen on switches
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::size_t kEthernetHeader = 14;
constexpr std::size_t kVlanTag = 4;
constexpr std::size_t kSllHeader = 16;   // pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
constexpr std::size_t kSll2Header = 20;  // protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
constexpr std::size_t kIpv4MinHeader = 20;
constexpr std::size_t kUdpHeader = 8;

[[nodiscard]] std::uint16_t be16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) | std::to_integer<unsigned>(p[1]));
}
[[nodiscard]] std::uint32_t be32(const std::byte* p) noexcept {
  return (static_cast<std::uint32_t>(be16(p)) << 16) | be16(p + 2);
}

/// IPv4 header + UDP header at `ip` (which has `n` captured bytes after link-layer headers).
FrameVerdict parse_ipv4(const std::byte* ip, std::size_t n, UdpDatagram& out) noexcept {
  if (n < 1) return FrameVerdict::Truncated;
  const unsigned version = std::to_integer<unsigned>(ip[0]) >> 4;
  if (version != 4) return FrameVerdict::NotIpv4;
  if (n < kIpv4MinHeader) return FrameVerdict::Truncated;
  const std::size_t ihl = (std::to_integer<unsigned>(ip[0]) & 0x0Fu) * 4u;
  if (ihl < kIpv4MinHeader) return FrameVerdict::BadHeader;
  const std::size_t total = be16(ip + 2);
  if (total < ihl) return FrameVerdict::BadHeader;
  if (total > n) return FrameVerdict::BadHeader;  // n covers the whole original frame (not truncated)
  const std::uint16_t frag = be16(ip + 6);
  if ((frag & 0x2000u) != 0 || (frag & 0x1FFFu) != 0) return FrameVerdict::Fragment;
  if (std::to_integer<std::uint8_t>(ip[9]) != kProtoUdp) return FrameVerdict::NotUdp;
  const std::byte* udp = ip + ihl;
  const std::size_t udp_room = total - ihl;
  if (udp_room < kUdpHeader) return FrameVerdict::BadHeader;
  const std::size_t udp_len = be16(udp + 4);
  if (udp_len < kUdpHeader || udp_len > udp_room) return FrameVerdict::BadHeader;
  out.src_ip = be32(ip + 12);
  out.dst_ip = be32(ip + 16);
  out.src_port = be16(udp);
  out.dst_port = be16(udp + 2);
  out.payload = std::span<const std::byte>(udp + kUdpHeader, udp_len - kUdpHeader);
  return FrameVerdict::Accepted;
}

/// Ethertype-dispatched payload: skips VLAN tags then expects IPv4.
FrameVerdict parse_ethertype(std::uint16_t type, const std::byte* p, std::size_t n, UdpDatagram& out) noexcept {
  std::size_t tags = 0;
  while (type == kEtherVlan || type == kEtherQinQ || type == kEtherVlan9100) {
    if (++tags > kMaxVlanTags) return FrameVerdict::BadHeader;
    if (n < kVlanTag) return FrameVerdict::Truncated;
    type = be16(p + 2);  // TCI(2) then the inner ethertype
    p += kVlanTag;
    n -= kVlanTag;
  }
  if (type != kEtherIpv4) return FrameVerdict::NotIpv4;
  return parse_ipv4(p, n, out);
}

}  // namespace

bool supported_link_type(int dlt) noexcept {
  switch (dlt) {
    case static_cast<int>(LinkType::Ethernet):
    case static_cast<int>(LinkType::Raw):
    case static_cast<int>(LinkType::LinuxSll):
    case static_cast<int>(LinkType::RawIpv4):
    case static_cast<int>(LinkType::LinuxSll2):
      return true;
    default:
      return false;
  }
}

FrameVerdict parse_frame(LinkType link, std::span<const std::byte> frame, std::uint64_t original_length,
                         UdpDatagram& out) noexcept {
  if (frame.size() < original_length) return FrameVerdict::Truncated;
  const std::byte* p = frame.data();
  const std::size_t n = frame.size();
  switch (link) {
    case LinkType::Ethernet:
      if (n < kEthernetHeader) return FrameVerdict::Truncated;
      return parse_ethertype(be16(p + 12), p + kEthernetHeader, n - kEthernetHeader, out);
    case LinkType::LinuxSll:
      if (n < kSllHeader) return FrameVerdict::Truncated;
      return parse_ethertype(be16(p + 14), p + kSllHeader, n - kSllHeader, out);
    case LinkType::LinuxSll2:
      if (n < kSll2Header) return FrameVerdict::Truncated;
      return parse_ethertype(be16(p), p + kSll2Header, n - kSll2Header, out);
    case LinkType::Raw:
    case LinkType::RawIpv4:
      return parse_ipv4(p, n, out);
  }
  return FrameVerdict::BadHeader;
}

}  // namespace hypergate::pcap
