#include "udp/udp_source.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace hypergate::udp {

UdpSource::UdpSource(UdpSourceOptions options)
    : opt_(std::move(options)), slots_(kSlots * static_cast<std::size_t>(opt_.max_datagram)) {}

Result<void> UdpSource::start() {
  const std::string where = opt_.listen.to_string();
  auto fd = open_bound_socket(opt_.listen);
  if (!fd) return fd.error();
  const int s = fd->get();
  if (opt_.listen.multicast()) {
    if (auto r = join(s); !r) return r;
  }
  if (opt_.rcvbuf != 0) {
    auto granted = set_receive_buffer(s, opt_.rcvbuf);
    if (!granted) return granted.error();
    rcvbuf_granted_ = *granted;
    if (rcvbuf_granted_ < opt_.rcvbuf) {
      std::fprintf(stderr,
                   "udp source '%s': WARNING rcvbuf %u bytes requested, the kernel granted %u "
                   "(raise net.core.rmem_max)\n",
                   opt_.name.c_str(), opt_.rcvbuf, rcvbuf_granted_);
    } else {
      std::fprintf(stderr, "udp source '%s': rcvbuf %u bytes granted\n", opt_.name.c_str(), rcvbuf_granted_);
    }
  }
  const int one = 1;
  if (opt_.timestamps && setsockopt(s, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) != 0) {
    return socket_error("setsockopt(SO_TIMESTAMPNS)", where, errno);
  }
  if (setsockopt(s, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) != 0) {
    return socket_error("setsockopt(SO_RXQ_OVFL)", where, errno);
  }
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  if (getsockname(s, reinterpret_cast<sockaddr*>(&bound), &len) != 0) return socket_error("getsockname", where, errno);
  local_port_ = ntohs(bound.sin_port);
  realtime_to_tsc_.calibrate();
  head_ = tail_ = batch_head_ = batch_tail_ = 0;
  last_overflow_ = 0;
  fd_ = std::move(fd).value();
  return {};
}

Result<void> UdpSource::join(int fd) {
  const std::string where = opt_.listen.to_string() + " on " + ipv4_to_string(opt_.interface);
  if (opt_.ssm_source) {
    ip_mreq_source m{};
    m.imr_multiaddr = opt_.listen.addr;
    m.imr_interface = opt_.interface;
    m.imr_sourceaddr = *opt_.ssm_source;
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &m, sizeof(m)) != 0) {
      return socket_error("setsockopt(IP_ADD_SOURCE_MEMBERSHIP) from " + ipv4_to_string(*opt_.ssm_source), where,
                          errno);
    }
  } else {
    ip_mreq m{};
    m.imr_multiaddr = opt_.listen.addr;
    m.imr_interface = opt_.interface;
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)) != 0) {
      return socket_error("setsockopt(IP_ADD_MEMBERSHIP)", where, errno);
    }
  }
  // Only the groups this socket joined: without this Linux delivers every group joined on the host
  // that shares the port.
  const int zero = 0;
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof(zero)) != 0) {
    return socket_error("setsockopt(IP_MULTICAST_ALL)", where, errno);
  }
  return {};
}

void UdpSource::stop() noexcept { fd_.reset(); }

std::size_t UdpSource::poll(Burst<>& out) noexcept {
  if (!fd_.valid()) return 0;
  const std::size_t room = out.capacity() - out.size();
  const std::size_t free_slots = kSlots - static_cast<std::size_t>(head_ - tail_);
  std::size_t want = room < free_slots ? room : free_slots;
  if (want > kBatch) want = kBatch;
  if (want == 0) return 0;

  const std::size_t dgram = opt_.max_datagram;
  for (std::size_t i = 0; i < want; ++i) {
    const std::size_t slot = static_cast<std::size_t>((head_ + i) & (kSlots - 1));
    iov_[i].iov_base = slots_.data() + slot * dgram;
    iov_[i].iov_len = dgram;
    msghdr& h = headers_[i].msg_hdr;
    h.msg_name = nullptr;
    h.msg_namelen = 0;
    h.msg_iov = &iov_[i];
    h.msg_iovlen = 1;
    h.msg_control = control_[i].bytes.data();
    h.msg_controllen = kControlBytes;
    h.msg_flags = 0;
    headers_[i].msg_len = 0;
  }
  const int got = recvmmsg(fd_.get(), headers_.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
  if (got <= 0) {
    if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) counters_.errors.add();
    return 0;
  }

  const std::uint64_t now = TscClock::ticks();
  std::size_t appended = 0;
  std::size_t rejected = 0;
  std::uint64_t bytes = 0;
  std::uint32_t overflow = last_overflow_;
  bool overflow_seen = false;
  for (int i = 0; i < got; ++i) {
    const msghdr& h = headers_[static_cast<std::size_t>(i)].msg_hdr;
    std::uint64_t rx = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
        timespec ts{};
        std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
        rx = realtime_to_tsc_.convert(static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
                                      static_cast<std::uint64_t>(ts.tv_nsec));
      } else if (c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(std::uint32_t))) {
        std::memcpy(&overflow, CMSG_DATA(c), sizeof(overflow));
        overflow_seen = true;
      }
    }
    if ((h.msg_flags & MSG_TRUNC) != 0) {
      ++rejected;  // the slot stays part of this poll's batch and is recycled with it
      continue;
    }
    const std::uint32_t len = headers_[static_cast<std::size_t>(i)].msg_len;
    Message& m = out.emplace_back();
    m.set_payload(iov_[static_cast<std::size_t>(i)].iov_base, len);
    m.rx_tsc = rx != 0 ? rx : now;
    bytes += len;
    ++appended;
  }
  if (overflow_seen) {
    // The counter is cumulative per socket and wraps at 2^32: the unsigned difference is the delta.
    const std::uint32_t delta = overflow - last_overflow_;
    last_overflow_ = overflow;
    if (delta != 0) counters_.drops.add(delta);
  }
  if (rejected != 0) counters_.rejects.add(rejected);
  if (appended == 0) return 0;  // nothing handed out: the slots are reused by the next poll

  head_ += static_cast<std::uint64_t>(got);
  batch_sizes_[batch_head_++ & (kSlots - 1)] = static_cast<std::uint32_t>(got);
  counters_.polled(appended, bytes);
  return appended;
}

void UdpSource::release(Burst<>& done) noexcept {
  (void)done;  // bursts come back in poll order: free the oldest outstanding batch
  if (batch_tail_ == batch_head_) return;
  tail_ += batch_sizes_[batch_tail_++ & (kSlots - 1)];
}

adapter::SourceStats UdpSource::stats() const noexcept { return counters_.snapshot(); }

}  // namespace hypergate::udp
