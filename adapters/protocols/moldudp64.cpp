// MoldUDP64 packet validation, builder and re-request codec (see moldudp64.hpp for the contract).
#include "protocols/moldudp64.hpp"

#include <cstring>

namespace hypergate::protocols::mold {

PacketError PacketView::parse(Bytes datagram, PacketView& out) noexcept {
  if (datagram.size() < kHeaderSize) return PacketError::TruncatedHeader;
  const PacketView view(datagram);
  const std::size_t n = view.message_count();
  if (view.sequence() > UINT64_MAX - n) return PacketError::SequenceOverflow;
  const std::byte* pos = datagram.data() + kHeaderSize;
  const std::byte* const end = datagram.data() + datagram.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (static_cast<std::size_t>(end - pos) < kBlockHeaderSize) return PacketError::TruncatedBlockLength;
    const std::size_t len = wire::load_be16(pos);
    pos += kBlockHeaderSize;
    if (static_cast<std::size_t>(end - pos) < len) return PacketError::BlockOverrun;
    pos += len;
  }
  if (pos != end) return PacketError::TrailingBytes;
  out = view;
  return PacketError::Ok;
}

MessageRange PacketView::messages(std::uint64_t from, std::uint64_t to) const noexcept {
  const std::uint64_t first = sequence();
  const std::uint64_t last = next_sequence();
  if (from < first) from = first;
  if (to > last) to = last;
  if (from >= to) return {MessageIterator(bytes_.data() + kHeaderSize, first), first};
  MessageIterator it(bytes_.data() + kHeaderSize, first);
  while (it.sequence() < from) ++it;
  return {it, to};
}

PacketBuilder::PacketBuilder(MutableBytes out, std::size_t budget) noexcept
    : out_(out), budget_(budget < out.size() ? budget : out.size()) {}

void PacketBuilder::start(const SessionName& session, std::uint64_t first_sequence) noexcept {
  first_sequence_ = first_sequence;
  count_ = 0;
  size_ = 0;
  if (budget_ < kHeaderSize) return;  // fits() refuses everything; finish() returns empty
  std::memcpy(out_.data(), session.chars.data(), kSessionSize);
  wire::store_be64(out_.data() + kSessionSize, first_sequence);
  wire::store_be16(out_.data() + 18, 0);
  size_ = kHeaderSize;
}

bool PacketBuilder::fits(std::size_t size) const noexcept {
  return size_ >= kHeaderSize && count_ < kMaxDataCount && size <= 0xFFFF &&
         budget_ - size_ >= kBlockHeaderSize + size;
}

MutableBytes PacketBuilder::reserve(std::size_t size) noexcept {
  if (!fits(size)) return {};
  std::byte* p = out_.data() + size_;
  wire::store_be16(p, static_cast<std::uint16_t>(size));
  size_ += kBlockHeaderSize + size;
  ++count_;
  return {p + kBlockHeaderSize, size};
}

bool PacketBuilder::append(Bytes message) noexcept {
  const MutableBytes room = reserve(message.size());
  if (room.data() == nullptr) return false;
  if (!message.empty()) std::memcpy(room.data(), message.data(), message.size());
  return true;
}

Bytes PacketBuilder::finish() noexcept {
  if (size_ < kHeaderSize) return {};
  wire::store_be16(out_.data() + 18, count_);
  return {out_.data(), size_};
}

namespace {
std::size_t write_header(MutableBytes out, const SessionName& session, std::uint64_t sequence,
                         std::uint16_t count) noexcept {
  if (out.size() < kHeaderSize) return 0;
  std::memcpy(out.data(), session.chars.data(), kSessionSize);
  wire::store_be64(out.data() + kSessionSize, sequence);
  wire::store_be16(out.data() + 18, count);
  return kHeaderSize;
}
}  // namespace

std::size_t write_heartbeat(MutableBytes out, const SessionName& session, std::uint64_t next_sequence) noexcept {
  return write_header(out, session, next_sequence, kHeartbeatCount);
}

std::size_t write_end_of_session(MutableBytes out, const SessionName& session,
                                 std::uint64_t next_sequence) noexcept {
  return write_header(out, session, next_sequence, kEndOfSessionCount);
}

PacketError parse_request(Bytes datagram, Request& out) noexcept {
  if (datagram.size() < kRequestSize) return PacketError::TruncatedHeader;
  if (datagram.size() > kRequestSize) return PacketError::TrailingBytes;
  out.session = SessionName::from_wire(datagram.data());
  out.sequence = wire::load_be64(datagram.data() + kSessionSize);
  out.count = wire::load_be16(datagram.data() + 18);
  return PacketError::Ok;
}

std::size_t write_request(MutableBytes out, const Request& request) noexcept {
  return write_header(out, request.session, request.sequence, request.count);
}

}  // namespace hypergate::protocols::mold
