#include "nats/nats_client.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

namespace hypergate::nats {
namespace {

std::int64_t to_ms(std::uint64_t ns) { return static_cast<std::int64_t>(std::max<std::uint64_t>(ns / 1'000'000, 1)); }

Error nats_failure(const std::string& what, natsStatus s) {
  return Error{Status::IoError, what + ": " + nats_error_text(static_cast<int>(s))};
}

}  // namespace

std::string nats_error_text(int status) {
  std::string text = natsStatus_GetText(static_cast<natsStatus>(status));
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  if (detail != nullptr && *detail != '\0' && text.find(detail) == std::string::npos) {
    text += " (";
    text += detail;
    text += ")";
  }
  return text;
}

NatsClient::NatsClient(NatsClientOptions options) : opt_(std::move(options)) {}

NatsClient::~NatsClient() { close(); }

Result<void> NatsClient::connect() {
  // relaxed: no callback of the new connection exists yet (natsConnection_Connect publishes these).
  closing_.store(false, std::memory_order_relaxed);
  closed_cb_done_.store(false, std::memory_order_relaxed);
  natsStatus s = natsOptions_Create(&opts_);
  if (s != NATS_OK) return nats_failure("natsOptions_Create", s);
  std::vector<const char*> urls;
  urls.reserve(opt_.servers.size());
  for (const auto& u : opt_.servers) urls.push_back(u.c_str());
  s = natsOptions_SetServers(opts_, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetNoRandomize(opts_, true);
  if (s == NATS_OK) s = natsOptions_SetName(opts_, ("hypergate " + opt_.role + " " + opt_.name).c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts_, to_ms(opt_.connect_timeout_ns));
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts_, opt_.max_reconnect);
  if (s == NATS_OK) s = natsOptions_SetCustomReconnectDelay(opts_, &NatsClient::on_reconnect_delay, this);
  if (s == NATS_OK) s = natsOptions_SetReconnectJitter(opts_, 10, 100);
  if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts_, static_cast<int>(opt_.reconnect_buffer_bytes));
  if (s == NATS_OK) s = natsOptions_SetSendAsap(opts_, opt_.send_asap);
  if (s == NATS_OK) s = natsOptions_SetMaxPendingMsgs(opts_, opt_.max_pending_messages);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts_, &NatsClient::on_disconnected, this);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts_, &NatsClient::on_reconnected, this);
  if (s == NATS_OK) s = natsOptions_SetClosedCB(opts_, &NatsClient::on_closed, this);
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts_, &NatsClient::on_async_error, this);
  // No server up yet is not a failure: libnats retries in its reconnect thread and calls on_connected.
  if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(opts_, true, &NatsClient::on_connected, this);
  if (s != NATS_OK) return nats_failure("nats options for " + opt_.role + " '" + opt_.name + "'", s);

  s = natsConnection_Connect(&nc_, opts_);
  if (s == NATS_OK) {
    bump(connects_);
    connected_.store(true, std::memory_order_release);  // pairs with the acquire in connected()
    std::fprintf(stderr, "nats %s '%s': connected to %s\n", opt_.role.c_str(), opt_.name.c_str(),
                 connected_url().c_str());
    return {};
  }
  if (s == NATS_NOT_YET_CONNECTED) {
    std::string list;
    for (const auto& u : opt_.servers) list += (list.empty() ? "" : ", ") + u;
    std::fprintf(stderr,
                 "nats %s '%s': no server reachable (%s): retrying in the background with backoff; messages "
                 "are buffered up to reconnect_buffer, then pushed back to the valve lane\n",
                 opt_.role.c_str(), opt_.name.c_str(), list.c_str());
    return {};
  }
  return nats_failure("nats connect for " + opt_.role + " '" + opt_.name + "'", s);
}

Result<void> NatsClient::enable_jetstream(jsOptions& options) {
  if (nc_ == nullptr) return Error{Status::InvalidArgument, "nats: JetStream needs a connection"};
  const natsStatus s = natsConnection_JetStream(&js_, nc_, &options);
  if (s != NATS_OK) return nats_failure("natsConnection_JetStream", s);
  return {};
}

void NatsClient::close() noexcept {
  if (js_ != nullptr) {
    jsCtx_Destroy(js_);
    js_ = nullptr;
  }
  if (nc_ != nullptr) {
    closing_.store(true, std::memory_order_release);  // pairs with the acquire in on_disconnected()
    natsConnection_Close(nc_);
    // libnats posts on_closed (after any other callback of this connection) to its asynchronous-callback
    // thread and returns without waiting for it: wait here, or the callback may touch a destroyed client
    // (ThreadSanitizer caught that in tests/stress/nats_test.cpp). Cold path, usually a few microseconds.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(kClosedCallbackWaitNs);
    // acquire: pairs with the release store in on_closed(), its last access to this object.
    while (!closed_cb_done_.load(std::memory_order_acquire)) {
      if (std::chrono::steady_clock::now() >= deadline) {
        std::fprintf(stderr, "nats %s '%s': libnats did not report the connection closed within %llu ms\n",
                     opt_.role.c_str(), opt_.name.c_str(),
                     static_cast<unsigned long long>(kClosedCallbackWaitNs / 1'000'000));
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    natsConnection_Destroy(nc_);
    nc_ = nullptr;
  }
  if (opts_ != nullptr) {
    natsOptions_Destroy(opts_);
    opts_ = nullptr;
  }
  connected_.store(false, std::memory_order_release);  // pairs with the acquire in connected()
}

std::string NatsClient::connected_url() const {
  if (nc_ == nullptr) return "";
  char buf[256] = {};
  if (natsConnection_GetConnectedUrl(nc_, buf, sizeof buf) != NATS_OK) return "";
  return buf;
}

NatsClientCounters NatsClient::counters() const noexcept {
  NatsClientCounters c;
  // relaxed: monotonic counters (see bump())
  c.connects = connects_.load(std::memory_order_relaxed);
  c.disconnects = disconnects_.load(std::memory_order_relaxed);
  c.reconnects = reconnects_.load(std::memory_order_relaxed);
  c.reconnect_attempts = reconnect_attempts_.load(std::memory_order_relaxed);
  c.async_errors = async_errors_.load(std::memory_order_relaxed);
  c.slow_consumer = slow_consumer_.load(std::memory_order_relaxed);
  return c;
}

void NatsClient::on_connected(natsConnection* nc, void* self) noexcept {
  auto* c = static_cast<NatsClient*>(self);
  bump(c->connects_);
  c->connected_.store(true, std::memory_order_release);  // pairs with the acquire in connected()
  char url[256] = {};
  (void)natsConnection_GetConnectedUrl(nc, url, sizeof url);
  std::fprintf(stderr, "nats %s '%s': connected to %s\n", c->opt_.role.c_str(), c->opt_.name.c_str(), url);
  c->waiting_logged_.store(false, std::memory_order_relaxed);  // relaxed: only gates a log line
}

void NatsClient::on_disconnected(natsConnection*, void* self) noexcept {
  auto* c = static_cast<NatsClient*>(self);
  if (!c->connected_.exchange(false, std::memory_order_acq_rel)) return;  // the initial retries also call it
  if (c->closing_.load(std::memory_order_acquire)) return;                // pairs with the store in close()
  bump(c->disconnects_);
  std::fprintf(stderr, "nats %s '%s': disconnected, reconnecting\n", c->opt_.role.c_str(), c->opt_.name.c_str());
}

void NatsClient::on_reconnected(natsConnection* nc, void* self) noexcept {
  auto* c = static_cast<NatsClient*>(self);
  bump(c->reconnects_);
  bump(c->connects_);
  c->connected_.store(true, std::memory_order_release);  // pairs with the acquire in connected()
  c->reconnected_flag_.store(true, std::memory_order_release);  // pairs with take_reconnected()
  char url[256] = {};
  (void)natsConnection_GetConnectedUrl(nc, url, sizeof url);
  std::fprintf(stderr, "nats %s '%s': reconnected to %s\n", c->opt_.role.c_str(), c->opt_.name.c_str(), url);
  c->waiting_logged_.store(false, std::memory_order_relaxed);  // relaxed: only gates a log line
}

void NatsClient::on_closed(natsConnection*, void* self) noexcept {
  auto* c = static_cast<NatsClient*>(self);
  c->connected_.store(false, std::memory_order_release);  // pairs with the acquire in connected()
  // release: pairs with the acquire load in close(), which may destroy *c right after; the last access.
  c->closed_cb_done_.store(true, std::memory_order_release);
}

std::int64_t NatsClient::on_reconnect_delay(natsConnection*, int attempts, void* self) noexcept {
  // libnats calls this after each full pass over the server list; `attempts` counts passes (from 1).
  auto* c = static_cast<NatsClient*>(self);
  bump(c->reconnect_attempts_);
  const int doublings = std::min(attempts > 0 ? attempts - 1 : 0, 30);
  const std::uint64_t wait = std::min(c->opt_.reconnect_wait_ns << doublings, c->opt_.reconnect_wait_max_ns);
  if (!c->waiting_logged_.exchange(true, std::memory_order_relaxed)) {  // relaxed: only gates a log line
    std::fprintf(stderr, "nats %s '%s': no server answered, reconnect attempts continue (backoff up to %lld ms)\n",
                 c->opt_.role.c_str(), c->opt_.name.c_str(),
                 static_cast<long long>(c->opt_.reconnect_wait_max_ns / 1'000'000));
  }
  return to_ms(wait);
}

void NatsClient::on_async_error(natsConnection*, natsSubscription*, natsStatus err, void* self) noexcept {
  auto* c = static_cast<NatsClient*>(self);
  bump(c->async_errors_);
  if (err == NATS_SLOW_CONSUMER) bump(c->slow_consumer_);
}

}  // namespace hypergate::nats
