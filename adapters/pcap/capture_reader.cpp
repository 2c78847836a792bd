// CaptureReader (see capture_reader.hpp): libpcap reads records, parse_frame() judges them.
#include "pcap/capture_reader.hpp"

#include <pcap/pcap.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace hypergate::pcap {
namespace {

constexpr std::uint32_t kMagicMicro = 0xA1B2C3D4;
constexpr std::uint32_t kMagicNano = 0xA1B23C4D;
constexpr std::uint32_t kMagicPcapng = 0x0A0D0D0A;  // section header block type (palindromic)

[[nodiscard]] std::uint32_t swap32(std::uint32_t v) noexcept { return __builtin_bswap32(v); }

std::string link_name(int dlt) {
  const char* name = pcap_datalink_val_to_name(dlt);
  return name != nullptr ? std::string(name) : "DLT " + std::to_string(dlt);
}

}  // namespace

std::uint64_t ReaderCounts::skipped_total() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 1; i < skipped.size(); ++i) total += skipped[i];
  return total;
}

Result<CaptureReader> CaptureReader::open(std::string path, std::uint16_t dst_port) {
  CaptureReader reader(std::move(path), dst_port);
  // Our own look at the file first: libpcap's messages for these cases are terse.
  struct stat st {};
  if (::stat(reader.path_.c_str(), &st) != 0) {
    return Error{Status::NotFound, reader.path_ + ": cannot open capture: " + std::strerror(errno)};
  }
  if (!S_ISREG(st.st_mode)) return Error{Status::InvalidArgument, reader.path_ + ": not a regular file"};
  reader.file_size_ = static_cast<std::uint64_t>(st.st_size);
  std::FILE* f = std::fopen(reader.path_.c_str(), "rb");
  if (f == nullptr) {
    return Error{Status::IoError, reader.path_ + ": cannot open capture: " + std::strerror(errno)};
  }
  std::uint32_t magic = 0;
  const std::size_t got = std::fread(&magic, 1, sizeof magic, f);
  std::fclose(f);
  if (got != sizeof magic) {
    return Error{Status::Malformed, reader.path_ + ": not a pcap or pcapng capture (file too short)"};
  }
  if (magic == kMagicNano || swap32(magic) == kMagicNano) {
    reader.format_ = Format::PcapNano;
  } else if (magic == kMagicMicro || swap32(magic) == kMagicMicro) {
    reader.format_ = Format::PcapMicro;
  } else if (magic == kMagicPcapng) {
    reader.format_ = Format::Pcapng;
  } else {
    return Error{Status::Malformed, reader.path_ + ": not a pcap or pcapng capture (unknown magic number)"};
  }
  if (Result<void> r = reader.reopen(); !r) return r.error();
  return reader;
}

Result<void> CaptureReader::reopen() {
  close();
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  handle_ = pcap_open_offline_with_tstamp_precision(path_.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (handle_ == nullptr) {
    return Error{Status::Malformed, path_ + ": cannot read capture: " + std::string(errbuf)};
  }
  dlt_ = pcap_datalink(handle_);
  if (!supported_link_type(dlt_)) {
    const std::string name = link_name(dlt_);
    close();
    return Error{Status::Unsupported, path_ + ": unsupported link type " + name +
                                          " (supported: EN10MB Ethernet, LINUX_SLL, LINUX_SLL2, RAW, IPV4)"};
  }
  error_.clear();
  return {};
}

void CaptureReader::close() noexcept {
  if (handle_ != nullptr) pcap_close(handle_);
  handle_ = nullptr;
}

CaptureReader::CaptureReader(CaptureReader&& o) noexcept
    : path_(std::move(o.path_)),
      dst_port_(o.dst_port_),
      handle_(std::exchange(o.handle_, nullptr)),
      dlt_(o.dlt_),
      format_(o.format_),
      file_size_(o.file_size_),
      counts_(o.counts_),
      error_(std::move(o.error_)) {}

CaptureReader& CaptureReader::operator=(CaptureReader&& o) noexcept {
  if (this != &o) {
    close();
    path_ = std::move(o.path_);
    dst_port_ = o.dst_port_;
    handle_ = std::exchange(o.handle_, nullptr);
    dlt_ = o.dlt_;
    format_ = o.format_;
    file_size_ = o.file_size_;
    counts_ = o.counts_;
    error_ = std::move(o.error_);
  }
  return *this;
}

CaptureReader::~CaptureReader() { close(); }

Result<void> CaptureReader::rewind() { return reopen(); }

CaptureReader::Next CaptureReader::next(UdpDatagram& out) noexcept {
  if (handle_ == nullptr) return Next::End;
  const auto link = static_cast<LinkType>(dlt_);
  for (;;) {
    pcap_pkthdr* hdr = nullptr;
    const u_char* bytes = nullptr;
    const int rc = pcap_next_ex(handle_, &hdr, &bytes);
    if (rc == PCAP_ERROR_BREAK) return Next::End;  // end of file
    if (rc != 1) {
      // -1: a read error, e.g. "truncated dump file; tried to read N captured bytes, only got M".
      error_ = path_ + ": " + pcap_geterr(handle_);
      close();
      return Next::End;
    }
    ++counts_.frames;
    const std::span<const std::byte> frame(reinterpret_cast<const std::byte*>(bytes), hdr->caplen);
    FrameVerdict v = parse_frame(link, frame, hdr->len, out);
    if (v == FrameVerdict::Accepted && dst_port_ != 0 && out.dst_port != dst_port_) v = FrameVerdict::PortFiltered;
    if (v != FrameVerdict::Accepted) {
      ++counts_.skipped[static_cast<std::size_t>(v)];
      continue;
    }
    // With NANO precision libpcap delivers tv_usec as nanoseconds (micro-second files are scaled).
    out.capture_ns = static_cast<std::uint64_t>(hdr->ts.tv_sec) * 1'000'000'000ull +
                     static_cast<std::uint64_t>(hdr->ts.tv_usec);
    ++counts_.datagrams;
    counts_.bytes += out.payload.size();
    return Next::Datagram;
  }
}

double CaptureReader::progress() const noexcept {
  if (handle_ == nullptr) return 1.0;
  if (file_size_ == 0) return 0.0;
  std::FILE* f = pcap_file(handle_);
  if (f == nullptr) return 0.0;
  const long pos = std::ftell(f);
  if (pos < 0) return 0.0;
  const double p = static_cast<double>(pos) / static_cast<double>(file_size_);
  return p > 1.0 ? 1.0 : p;
}

}  // namespace hypergate::pcap
