#include "udp/udp_sink.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>


namespace hypergate::udp {
namespace {

constexpr std::size_t kMaxUdpPayload = 65507;  // IPv4: 65535 - 20 (IP header) - 8 (UDP header)

bool transient(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EINTR; }

}  // namespace

UdpSink::UdpSink(UdpSinkOptions options) : opt_(std::move(options)) {
  session_ = protocols::mold::SessionName::from(opt_.session);
  if (opt_.framing == Framing::MoldUdp64 && owner()) {
    ring_ = std::make_unique<PacketRing>(std::max(opt_.retransmit_packets, kMinRingPackets), opt_.mtu);
  }
}

Result<void> UdpSink::start() {
  if (!owner()) return {};  // not the owning worker: no socket, send() refuses (see the header)
  const std::string where = opt_.destination.to_string();
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return socket_error("socket", where, errno);
  if (opt_.destination.multicast()) {
    if (setsockopt(fd.get(), IPPROTO_IP, IP_MULTICAST_IF, &opt_.interface, sizeof(opt_.interface)) != 0) {
      return socket_error("setsockopt(IP_MULTICAST_IF " + ipv4_to_string(opt_.interface) + ")", where, errno);
    }
    const int ttl = opt_.ttl;
    if (setsockopt(fd.get(), IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) != 0) {
      return socket_error("setsockopt(IP_MULTICAST_TTL)", where, errno);
    }
    const int loop = opt_.loop ? 1 : 0;
    if (setsockopt(fd.get(), IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop)) != 0) {
      return socket_error("setsockopt(IP_MULTICAST_LOOP)", where, errno);
    }
  }
  if (opt_.retransmit_listen) {
    auto rfd = open_bound_socket(*opt_.retransmit_listen);
    if (!rfd) return rfd.error();
    sockaddr_in bound{};
    socklen_t len = sizeof(bound);
    if (getsockname(rfd->get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
      return socket_error("getsockname", opt_.retransmit_listen->to_string(), errno);
    }
    retransmit_port_ = ntohs(bound.sin_port);
    retransmit_fd_ = std::move(rfd).value();
  }
  destination_ = opt_.destination.sockaddr();
  fd_ = std::move(fd);
  heartbeat_ticks_ = clock_->from_ns(opt_.heartbeat_interval_ns);
  last_packet_tsc_ = TscClock::ticks();
  started_ = true;
  return {};
}

void UdpSink::stop() noexcept {
  if (!started_) return;
  started_ = false;
  if (opt_.framing == Framing::MoldUdp64) {
    (void)transmit_queued();
    (void)send_control(/*end_of_session=*/true);
  }
  const UdpSinkCounters c = counters();
  std::fprintf(stderr,
               "udp sink '%s': %llu packets, %llu heartbeats, re-requests served %llu, out of window %llu, "
               "malformed %llu\n",
               opt_.name.c_str(), static_cast<unsigned long long>(c.packets),
               static_cast<unsigned long long>(c.heartbeats), static_cast<unsigned long long>(c.rerequests_served),
               static_cast<unsigned long long>(c.rerequests_out_of_window),
               static_cast<unsigned long long>(c.rerequests_malformed));
  fd_.reset();
  retransmit_fd_.reset();
}

void UdpSink::refuse(std::size_t n) noexcept {
  if (!refused_logged_) {
    refused_logged_ = true;
    std::fprintf(stderr,
                 "udp sink '%s': worker %u refuses messages: only worker %u owns the socket and the sequence "
                 "space (route this sink's messages to a lane that worker drains); counted as errors\n",
                 opt_.name.c_str(), opt_.this_worker, opt_.owner_worker);
  }
  refused_.add(n);
  totals_.errors.add(n);
}

std::size_t UdpSink::send(const Burst<>& burst) noexcept {
  if (burst.empty()) return 0;
  if (!owner()) {
    refuse(burst.size());
    return burst.size();  // refused for good: handing them back would only stall the lane
  }
  if (!fd_.valid()) {  // not started (or stopped): nothing can go out
    totals_.errors.add(burst.size());
    return burst.size();
  }
  return opt_.framing == Framing::Raw ? send_raw(burst) : send_mold(burst);
}

void UdpSink::prepare(std::size_t k, std::span<const std::byte> datagram, sockaddr_in* to) noexcept {
  iov_[k].iov_base = const_cast<std::byte*>(datagram.data());  // sendmmsg does not write through it
  iov_[k].iov_len = datagram.size();
  msghdr& h = headers_[k].msg_hdr;
  h = msghdr{};
  h.msg_name = to;
  h.msg_namelen = sizeof(*to);
  h.msg_iov = &iov_[k];
  h.msg_iovlen = 1;
}

std::size_t UdpSink::send_raw(const Burst<>& burst) noexcept {
  std::size_t n = 0;
  std::size_t too_big = 0;
  std::uint64_t bytes = 0;
  std::array<std::size_t, kBatch> which{};  // burst index of each datagram
  for (std::size_t i = 0; i < burst.size(); ++i) {
    const Message& m = burst[i];
    if (m.size > kMaxUdpPayload) {
      ++too_big;
      continue;
    }
    prepare(n, m.payload(), &destination_);
    which[n] = i;
    ++n;
  }
  std::size_t sent = 0;
  std::size_t failed = 0;
  while (sent < n) {
    const int r = sendmmsg(fd_.get(), headers_.data() + sent, static_cast<unsigned>(n - sent), MSG_DONTWAIT);
    if (r > 0) {
      for (std::size_t k = sent; k < sent + static_cast<std::size_t>(r); ++k) bytes += iov_[k].iov_len;
      sent += static_cast<std::size_t>(r);
      continue;
    }
    if (r < 0 && transient(errno)) break;  // socket buffer full: the caller keeps the rest
    // A hard error on the first datagram of the rest (unreachable, refused...): count it, skip it.
    totals_.errors.add(1);
    ++failed;
    ++sent;
  }
  packets_.add(sent - failed);
  // Accepted: everything up to the first message not handed to the kernel (too-big ones included:
  // they are dropped, counted once; those after that point come back with the rest).
  const std::size_t accepted = sent == n ? burst.size() : which[sent];
  if (accepted != burst.size() && too_big != 0) {
    too_big = 0;
    for (std::size_t i = 0; i < accepted; ++i) too_big += burst[i].size > kMaxUdpPayload ? 1 : 0;
  }
  if (too_big != 0) totals_.drops.add(too_big);
  totals_.messages.add(accepted - too_big);
  totals_.bytes.add(bytes);
  if (sent != 0) last_packet_tsc_ = TscClock::ticks();
  return accepted;
}

std::size_t UdpSink::send_mold(const Burst<>& burst) noexcept {
  // Room for every packet of this burst even if nothing queued can be sent right now.
  if (ring_->next_index() - unsent_ + burst.size() > ring_->capacity()) {
    (void)transmit_queued();
    if (ring_->next_index() - unsent_ + burst.size() > ring_->capacity()) return 0;  // backpressure
  }
  namespace mold = protocols::mold;
  std::size_t dropped = 0;
  std::uint64_t bytes = 0;
  std::optional<mold::PacketBuilder> packet;  // built in place in the ring slot it will be sent from
  const auto close_packet = [&] {
    const protocols::Bytes done = packet->finish();
    ring_->commit(packet->first_sequence(), packet->count(), static_cast<std::uint32_t>(done.size()));
    packet.reset();
  };
  for (const Message& m : burst) {
    if (m.size > opt_.mtu - mold::kHeaderSize - mold::kBlockHeaderSize) {
      ++dropped;  // cannot fit even an empty packet: never split, never truncated
      continue;
    }
    if (packet && !packet->append(m.payload())) close_packet();
    if (!packet) {
      packet.emplace(ring_->next_slot(), opt_.mtu);
      packet->start(session_, next_sequence_);
      const bool fits = packet->append(m.payload());
      (void)fits;  // an empty packet takes any message that passed the size check above
    }
    ++next_sequence_;
    bytes += m.size;
  }
  if (packet) close_packet();
  if (dropped != 0) totals_.drops.add(dropped);
  totals_.messages.add(burst.size() - dropped);
  totals_.bytes.add(bytes);
  (void)transmit_queued();
  return burst.size();
}

std::size_t UdpSink::transmit_queued() noexcept {
  if (!ring_ || !fd_.valid()) return 0;
  std::size_t total = 0;
  while (unsent_ < ring_->next_index()) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(ring_->next_index() - unsent_, kBatch));
    for (std::size_t k = 0; k < n; ++k) {
      prepare(k, ring_->packet(unsent_ + k), &destination_);
    }
    const int r = sendmmsg(fd_.get(), headers_.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
    if (r > 0) {
      unsent_ += static_cast<std::uint64_t>(r);
      total += static_cast<std::size_t>(r);
      continue;
    }
    if (r < 0 && transient(errno)) break;  // retried by flush()/service()
    totals_.errors.add(1);  // a hard error: the packet stays in the ring for re-requests, move on
    ++unsent_;
  }
  if (total != 0) {
    packets_.add(total);
    last_packet_tsc_ = TscClock::ticks();
  }
  return total;
}

void UdpSink::flush() noexcept { (void)transmit_queued(); }

bool UdpSink::send_control(bool end_of_session) noexcept {
  const std::size_t size =
      end_of_session ? protocols::mold::write_end_of_session(control_packet_, session_, next_sequence_)
                     : protocols::mold::write_heartbeat(control_packet_, session_, next_sequence_);
  const ssize_t r = ::sendto(fd_.get(), control_packet_.data(), size, MSG_DONTWAIT,
                             reinterpret_cast<const sockaddr*>(&destination_), sizeof(destination_));
  if (r != static_cast<ssize_t>(size)) {
    totals_.errors.add(1);
    return false;
  }
  (end_of_session ? end_of_session_ : heartbeats_).add();
  last_packet_tsc_ = TscClock::ticks();
  return true;
}

std::size_t UdpSink::service() noexcept {
  if (!fd_.valid() || opt_.framing != Framing::MoldUdp64) return 0;
  std::size_t work = transmit_queued();
  if (retransmit_fd_.valid()) work += answer_rerequests();
  const std::uint64_t now = TscClock::ticks();
  if (now - last_packet_tsc_ >= heartbeat_ticks_ && unsent_ == ring_->next_index()) [[unlikely]] {
    if (send_control(/*end_of_session=*/false)) ++work;
  }
  return work;
}

std::size_t UdpSink::answer_rerequests() noexcept {
  std::array<mmsghdr, kRequestBatch> in{};
  std::array<iovec, kRequestBatch> in_iov{};
  for (std::size_t i = 0; i < kRequestBatch; ++i) {
    in_iov[i].iov_base = request_bytes_[i].data();
    in_iov[i].iov_len = request_bytes_[i].size();
    in[i].msg_hdr.msg_name = &request_from_[i];
    in[i].msg_hdr.msg_namelen = sizeof(request_from_[i]);
    in[i].msg_hdr.msg_iov = &in_iov[i];
    in[i].msg_hdr.msg_iovlen = 1;
  }
  const int got = recvmmsg(retransmit_fd_.get(), in.data(), kRequestBatch, MSG_DONTWAIT, nullptr);
  if (got <= 0) {
    if (got < 0 && !transient(errno)) totals_.errors.add(1);
    return 0;
  }
  for (std::size_t i = 0; i < static_cast<std::size_t>(got); ++i) {
    protocols::mold::Request request;
    const auto error = protocols::mold::parse_request(
        protocols::Bytes(request_bytes_[i].data(), in[i].msg_len), request);
    if (error != protocols::mold::PacketError::Ok || (in[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 ||
        request.session != session_) {
      rerequests_malformed_.add(1);
      continue;
    }
    const auto first = ring_->find(request.sequence);
    if (!first || request.count == 0) {
      rerequests_out_of_window_.add(1);
      continue;
    }
    // The original packets covering [sequence, sequence + count), in one sendmmsg.
    const std::uint64_t last_seq = request.sequence + request.count - 1;
    std::size_t n = 0;
    for (std::uint64_t idx = *first; idx < unsent_ && n < kMaxAnswerPackets; ++idx) {
      if (ring_->entry(idx).first_sequence > last_seq) break;
      prepare(n, ring_->packet(idx), &request_from_[i]);
      ++n;
    }
    if (n == 0) {
      rerequests_out_of_window_.add(1);  // asked for packets not handed to the kernel yet
      continue;
    }
    const int r = sendmmsg(retransmit_fd_.get(), headers_.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
    if (r <= 0) {
      totals_.errors.add(1);
      continue;
    }
    rerequests_served_.add(1);
  }
  return static_cast<std::size_t>(got);
}

adapter::SinkStats UdpSink::stats() const noexcept { return totals_.snapshot(); }

UdpSinkCounters UdpSink::counters() const noexcept {
  UdpSinkCounters c;
  c.packets = packets_.get();
  c.heartbeats = heartbeats_.get();
  c.end_of_session = end_of_session_.get();
  c.rerequests_served = rerequests_served_.get();
  c.rerequests_out_of_window = rerequests_out_of_window_.get();
  c.rerequests_malformed = rerequests_malformed_.get();
  c.refused = refused_.get();
  return c;
}

}  // namespace hypergate::udp
