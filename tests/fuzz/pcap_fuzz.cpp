// Fuzz target for the pcap frame parser (the capture file format itself is libpcap's job): the first
// byte picks the link type, the second how many bytes the "wire" length exceeds the captured bytes;
// the rest is the frame. An accepted datagram's payload must lie inside the frame and agree with the
// UDP length; ASan/UBSan catch any read outside it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "pcap/frame_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using hypergate::pcap::LinkType;
  if (size < 2) return 0;
  constexpr LinkType kLinks[] = {LinkType::Ethernet, LinkType::Raw, LinkType::LinuxSll, LinkType::RawIpv4,
                                 LinkType::LinuxSll2};
  const LinkType link = kLinks[data[0] % (sizeof kLinks / sizeof kLinks[0])];
  const std::size_t extra = data[1] < 16 ? data[1] : 0;  // mostly complete frames, sometimes snaplen-cut
  const std::span<const std::byte> frame(reinterpret_cast<const std::byte*>(data + 2), size - 2);
  hypergate::pcap::UdpDatagram d;
  const auto v = hypergate::pcap::parse_frame(link, frame, frame.size() + extra, d);
  if (v == hypergate::pcap::FrameVerdict::Accepted) {
    if (extra != 0) std::abort();  // a truncated frame is never accepted
    const std::byte* begin = frame.data();
    const std::byte* end = frame.data() + frame.size();
    if (d.payload.data() < begin || d.payload.data() + d.payload.size() > end) std::abort();
    // The UDP length field (8 bytes before the payload, at +4) equals header + payload.
    const auto* udp = d.payload.data() - 8;
    if (udp < begin) std::abort();
    const std::size_t udp_len = (std::to_integer<std::size_t>(udp[4]) << 8) | std::to_integer<std::size_t>(udp[5]);
    if (udp_len != d.payload.size() + 8) std::abort();
  }
  return 0;
}
