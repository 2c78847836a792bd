// io_uring TCP server loop; the contract is in uring_server.hpp.
//
// Shape: user_data carries the operation in its top byte and the connection slot (= fixed-file index)
// in its low 32 bits, so a completion is dispatched without a lookup. Per connection at most one
// recv (multishot) and one send are in flight; closing cancels both by descriptor, and the slot is
// freed only when the close_direct completion arrived. A zero-copy send's two completions (result,
// then notification) carry the same user_data; it names the output buffer as well (bits 32..55),
// because the notification may arrive after the connection that sent it is gone.
#include "uring/uring_server.hpp"

#include <arpa/inet.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace hypergate::uring {
namespace {

enum Op : std::uint64_t { kAccept = 1, kRecv = 2, kSend = 3, kCancel = 4, kClose = 5, kSendZc = 6 };
constexpr std::uint16_t kBufferGroup = 7;
constexpr std::uint64_t kTickNs = 50'000'000;  // timeout granularity

constexpr std::uint64_t encode(Op op, std::uint32_t index) noexcept { return (std::uint64_t{op} << 56) | index; }
constexpr Op op_of(std::uint64_t ud) noexcept { return static_cast<Op>(ud >> 56); }
constexpr std::uint32_t index_of(std::uint64_t ud) noexcept { return static_cast<std::uint32_t>(ud); }
constexpr std::uint64_t encode_zc(std::uint32_t index, std::uint32_t buf) noexcept {
  return encode(kSendZc, index) | (std::uint64_t{buf} << 32);
}
constexpr std::uint32_t buffer_of(std::uint64_t ud) noexcept { return static_cast<std::uint32_t>(ud >> 32) & 0xFFFFFF; }
constexpr std::uint32_t kMaxOutputBuffers = 0xFFFFFF;  // 24 bits of user_data

// Kernel UAPI (6.2+) names liburing 2.3's io_uring.h predates: ask the notification to say whether the
// kernel had to copy after all (it does on loopback, and for devices without scatter-gather).
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

std::uint64_t monotonic_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

void* map_bytes(std::size_t bytes) noexcept {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

Error sys_error(const std::string& what, int err) {
  return Error{Status::IoError, what + ": " + std::strerror(err)};
}

}  // namespace

Result<int> open_listener(const std::string& host, std::uint16_t port, int backlog, std::uint16_t* bound_port,
                          bool reuse_port) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  const std::string h = host.empty() ? "0.0.0.0" : host;
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(h.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
      return Error{Status::InvalidArgument, "cannot resolve listen host '" + h + "'"};
    }
    std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
    len = res->ai_addrlen;
    freeaddrinfo(res);
    if (addr.ss_family == AF_INET) v4->sin_port = htons(port);
    else v6->sin6_port = htons(port);
  }
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return sys_error("socket", errno);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // rebind at once after a crash
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));  // one listener per worker
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // inherited by accepted sockets
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    const int err = errno;
    close(fd);
    return sys_error("bind " + h + ":" + std::to_string(port), err);
  }
  if (listen(fd, backlog) != 0) {
    const int err = errno;
    close(fd);
    return sys_error("listen", err);
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  *bound_port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                 : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return fd;
}

// ------------------------------------------------------------------------------------------------
// Connection

bool Connection::write(std::string_view bytes) noexcept {
  if (out_ == nullptr || bytes.size() > out_cap_ - out_len_) return false;  // closed: no output buffer
  std::memcpy(out_ + out_len_, bytes.data(), bytes.size());
  out_len_ += static_cast<std::uint32_t>(bytes.size());
  return true;
}

std::size_t EchoHandler::on_data(Connection& c, std::span<char> data) noexcept {
  const std::size_t n = std::min(data.size(), c.write_room());
  c.write(std::string_view(data.data(), n));
  return n;
}

// ------------------------------------------------------------------------------------------------
// UringServer

UringServer::UringServer(ServerOptions options, ConnectionHandler& handler)
    : opt_(std::move(options)), handler_(handler), ring_(std::make_unique<io_uring>()) {}

UringServer::~UringServer() { stop(); }

void UringServer::bump(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
  // relaxed: only the loop thread writes; stats() readers want a monotonic value and order nothing by it.
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

Result<void> UringServer::start() {
  if (opt_.buffer_count == 0 || (opt_.buffer_count & (opt_.buffer_count - 1)) != 0 || opt_.buffer_count > 32768) {
    return Error{Status::InvalidArgument, "buffer_count must be a power of two <= 32768"};
  }
  if (opt_.max_connections == 0 || opt_.input_bytes < 2 * opt_.buffer_size || opt_.output_bytes == 0) {
    return Error{Status::InvalidArgument, "max_connections > 0, input_bytes >= 2 * buffer_size required"};
  }
  const std::uint32_t spare = opt_.send_zc_threshold == 0 ? 0 : opt_.spare_output_buffers;
  if (std::uint64_t{opt_.max_connections} + spare > kMaxOutputBuffers) {
    return Error{Status::InvalidArgument, "max_connections + spare_output_buffers must be < 2^24"};
  }
  auto listener = open_listener(opt_.host, opt_.port, opt_.backlog, &port_, opt_.reuse_port);
  if (!listener) return listener.error();
  listen_fd_ = listener.value();

  io_uring_params params{};
  // COOP_TASKRUN: completion work runs when the loop enters the kernel (it does, every iteration)
  // instead of interrupting a thread with a signal-like notification, which costs an IPI and turns
  // any blocking call with a timeout in the interrupted thread into EINTR.
  // TASKRUN_FLAG: the kernel raises IORING_SQ_TASKRUN when such work is waiting, so a non-blocking
  // run_once() can tell whether entering the kernel would do anything (see there).
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  params.cq_entries = opt_.ring_entries * 8;  // room for bursts of recv completions
  if (const int rc = io_uring_queue_init_params(opt_.ring_entries, ring_.get(), &params); rc < 0) {
    stop();
    return sys_error("io_uring_queue_init", -rc);
  }
  ring_ready_ = true;
  if (const int rc = io_uring_register_files_sparse(ring_.get(), opt_.max_connections); rc < 0) {
    stop();
    return sys_error("io_uring_register_files_sparse", -rc);
  }

  // Provided buffer ring: the ring of descriptors (page aligned, by mmap) and the buffers themselves.
  buf_ring_bytes_ = sizeof(io_uring_buf) * opt_.buffer_count;
  buffers_bytes_ = std::size_t{opt_.buffer_count} * opt_.buffer_size;
  buf_ring_ = map_bytes(buf_ring_bytes_);
  buffers_ = static_cast<char*>(map_bytes(buffers_bytes_));
  if (buf_ring_ == nullptr || buffers_ == nullptr) {
    stop();
    return sys_error("mmap buffers", ENOMEM);
  }
  auto* br = static_cast<io_uring_buf_ring*>(buf_ring_);
  io_uring_buf_ring_init(br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(br);
  reg.ring_entries = opt_.buffer_count;
  reg.bgid = kBufferGroup;
  if (const int rc = io_uring_register_buf_ring(ring_.get(), &reg, 0); rc < 0) {
    stop();
    return sys_error("io_uring_register_buf_ring", -rc);
  }
  const int mask = io_uring_buf_ring_mask(opt_.buffer_count);
  for (std::uint32_t i = 0; i < opt_.buffer_count; ++i) {
    io_uring_buf_ring_add(br, buffers_ + std::size_t{i} * opt_.buffer_size, opt_.buffer_size,
                          static_cast<unsigned short>(i), mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br, static_cast<int>(opt_.buffer_count));

  // Connection table and its buffers, reserved once. Input buffers belong to a slot; output buffers
  // are handed out at accept (a closed connection's buffer may still be read by a zero-copy send).
  conn_mem_bytes_ = std::size_t{opt_.input_bytes} * opt_.max_connections;
  out_count_ = opt_.max_connections + spare;
  out_mem_bytes_ = std::size_t{opt_.output_bytes} * out_count_;
  conn_mem_ = static_cast<char*>(map_bytes(conn_mem_bytes_));
  out_mem_ = static_cast<char*>(map_bytes(out_mem_bytes_));
  if (conn_mem_ == nullptr || out_mem_ == nullptr) {
    stop();
    return sys_error("mmap connection buffers", ENOMEM);
  }
  conns_ = std::make_unique<Connection[]>(opt_.max_connections);
  held_next_ = std::make_unique<std::uint32_t[]>(opt_.buffer_count);
  held_len_ = std::make_unique<std::uint32_t[]>(opt_.buffer_count);
  out_free_ = std::make_unique<std::uint32_t[]>(out_count_);
  out_notifs_ = std::make_unique<std::uint32_t[]>(out_count_);
  out_owner_ = std::make_unique<std::uint32_t[]>(out_count_);
  for (std::uint32_t b = 0; b < out_count_; ++b) {
    out_free_[b] = out_count_ - 1 - b;  // pop order 0, 1, 2...: low buffers are reused first
    out_owner_[b] = Connection::kNoBuffer;
  }
  out_free_len_ = out_count_;
  for (std::uint32_t i = 0; i < opt_.max_connections; ++i) {
    Connection& c = conns_[i];
    c.index_ = i;
    c.in_ = conn_mem_ + std::size_t{opt_.input_bytes} * i;
    c.in_cap_ = opt_.input_bytes;
    c.out_cap_ = opt_.output_bytes;
  }
  // Zero copy only when asked for and the kernel has the opcode (6.0+); otherwise plain sends, and a
  // kernel that lacks it is a counted fallback.
  zc_enabled_ = false;
  if (opt_.send_zc_threshold != 0) {
    io_uring_probe* probe = io_uring_get_probe_ring(ring_.get());  // cold path: allocates
    zc_enabled_ = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) != 0;
    if (probe != nullptr) io_uring_free_probe(probe);
    if (!zc_enabled_) bump(counters_.zc_fallbacks);
  }
  zc_flags_ = IORING_SEND_ZC_REPORT_USAGE | opt_.send_zc_extra_flags;
  now_ns_ = monotonic_ns();
  next_tick_ns_ = now_ns_ + kTickNs;
  // Queued, not submitted: the first run_once() submits it from the loop thread. io_uring runs a
  // request's completion work on the task that submitted it (interrupting it with a signal-like
  // notification, which turns a blocking call with a timeout into EINTR), so only the loop submits.
  arm_accept();
  return {};
}

void UringServer::stop() noexcept {
  // The in-flight multishot accept holds a reference to the listening socket and ring teardown is
  // asynchronous, so close() alone could leave it listening for a while (and, with SO_REUSEPORT,
  // taking connections meant for a successor). shutdown() takes it out of LISTEN now.
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (ring_ready_) {
    io_uring_queue_exit(ring_.get());  // closes the direct descriptors and cancels every request
    ring_ready_ = false;
  }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
  }
  if (conns_) {
    for (std::uint32_t i = 0; i < opt_.max_connections; ++i) {
      if (conns_[i].state_ != Connection::State::Free) {
        conns_[i].state_ = Connection::State::Free;
        handler_.on_close(conns_[i]);
      }
    }
  }
  if (buf_ring_ != nullptr) munmap(buf_ring_, buf_ring_bytes_);
  if (buffers_ != nullptr) munmap(buffers_, buffers_bytes_);
  // Output buffers with zero-copy notifications still outstanding (the ring is gone, so they will
  // never be reported) are unmapped all the same: the kernel holds its own references on the pages
  // it still sends from, so they stay valid for it, and nothing here reads them again.
  if (conn_mem_ != nullptr) munmap(conn_mem_, conn_mem_bytes_);
  if (out_mem_ != nullptr) munmap(out_mem_, out_mem_bytes_);
  buf_ring_ = nullptr;
  buffers_ = nullptr;
  conn_mem_ = nullptr;
  out_mem_ = nullptr;
  counters_.zc_outstanding.store(0, std::memory_order_relaxed);  // relaxed: counter only, see bump()
  counters_.active.store(0, std::memory_order_relaxed);  // relaxed: counter only, see bump()
}

ServerStats UringServer::stats() const noexcept {
  ServerStats s;  // relaxed loads: monotonic counters, see bump()
  s.accepted = counters_.accepted.load(std::memory_order_relaxed);
  s.rejected = counters_.rejected.load(std::memory_order_relaxed);
  s.closed = counters_.closed.load(std::memory_order_relaxed);
  s.active = counters_.active.load(std::memory_order_relaxed);
  s.bytes_in = counters_.bytes_in.load(std::memory_order_relaxed);
  s.bytes_out = counters_.bytes_out.load(std::memory_order_relaxed);
  s.timeouts = counters_.timeouts.load(std::memory_order_relaxed);
  s.errors = counters_.errors.load(std::memory_order_relaxed);
  s.partial_sends = counters_.partial_sends.load(std::memory_order_relaxed);
  s.zc_sends = counters_.zc_sends.load(std::memory_order_relaxed);
  s.zc_notifications = counters_.zc_notifications.load(std::memory_order_relaxed);
  s.zc_copied = counters_.zc_copied.load(std::memory_order_relaxed);
  s.zc_fallbacks = counters_.zc_fallbacks.load(std::memory_order_relaxed);
  s.zc_outstanding = counters_.zc_outstanding.load(std::memory_order_relaxed);
  return s;
}

io_uring_sqe* UringServer::sqe() noexcept {
  io_uring_sqe* s = io_uring_get_sqe(ring_.get());
  if (s == nullptr) {  // submission queue full inside a batch: flush it and take a fresh entry
    io_uring_submit(ring_.get());
    s = io_uring_get_sqe(ring_.get());
  }
  return s;
}

void UringServer::arm_accept() noexcept {
  io_uring_sqe* s = sqe();
  if (s == nullptr) return;
  io_uring_prep_multishot_accept_direct(s, listen_fd_, nullptr, nullptr, 0);
  io_uring_sqe_set_data64(s, encode(kAccept, 0));
  accept_armed_ = true;
}

void UringServer::arm_recv(Connection& c) noexcept {
  io_uring_sqe* s = sqe();
  if (s == nullptr) {
    begin_close(c);
    return;
  }
  io_uring_prep_recv_multishot(s, static_cast<int>(c.index_), nullptr, 0, 0);
  s->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
  s->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(s, encode(kRecv, c.index_));
  c.recv_armed_ = true;
}

void UringServer::recycle(std::uint16_t bid) noexcept {
  auto* br = static_cast<io_uring_buf_ring*>(buf_ring_);
  io_uring_buf_ring_add(br, buffers_ + std::size_t{bid} * opt_.buffer_size, opt_.buffer_size, bid,
                        io_uring_buf_ring_mask(opt_.buffer_count), static_cast<int>(recycled_));
  ++recycled_;
}

int UringServer::ring_fd() const noexcept { return ring_ready_ ? ring_->ring_fd : -1; }

std::size_t UringServer::run_once(std::uint64_t wait_ns) noexcept {
  if (!ring_ready_) return 0;
  io_uring* ring = ring_.get();
  if (wait_ns == 0) {
    // Enter the kernel only when it has something to do: requests to submit, completion work it flagged
    // (IORING_SQ_TASKRUN), or completions that overflowed the CQ. Completions already posted are read
    // from the shared ring without a syscall, so an idle poll costs no io_uring_enter: the worker loop
    // calls this every iteration for every io_uring adapter it runs.
    const bool taskrun = (IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_TASKRUN) != 0;
    if (io_uring_sq_ready(ring) != 0 || taskrun || io_uring_cq_has_overflow(ring))
      io_uring_submit_and_get_events(ring);  // never blocks; runs pending completion work
  } else {
    __kernel_timespec ts{};
    ts.tv_sec = static_cast<long long>(wait_ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long long>(wait_ns % 1'000'000'000);
    io_uring_cqe* first = nullptr;
    io_uring_submit_and_wait_timeout(ring, &first, 1, &ts, nullptr);  // -ETIME on timeout: fine
  }
  now_ns_ = monotonic_ns();  // one clock read per batch

  unsigned head = 0;
  unsigned count = 0;
  io_uring_cqe* cqe = nullptr;
  reading_ = true;
  io_uring_for_each_cqe(ring, head, cqe) {
    if (stop_batch_) break;  // the handler's batch is full: the rest wait for the next call
    ++count;
    const std::uint64_t ud = io_uring_cqe_get_data64(cqe);
    const std::uint32_t idx = index_of(ud);
    switch (op_of(ud)) {
      case kAccept:
        on_accept(cqe->res, cqe->flags);
        break;
      case kRecv:
        if (idx < opt_.max_connections) on_recv(conns_[idx], cqe->res, cqe->flags);
        break;
      case kSend:
        if (idx < opt_.max_connections) on_send(conns_[idx], cqe->res);
        break;
      case kSendZc:
        if ((cqe->flags & IORING_CQE_F_NOTIF) != 0) on_zc_notification(buffer_of(ud), cqe->res);
        else if (idx < opt_.max_connections) on_send_zc(conns_[idx], cqe->res, cqe->flags);
        break;
      case kCancel:
        break;  // the cancelled requests report themselves
      case kClose:
        if (idx < opt_.max_connections) free_slot(conns_[idx]);
        break;
    }
  }
  io_uring_cq_advance(ring, count);  // once per batch
  reading_ = false;
  stop_batch_ = false;
  if (recycled_ != 0) {
    io_uring_buf_ring_advance(static_cast<io_uring_buf_ring*>(buf_ring_), static_cast<int>(recycled_));
    recycled_ = 0;
  }
  if (!accept_armed_) arm_accept();
  if (now_ns_ >= next_tick_ns_) [[unlikely]] {
    tick(now_ns_);
    next_tick_ns_ = now_ns_ + kTickNs;
  }
  // Replies produced by this batch go out now (one syscall for the batch), not at the next call:
  // in poll mode the next call may be a back-off sleep away.
  if (count != 0 && io_uring_sq_ready(ring) != 0) io_uring_submit(ring);
  return count;
}

void UringServer::run(const std::atomic<bool>& stop_flag) noexcept {
  // acquire: pairs with the release-store of the flag by whoever stops the loop (the test thread).
  while (!stop_flag.load(std::memory_order_acquire)) run_once(kTickNs);
}

void UringServer::on_accept(int res, std::uint32_t flags) noexcept {
  if ((flags & IORING_CQE_F_MORE) == 0) accept_armed_ = false;  // re-armed after the batch
  if (res < 0) {
    bump(counters_.rejected);  // -ENFILE: the table (connection limit) is full; others are transient
    return;
  }
  const auto idx = static_cast<std::uint32_t>(res);
  if (idx >= opt_.max_connections) return;
  Connection& c = conns_[idx];
  c.in_len_ = c.out_len_ = c.out_sent_ = 0;
  c.recv_armed_ = c.recv_paused_ = c.send_inflight_ = c.cancel_sent_ = c.close_sent_ = false;
  if (out_free_len_ == 0) [[unlikely]] {
    // Every spare output buffer is parked behind zero-copy notifications: refuse the connection.
    bump(counters_.rejected);
    c.state_ = Connection::State::Closing;
    c.out_buf_ = Connection::kNoBuffer;
    c.out_ = nullptr;
    try_finish_close(c);
    return;
  }
  c.out_buf_ = out_free_[--out_free_len_];
  out_owner_[c.out_buf_] = idx;
  c.out_ = out_mem_ + std::size_t{opt_.output_bytes} * c.out_buf_;
  c.state_ = Connection::State::Open;
  bump(counters_.active);  // free_slot() takes it back
  c.close_after_write_ = c.abort_ = false;
  c.held_head_ = c.held_tail_ = Connection::kNoBuffer;
  c.held_off_ = c.held_count_ = 0;
  c.last_active_ns_ = now_ns_;
  c.partial_since_ns_ = 0;
  bump(counters_.accepted);
  handler_.on_open(c);
  arm_recv(c);
}

void UringServer::on_recv(Connection& c, int res, std::uint32_t flags) noexcept {
  if ((flags & IORING_CQE_F_MORE) == 0) c.recv_armed_ = false;
  if ((flags & IORING_CQE_F_BUFFER) != 0) {
    const auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    bool held = false;
    if (res > 0 && c.state_ == Connection::State::Open) {
      bump(counters_.bytes_in, static_cast<std::uint64_t>(res));
      c.last_active_ns_ = now_ns_;
      held = deliver(c, bid, buffers_ + std::size_t{bid} * opt_.buffer_size, static_cast<std::uint32_t>(res));
    }
    if (!held) recycle(bid);  // the handler is done with it: consumed or copied
  }
  if (c.state_ != Connection::State::Open) {
    try_finish_close(c);
    return;
  }
  if (res == 0) {  // orderly shutdown by the peer
    begin_close(c);
    return;
  }
  if (res < 0 && res != -ENOBUFS && res != -ECANCELED) {  // reset, or another socket error
    bump(counters_.errors);
    begin_close(c);
    return;
  }
  if (!c.recv_armed_ && !c.recv_paused_) arm_recv(c);  // ran out of buffers, or the kernel ended it
}

bool UringServer::deliver(Connection& c, std::uint16_t bid, char* data, std::uint32_t len) noexcept {
  if (c.held_count_ != 0) {  // older bytes are waiting: keep the order
    hold(c, bid, 0, len);
    after_handler(c);
    return true;
  }
  bool held = false;
  if (c.in_len_ == 0) {  // zero-copy: hand the ring buffer itself to the handler
    const std::size_t used = std::min<std::size_t>(handler_.on_data(c, std::span<char>(data, len)), len);
    const auto rest = static_cast<std::uint32_t>(len - used);
    if (rest > c.in_cap_ / 2) {  // keep the copy path small: hold the buffer instead
      hold(c, bid, static_cast<std::uint32_t>(used), len);
      held = true;
    } else if (rest != 0) {
      std::memcpy(c.in_, data + used, rest);
      c.in_len_ = rest;
    }
    after_handler(c);
  } else if (len > c.in_cap_ - c.in_len_) {  // no room behind the pending bytes
    hold(c, bid, 0, len);
    held = true;
    drain_input(c);
  } else {
    std::memcpy(c.in_ + c.in_len_, data, len);
    c.in_len_ += len;
    drain_input(c);
  }
  return held;
}

void UringServer::hold(Connection& c, std::uint16_t bid, std::uint32_t off, std::uint32_t len) noexcept {
  held_next_[bid] = Connection::kNoBuffer;
  held_len_[bid] = len;
  if (c.held_count_ == 0) {
    c.held_head_ = bid;
    c.held_off_ = off;
  } else {
    held_next_[c.held_tail_] = bid;
  }
  c.held_tail_ = bid;
  ++c.held_count_;
}

void UringServer::release_held(Connection& c) noexcept {
  while (c.held_count_ != 0) {
    const std::uint32_t bid = c.held_head_;
    c.held_head_ = held_next_[bid];
    --c.held_count_;
    recycle(static_cast<std::uint16_t>(bid));
  }
  c.held_head_ = c.held_tail_ = Connection::kNoBuffer;
  c.held_off_ = 0;
}

void UringServer::drain_input(Connection& c) noexcept {
  for (;;) {
    if (c.in_len_ != 0 && !c.closing()) {
      const std::size_t used =
          std::min<std::size_t>(handler_.on_data(c, std::span<char>(c.in_, c.in_len_)), c.in_len_);
      if (used != 0) {
        std::memmove(c.in_, c.in_ + used, c.in_len_ - used);
        c.in_len_ -= static_cast<std::uint32_t>(used);
      }
    }
    // Refill the input buffer from held ring buffers, oldest first.
    if (c.held_count_ == 0 || c.closing() || c.in_len_ == c.in_cap_) break;
    const std::uint32_t bid = c.held_head_;
    const std::uint32_t take = std::min(held_len_[bid] - c.held_off_, c.in_cap_ - c.in_len_);
    std::memcpy(c.in_ + c.in_len_, buffers_ + std::size_t{bid} * opt_.buffer_size + c.held_off_, take);
    c.in_len_ += take;
    c.held_off_ += take;
    if (c.held_off_ == held_len_[bid]) {
      c.held_head_ = held_next_[bid];
      c.held_off_ = 0;
      if (--c.held_count_ == 0) c.held_head_ = c.held_tail_ = Connection::kNoBuffer;
      recycle(static_cast<std::uint16_t>(bid));
    }
  }
  // A full input buffer the handler cannot consume although its output is drained: the message is
  // larger than input_bytes.
  if (c.in_len_ == c.in_cap_ && c.out_len_ == c.out_sent_ && out_notifs_[c.out_buf_] == 0 && !c.closing()) {
    bump(counters_.errors);
    c.abort_ = true;
  }
  after_handler(c);
}

void UringServer::after_handler(Connection& c) noexcept {
  if (c.in_len_ == 0) c.partial_since_ns_ = 0;
  else if (c.partial_since_ns_ == 0) c.partial_since_ns_ = now_ns_;
  if (c.abort_) {
    begin_close(c);
    return;
  }
  // Backpressure: while replies cannot drain and the input buffer is half full, stop receiving (the
  // peer's TCP window closes); resume once the input is below a quarter or the output drained.
  // Output pinned by zero-copy notifications counts as stuck: the handler has no room until they came.
  const bool output_stuck = c.out_len_ != c.out_sent_ || out_notifs_[c.out_buf_] != 0;
  if (!c.recv_paused_ && (c.held_count_ != 0 || (output_stuck && c.in_len_ > c.in_cap_ / 2))) {
    c.recv_paused_ = true;
    if (c.recv_armed_) {
      io_uring_sqe* s = sqe();
      if (s != nullptr) {
        io_uring_prep_cancel64(s, encode(kRecv, c.index_), 0);
        io_uring_sqe_set_data64(s, encode(kCancel, c.index_));
        io_uring_submit(ring_.get());  // now, not at the end of the batch: fewer buffers get held
      }
    }
  } else if (c.recv_paused_ && c.held_count_ == 0 && (c.in_len_ <= c.in_cap_ / 4 || !output_stuck) &&
             !c.closing()) {
    c.recv_paused_ = false;
    if (!c.recv_armed_) arm_recv(c);
  }
  flush(c);
}

void UringServer::flush(Connection& c) noexcept {
  if (c.send_inflight_ || c.state_ != Connection::State::Open) return;
  if (c.out_sent_ == c.out_len_) {
    if (c.close_after_write_) begin_close(c);
    return;
  }
  io_uring_sqe* s = sqe();
  if (s == nullptr) {
    begin_close(c);
    return;
  }
  const std::uint32_t len = c.out_len_ - c.out_sent_;
  // The completion's op (kSendZc or kSend) tells on_send_zc()/on_send() which kind it was.
  if (zc_enabled_ && len >= opt_.send_zc_threshold) {
    io_uring_prep_send_zc(s, static_cast<int>(c.index_), c.out_ + c.out_sent_, len, MSG_NOSIGNAL, zc_flags_);
    io_uring_sqe_set_data64(s, encode_zc(c.index_, c.out_buf_));
    bump(counters_.zc_sends);
  } else {
    io_uring_prep_send(s, static_cast<int>(c.index_), c.out_ + c.out_sent_, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, encode(kSend, c.index_));
  }
  s->flags |= IOSQE_FIXED_FILE;
  c.send_inflight_ = true;
}

void UringServer::flush_connection(Connection& c) noexcept {
  if (c.state_ != Connection::State::Open) return;
  if (c.abort_) {
    begin_close(c);
    return;
  }
  flush(c);
}

void UringServer::redeliver(Connection& c) noexcept {
  if (c.state_ != Connection::State::Open) return;
  drain_input(c);
}

void UringServer::on_send(Connection& c, int res) noexcept {
  c.send_inflight_ = false;
  if (c.state_ != Connection::State::Open) {
    try_finish_close(c);
    return;
  }
  if (res < 0) {
    bump(counters_.errors);
    begin_close(c);
    return;
  }
  bump(counters_.bytes_out, static_cast<std::uint64_t>(res));
  if (static_cast<std::uint32_t>(res) < c.out_len_ - c.out_sent_) bump(counters_.partial_sends);
  c.out_sent_ += static_cast<std::uint32_t>(res);
  reclaim_output(c);
  drain_input(c);  // the handler may have been waiting for room; also flushes
}

void UringServer::on_send_zc(Connection& c, int res, std::uint32_t flags) noexcept {
  // The result of a send_zc. IORING_CQE_F_MORE: a notification for the same user_data follows (also
  // after some errors), and until it came the kernel may still read the bytes sent.
  if ((flags & IORING_CQE_F_MORE) != 0) {
    ++out_notifs_[c.out_buf_];
    bump(counters_.zc_outstanding);
  }
  if (res == -EINVAL || res == -EOPNOTSUPP) {
    // Refused before anything was sent. EINVAL while asking for usage reports: a 6.0/6.1 kernel has
    // send_zc but not IORING_SEND_ZC_REPORT_USAGE, so try once more without it. Otherwise zero copy
    // is not available (old kernel, a socket that does not support it): plain sends from now on.
    if (res == -EINVAL && (zc_flags_ & IORING_SEND_ZC_REPORT_USAGE) != 0) {
      zc_flags_ &= ~IORING_SEND_ZC_REPORT_USAGE;
    } else {
      zc_enabled_ = false;
      bump(counters_.zc_fallbacks);
    }
    c.send_inflight_ = false;
    if (c.state_ != Connection::State::Open) {
      try_finish_close(c);
      return;
    }
    flush(c);  // the same bytes again, now without the refused flag or as a plain send
    return;
  }
  on_send(c, res);  // bytes accounted as for a plain send; reclaim_output() honours the notification
}

void UringServer::on_zc_notification(std::uint32_t buf, int res) noexcept {
  if (buf >= out_count_ || out_notifs_[buf] == 0) return;  // cannot happen: counted per request
  bump(counters_.zc_notifications);
  counters_.zc_outstanding.store(counters_.zc_outstanding.load(std::memory_order_relaxed) - 1,
                                 std::memory_order_relaxed);  // relaxed: see bump()
  if ((static_cast<std::uint32_t>(res) & IORING_NOTIF_USAGE_ZC_COPIED) != 0) bump(counters_.zc_copied);
  if (--out_notifs_[buf] != 0) return;
  const std::uint32_t owner = out_owner_[buf];
  if (owner == Connection::kNoBuffer) {  // parked by a closed connection: back to the pool
    out_free_[out_free_len_++] = buf;
    return;
  }
  Connection& c = conns_[owner];
  if (c.state_ != Connection::State::Open) return;  // closing: free_slot() releases the buffer
  reclaim_output(c);
  drain_input(c);  // the handler may have been waiting for room; also flushes
}

void UringServer::reclaim_output(Connection& c) noexcept {
  if (c.send_inflight_ || out_notifs_[c.out_buf_] != 0) return;  // the kernel may still read it
  if (c.out_sent_ == c.out_len_) {
    c.out_len_ = c.out_sent_ = 0;
  } else if (c.out_sent_ > c.out_cap_ / 2) {  // nothing in flight now: compact
    std::memmove(c.out_, c.out_ + c.out_sent_, c.out_len_ - c.out_sent_);
    c.out_len_ -= c.out_sent_;
    c.out_sent_ = 0;
  }
}

void UringServer::release_output(Connection& c) noexcept {
  const std::uint32_t buf = c.out_buf_;
  if (buf == Connection::kNoBuffer) return;
  out_owner_[buf] = Connection::kNoBuffer;
  if (out_notifs_[buf] == 0) out_free_[out_free_len_++] = buf;  // else parked until the last notification
  c.out_buf_ = Connection::kNoBuffer;
  c.out_ = nullptr;
}

void UringServer::free_slot(Connection& c) noexcept {
  // The close_direct completed: no completion of this connection's requests can follow except zero-copy
  // notifications, which name the output buffer, not the slot.
  const bool accepted = c.out_buf_ != Connection::kNoBuffer;  // else refused at accept: never counted
  release_output(c);
  c.state_ = Connection::State::Free;
  if (!accepted) return;
  bump(counters_.closed);
  counters_.active.store(counters_.active.load(std::memory_order_relaxed) - 1,
                         std::memory_order_relaxed);  // relaxed: see bump()
}

void UringServer::begin_close(Connection& c) noexcept {
  if (c.state_ != Connection::State::Open) return;
  c.state_ = Connection::State::Closing;
  release_held(c);
  handler_.on_close(c);
  if (c.recv_armed_ || c.send_inflight_) {
    io_uring_sqe* s = sqe();
    if (s != nullptr) {
      io_uring_prep_cancel_fd(s, static_cast<int>(c.index_), IORING_ASYNC_CANCEL_FD_FIXED | IORING_ASYNC_CANCEL_ALL);
      io_uring_sqe_set_data64(s, encode(kCancel, c.index_));
      c.cancel_sent_ = true;
    }
  }
  try_finish_close(c);
}

void UringServer::try_finish_close(Connection& c) noexcept {
  if (c.state_ != Connection::State::Closing || c.close_sent_ || c.recv_armed_ || c.send_inflight_) return;
  io_uring_sqe* s = sqe();
  if (s == nullptr) return;  // retried from the next completion or tick
  io_uring_prep_close_direct(s, c.index_);
  io_uring_sqe_set_data64(s, encode(kClose, c.index_));
  c.close_sent_ = true;
}

void UringServer::tick(std::uint64_t now_ns) noexcept {
  for (std::uint32_t i = 0; i < opt_.max_connections; ++i) {
    Connection& c = conns_[i];
    if (c.state_ == Connection::State::Closing) {
      try_finish_close(c);
      continue;
    }
    if (c.state_ != Connection::State::Open) continue;
    const bool idle = opt_.idle_timeout_ns != 0 && now_ns - c.last_active_ns_ > opt_.idle_timeout_ns;
    const bool slow = opt_.header_timeout_ns != 0 && c.partial_since_ns_ != 0 &&
                      now_ns - c.partial_since_ns_ > opt_.header_timeout_ns;
    if (idle || slow) {
      bump(counters_.timeouts);
      begin_close(c);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// EpollEchoServer

EpollEchoServer::EpollEchoServer(ServerOptions options) : opt_(std::move(options)) {}
EpollEchoServer::~EpollEchoServer() { stop(); }

Result<void> EpollEchoServer::start() {
  auto listener = open_listener(opt_.host, opt_.port, opt_.backlog, &port_, opt_.reuse_port);
  if (!listener) return listener.error();
  listen_fd_ = listener.value();
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    stop();
    return sys_error("epoll_create1", errno);
  }
  conns_ = std::make_unique<Conn[]>(opt_.max_connections);
  mem_ = std::make_unique<char[]>(std::size_t{opt_.max_connections} * opt_.output_bytes);
  for (std::uint32_t i = 0; i < opt_.max_connections; ++i) conns_[i].buf = mem_.get() + std::size_t{i} * opt_.output_bytes;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = UINT64_MAX;  // the listener
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  return {};
}

void EpollEchoServer::stop() noexcept {
  if (conns_) {
    for (std::uint32_t i = 0; i < opt_.max_connections; ++i) close_conn(i);
  }
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (listen_fd_ >= 0) close(listen_fd_);
  epoll_fd_ = listen_fd_ = -1;
}

void EpollEchoServer::close_conn(std::size_t slot) noexcept {
  Conn& c = conns_[slot];
  if (c.fd < 0) return;
  close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
  c.pending = c.sent = 0;
  c.out_mode = false;
}

std::size_t EpollEchoServer::run_once(int wait_ms) noexcept {
  epoll_event events[256];
  const int n = epoll_wait(epoll_fd_, events, 256, wait_ms);
  for (int e = 0; e < n; ++e) {
    if (events[e].data.u64 == UINT64_MAX) {
      for (;;) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        std::uint32_t slot = 0;
        while (slot < opt_.max_connections && conns_[slot].fd >= 0) ++slot;
        if (slot == opt_.max_connections) {
          close(fd);
          continue;
        }
        conns_[slot].fd = fd;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = slot;
        epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
      }
      continue;
    }
    const std::size_t slot = events[e].data.u64;
    Conn& c = conns_[slot];
    if (c.fd < 0) continue;
    if (c.pending == 0 && (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
      const ssize_t r = read(c.fd, c.buf, opt_.output_bytes);
      if (r == 0 || (r < 0 && errno != EAGAIN)) {
        close_conn(slot);
        continue;
      }
      if (r > 0) c.pending = static_cast<std::uint32_t>(r);
    }
    while (c.sent < c.pending) {
      const ssize_t w = send(c.fd, c.buf + c.sent, c.pending - c.sent, MSG_NOSIGNAL);
      if (w <= 0) break;
      c.sent += static_cast<std::uint32_t>(w);
    }
    bool want_out = false;
    if (c.sent == c.pending) {
      c.sent = c.pending = 0;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      close_conn(slot);
      continue;
    } else {
      want_out = true;  // wait for room, stop reading meanwhile
    }
    if (want_out != c.out_mode) {  // epoll_ctl only when the interest changes
      epoll_event ev{};
      ev.data.u64 = slot;
      ev.events = want_out ? EPOLLOUT : EPOLLIN;
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
      c.out_mode = want_out;
    }
  }
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

void EpollEchoServer::run(const std::atomic<bool>& stop_flag) noexcept {
  // acquire: pairs with the release-store of the flag by whoever stops the loop.
  while (!stop_flag.load(std::memory_order_acquire)) run_once(50);
}

}  // namespace hypergate::uring
