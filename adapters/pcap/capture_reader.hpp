#pragma once
// CaptureReader: the UDP datagrams of a pcap or pcapng file, in file order, with nanosecond stamps.
//
// Contract
//  - open() reads the file with libpcap (pcap_open_offline_with_tstamp_precision(NANO)): classic pcap
//    with micro- or nanosecond stamps and pcapng both yield capture times in ns since the epoch.
//    Errors are values with a sentence: missing file, not a capture file, unsupported link type
//    (anything but Ethernet, Linux cooked v1/v2, raw IPv4; see frame_parser.hpp).
//  - next() returns the next accepted datagram (IPv4/UDP, whole, to the filter port if one is set).
//    Every other frame is skipped and counted by FrameVerdict in skipped(). The datagram's payload
//    points into libpcap's read buffer: valid until the next call to next(), rewind() or the
//    reader's destruction (copy it to keep it longer).
//  - A capture file cut short (a partial last record) ends the read with an error, after the whole
//    records before it have been returned; next() then reports End with error() set.
//  - rewind() starts again from the first packet (for loops): the file is reopened.
//  - progress() is the fraction of the file consumed (file offset / size), for a progress bar.
//  - One thread uses a reader. Movable, not copyable.
#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "hypergate/core/status.hpp"
#include "pcap/frame_parser.hpp"

struct pcap;  // libpcap's pcap_t, kept out of this header

namespace hypergate::pcap {

struct ReaderCounts {
  std::uint64_t frames = 0;     ///< records read from the file
  std::uint64_t datagrams = 0;  ///< accepted datagrams returned by next()
  std::uint64_t bytes = 0;      ///< payload bytes of those datagrams
  std::array<std::uint64_t, kFrameVerdicts> skipped{};  ///< by FrameVerdict (index 0 unused)

  [[nodiscard]] std::uint64_t skipped_for(FrameVerdict v) const noexcept {
    return skipped[static_cast<std::size_t>(v)];
  }
  [[nodiscard]] std::uint64_t skipped_total() const noexcept;
};

class CaptureReader {
 public:
  enum class Next : std::uint8_t { Datagram, End };

  /// Opens `path`. `dst_port` != 0 keeps only datagrams to that UDP destination port.
  [[nodiscard]] static Result<CaptureReader> open(std::string path, std::uint16_t dst_port = 0);

  CaptureReader(CaptureReader&&) noexcept;
  CaptureReader& operator=(CaptureReader&&) noexcept;
  CaptureReader(const CaptureReader&) = delete;
  CaptureReader& operator=(const CaptureReader&) = delete;
  ~CaptureReader();

  /// Fills `out` with the next accepted datagram, or returns End (end of file, or a read error:
  /// then error() is set).
  [[nodiscard]] Next next(UdpDatagram& out) noexcept;
  /// Reopens the file at its first packet. Counts are kept (they add up over passes).
  [[nodiscard]] Result<void> rewind();

  [[nodiscard]] const ReaderCounts& counts() const noexcept { return counts_; }
  /// Set when the last next() stopped on a read error (truncated record, I/O error).
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  [[nodiscard]] int link_type() const noexcept { return dlt_; }
  enum class Format : std::uint8_t { PcapMicro, PcapNano, Pcapng };
  /// The file's format (from its magic number); micro-second stamps are scaled to ns by libpcap.
  [[nodiscard]] Format format() const noexcept { return format_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::uint64_t file_size() const noexcept { return file_size_; }
  /// Fraction of the file read so far, in [0, 1].
  [[nodiscard]] double progress() const noexcept;

 private:
  CaptureReader(std::string path, std::uint16_t dst_port) : path_(std::move(path)), dst_port_(dst_port) {}
  Result<void> reopen();
  void close() noexcept;

  std::string path_;
  std::uint16_t dst_port_ = 0;
  ::pcap* handle_ = nullptr;
  int dlt_ = 0;
  Format format_ = Format::PcapMicro;
  std::uint64_t file_size_ = 0;
  ReaderCounts counts_;
  std::string error_;
};

}  // namespace hypergate::pcap
