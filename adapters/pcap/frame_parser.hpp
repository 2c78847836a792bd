#pragma once
// Frame parser: the captured bytes of one link-layer frame -> one IPv4/UDP datagram, or a reason why not.
//
// Contract
//  - parse_frame() is a pure function over (link type, captured bytes, original length): no allocation,
//    no syscall, no state. Every read is bounds-checked against the captured bytes; the result's
//    payload is a view into them (valid as long as the caller's bytes are).
//  - Link types: Ethernet (DLT_EN10MB, with any number of 802.1Q / 802.1ad VLAN tags up to kMaxVlanTags),
//    Linux cooked v1 and v2 (DLT_LINUX_SLL / DLT_LINUX_SLL2, what `tcpdump -i any` writes), raw IP
//    (DLT_RAW, LINKTYPE_RAW, DLT_IPV4). Anything else is rejected by CaptureReader before parsing.
//  - Only IPv4/UDP is accepted. Everything else is a FrameVerdict naming why: a frame whose captured
//    length is below its original length is Truncated (we never replay half a datagram); other
//    protocols are NotIpv4 / NotUdp; a fragment (MF set or offset != 0) is Fragment (the payload is
//    not a whole datagram); inconsistent header lengths are BadHeader. Checksums are NOT verified:
//    captures taken on the sending host carry offloaded (not yet computed) checksums.
//  - Ethernet trailer padding (frames padded to 60 bytes) is ignored: the IPv4 total length and the
//    UDP length decide where the payload ends.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace hypergate::pcap {

/// Link types we parse (the numeric DLT_* values of libpcap, repeated so this header needs no libpcap).
enum class LinkType : std::uint16_t {
  Ethernet = 1,     // DLT_EN10MB
  Raw = 12,         // DLT_RAW (Linux value; libpcap maps LINKTYPE_RAW 101 to it)
  LinuxSll = 113,   // DLT_LINUX_SLL
  RawIpv4 = 228,    // DLT_IPV4
  LinuxSll2 = 276,  // DLT_LINUX_SLL2
};

/// True when parse_frame() understands frames of the libpcap link type `dlt`.
[[nodiscard]] bool supported_link_type(int dlt) noexcept;

/// Why a frame was or was not turned into a datagram. Accepted first; the rest index skip counters.
enum class FrameVerdict : std::uint8_t {
  Accepted = 0,
  Truncated,     ///< captured length < original length, or the bytes end inside a header
  NotIpv4,       ///< another ethertype / IP version (ARP, IPv6, ...)
  NotUdp,        ///< IPv4 but not UDP (TCP, ICMP, ...)
  Fragment,      ///< an IPv4 fragment (more-fragments set or non-zero offset)
  BadHeader,     ///< IHL < 5, total length or UDP length inconsistent with the bytes present
  PortFiltered,  ///< UDP, but not to the requested destination port (set by CaptureReader)
};
inline constexpr std::size_t kFrameVerdicts = 7;

[[nodiscard]] constexpr std::string_view to_string(FrameVerdict v) noexcept {
  switch (v) {
    case FrameVerdict::Accepted: return "accepted";
    case FrameVerdict::Truncated: return "truncated";
    case FrameVerdict::NotIpv4: return "not_ipv4";
    case FrameVerdict::NotUdp: return "not_udp";
    case FrameVerdict::Fragment: return "fragment";
    case FrameVerdict::BadHeader: return "bad_header";
    case FrameVerdict::PortFiltered: return "port_filtered";
  }
  return "unknown";
}

/// One UDP datagram found in a frame. Addresses and ports in host byte order.
struct UdpDatagram {
  std::uint32_t src_ip = 0;
  std::uint32_t dst_ip = 0;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::span<const std::byte> payload;  ///< view into the frame bytes
  std::uint64_t capture_ns = 0;        ///< capture time, ns since the Unix epoch (set by CaptureReader)
};

inline constexpr std::size_t kMaxVlanTags = 4;  // more stacked tags than any real network uses: BadHeader

/// Parses one frame. `original_length` is the frame's length on the wire (pcap "len"); the captured
/// bytes may be shorter (snaplen), which makes the frame Truncated. On Accepted, `out` is filled
/// (except capture_ns); otherwise `out` is left unspecified.
[[nodiscard]] FrameVerdict parse_frame(LinkType link, std::span<const std::byte> frame,
                                       std::uint64_t original_length, UdpDatagram& out) noexcept;

}  // namespace hypergate::pcap
