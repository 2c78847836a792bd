#pragma once
// CaptureWriter: writes UDP payloads as a nanosecond pcap of Ethernet + IPv4 + UDP frames.
//
// Contract
//  - The file is a classic pcap with the nanosecond magic (0xA1B23C4D), link type DLT_EN10MB, written
//    through libpcap's dump API; Wireshark, tshark, tcpdump and CaptureReader read it.
//  - Every frame carries the configured MACs and src/dst ip:port, a correct IPv4 header checksum
//    (DF set, TTL 64, IP id incrementing per frame) and a correct UDP checksum (0 is sent as 0xFFFF).
//  - Payloads up to kMaxPayload bytes (IPv4 total length 65535); larger is ValueTooLarge, nothing written.
//  - write() builds the frame in a buffer reserved by create(): no allocation per frame. Frames are
//    buffered by stdio; flush() pushes them to the file, close() (or the destructor) finishes it.
//  - One thread uses a writer. Movable, not copyable.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hypergate/core/status.hpp"

struct pcap;         // libpcap's pcap_t
struct pcap_dumper;  // libpcap's pcap_dumper_t

namespace hypergate::pcap {

using MacAddress = std::array<std::uint8_t, 6>;

/// The addresses stamped on every frame. IPs and ports in host byte order.
struct FrameAddresses {
  std::uint32_t src_ip = 0x7F000001;  // 127.0.0.1
  std::uint32_t dst_ip = 0x7F000001;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  MacAddress src_mac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};  // locally administered
  MacAddress dst_mac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
};

/// "a.b.c.d" -> host-order address; an InvalidArgument error when not a dotted quad.
[[nodiscard]] Result<std::uint32_t> parse_ipv4(std::string_view text);
/// "02:00:00:00:00:01" -> bytes.
[[nodiscard]] Result<MacAddress> parse_mac(std::string_view text);
/// Multicast IPv4 group -> its Ethernet MAC (01:00:5e + low 23 bits), as a switch would see it.
[[nodiscard]] MacAddress multicast_mac(std::uint32_t group) noexcept;

class CaptureWriter {
 public:
  static constexpr std::size_t kEthernetHeader = 14;
  static constexpr std::size_t kIpv4Header = 20;
  static constexpr std::size_t kUdpHeader = 8;
  static constexpr std::size_t kMaxPayload = 65535 - kIpv4Header - kUdpHeader;  // 65507
  static constexpr std::size_t kMaxFrame = kEthernetHeader + kIpv4Header + kUdpHeader + kMaxPayload;

  /// Creates (truncates) `path`.
  [[nodiscard]] static Result<CaptureWriter> create(const std::string& path, const FrameAddresses& addresses);

  CaptureWriter(CaptureWriter&&) noexcept;
  CaptureWriter& operator=(CaptureWriter&&) noexcept;
  CaptureWriter(const CaptureWriter&) = delete;
  CaptureWriter& operator=(const CaptureWriter&) = delete;
  ~CaptureWriter();

  /// Writes one frame carrying `payload`, stamped `capture_ns` (ns since the Unix epoch).
  [[nodiscard]] Result<void> write(std::span<const std::byte> payload, std::uint64_t capture_ns) noexcept;
  [[nodiscard]] Result<void> flush() noexcept;
  /// Flushes and closes the file; later writes fail with Closed.
  [[nodiscard]] Result<void> close() noexcept;

  [[nodiscard]] std::uint64_t frames() const noexcept { return frames_; }
  [[nodiscard]] std::uint64_t payload_bytes() const noexcept { return bytes_; }
  [[nodiscard]] const FrameAddresses& addresses() const noexcept { return addr_; }

  /// Builds the frame for `payload` into `frame` (size >= header bytes + payload) and returns its
  /// length. Exposed so tests and other writers can check the exact bytes. `ip_id` = IPv4 id field.
  static std::size_t build_frame(const FrameAddresses& addr, std::uint16_t ip_id,
                                 std::span<const std::byte> payload, std::span<std::byte> frame) noexcept;

 private:
  CaptureWriter() = default;
  void release() noexcept;

  FrameAddresses addr_;
  ::pcap* dead_ = nullptr;
  ::pcap_dumper* dumper_ = nullptr;
  std::vector<std::byte> frame_;  // kMaxFrame bytes, reused for every frame
  std::uint16_t ip_id_ = 0;
  std::uint64_t frames_ = 0;
  std::uint64_t bytes_ = 0;
  std::string path_;
};

}  // namespace hypergate::pcap
