// Registers the `nats` sink and source: the factories read and check their keys (the schema is in
// nats_sink.hpp and nats_source.hpp) and connect to nothing; connections are made by start().
#include <memory>
#include <string>

#include "hypergate/adapter/registry.hpp"
#include "nats/nats_sink.hpp"
#include "nats/nats_source.hpp"
#include "nats/subject_template.hpp"

namespace hypergate::nats {
namespace {

Error bad_config(std::string_view kind) {
  return Error{Status::InvalidArgument, "invalid " + std::string(kind) + " configuration (see the errors above)"};
}

/// nats://host:port (or tls://); the scheme and a port are required, so a typo is caught here.
bool valid_server_url(const std::string& url) {
  std::string_view rest(url);
  if (rest.starts_with("nats://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("tls://")) {
    rest.remove_prefix(6);
  } else {
    return false;
  }
  const std::size_t at = rest.rfind('@');  // user:password@ is allowed
  if (at != std::string_view::npos) rest.remove_prefix(at + 1);
  return config::parse_endpoint(rest).has_value() && !rest.starts_with(':');
}

/// The connection keys the sink and the source share. False when one of them was wrong.
bool read_client(config::Section& section, const adapter::Context& ctx, NatsClientOptions& o) {
  bool ok = true;
  o.name = ctx.name;
  if (section.has("servers")) {
    o.servers = section.string_list("servers");
    if (o.servers.empty()) {
      section.error("servers", "at least one server URL, e.g. [\"nats://127.0.0.1:4222\"]");
      ok = false;
    }
    for (const auto& url : o.servers) {
      if (!valid_server_url(url)) {
        section.error("servers", "'" + url + "' is not a NATS server URL (nats://host:port)");
        ok = false;
      }
    }
  }
  o.connect_timeout_ns = section.duration_ns("connect_timeout", o.connect_timeout_ns);
  o.reconnect_wait_ns = section.duration_ns("reconnect_wait", o.reconnect_wait_ns);
  o.reconnect_wait_max_ns = section.duration_ns("reconnect_wait_max", o.reconnect_wait_max_ns);
  if (o.reconnect_wait_max_ns < o.reconnect_wait_ns) {
    section.error("reconnect_wait_max", "must be at least reconnect_wait");
    ok = false;
  }
  o.max_reconnect = static_cast<int>(section.integer("max_reconnect", -1, -1, 1'000'000));
  return ok;
}

Result<std::unique_ptr<adapter::Sink>> make_sink(config::Section& section, const adapter::Context& ctx) {
  NatsSinkOptions o;
  bool ok = read_client(section, ctx, o.client);
  const std::string subject = section.string("subject", "md.<SYMBOL>");
  std::string why;
  auto tmpl = SubjectTemplate::parse(subject, &why);
  if (!tmpl) {
    section.error("subject", "bad subject template '" + subject + "': " + why);
    ok = false;
  }
  const std::string publish = section.choice("publish", "updates", {"updates", "itch", "all"});
  o.publish = publish == "itch"  ? NatsSinkOptions::Publish::Itch
              : publish == "all" ? NatsSinkOptions::Publish::All
                                 : NatsSinkOptions::Publish::Updates;
  o.payload = section.choice("payload", "binary", {"binary", "json"}) == "json" ? NatsSinkOptions::Payload::Json
                                                                               : NatsSinkOptions::Payload::Binary;
  o.client.send_asap = section.choice("flush", "batched", {"batched", "asap"}) == "asap";
  o.client.reconnect_buffer_bytes = section.integer("reconnect_buffer", 8 << 20, 0, 1ll << 30);
  o.drain_timeout_ns = section.duration_ns("drain_timeout", o.drain_timeout_ns);
  o.jetstream = section.boolean("jetstream", false);
  o.stream = section.string("stream", "MD");
  o.replicas = static_cast<int>(section.integer("replicas", 1, 1, 5));
  o.max_pending = section.integer("max_pending", 65536, 1, 1 << 24);
  o.ack_wait_ns = section.duration_ns("ack_wait", o.ack_wait_ns);
  if (!o.jetstream) {
    for (std::string_view key : {"stream", "replicas", "max_pending", "ack_wait"}) {
      if (section.has(key)) {
        section.error(key, "'" + std::string(key) + "' applies to jetstream = true only");
        ok = false;
      }
    }
  }
  if (o.stream.empty()) {
    section.error("stream", "a stream name must not be empty");
    ok = false;
  }
  if (!ok) return bad_config("nats sink");
  o.subject = std::move(*tmpl);
  return std::unique_ptr<adapter::Sink>(std::make_unique<NatsSink>(std::move(o)));
}

Result<std::unique_ptr<adapter::Source>> make_source(config::Section& section, const adapter::Context& ctx) {
  NatsSourceOptions o;
  o.source_id = ctx.id;
  bool ok = read_client(section, ctx, o.client);
  o.subjects = section.string_list("subjects");
  if (o.subjects.empty()) {
    section.error("subjects", "at least one subject to subscribe to, e.g. [\"md.*\"]");
    ok = false;
  }
  for (const auto& s : o.subjects) {
    if (s.empty() || s.find_first_of(" \t\r\n") != std::string::npos || s.front() == '.' || s.back() == '.' ||
        s.find("..") != std::string::npos) {
      section.error("subjects", "'" + s + "' is not a NATS subject (tokens separated by '.', no whitespace)");
      ok = false;
    }
  }
  o.queue = section.string("queue", "");
  o.queue_capacity = static_cast<std::size_t>(section.integer("queue_capacity", 8192, 16, 1 << 22));
  // At most 2^20: libnats derives a subscription's pending-bytes limit as messages * 1024 in an int, so
  // from 2^21 on it overflows and every subscribe fails ("Invalid bytes limit").
  o.client.max_pending_messages = static_cast<int>(section.integer("max_pending_messages", 65536, 1, 1 << 20));
  o.jetstream = section.boolean("jetstream", false);
  o.stream = section.string("stream", "MD");
  const std::string deliver = section.choice("deliver", "new", {"new", "all", "last"});
  o.deliver = deliver == "all"    ? NatsSourceOptions::Deliver::All
              : deliver == "last" ? NatsSourceOptions::Deliver::Last
                                  : NatsSourceOptions::Deliver::New;
  if (!o.jetstream) {
    for (std::string_view key : {"stream", "deliver"}) {
      if (section.has(key)) {
        section.error(key, "'" + std::string(key) + "' applies to jetstream = true only");
        ok = false;
      }
    }
  } else if (!o.queue.empty()) {
    section.error("queue", "a JetStream ordered consumer cannot be a queue group member");
    ok = false;
  }
  if (!ok) return bad_config("nats source");
  return std::unique_ptr<adapter::Source>(std::make_unique<NatsSource>(std::move(o)));
}

// Static registration: this library is linked whole into `hypergate` and the tests.
const bool registered = [] {
  auto& registry = adapter::Registry::global();
  const bool sink = registry
                        .add_sink("nats",
                                  "publishes to NATS subjects from a template (md.<SYMBOL>), binary TobUpdate or JSON, "
                                  "optional JetStream with acks (servers, subject, publish, payload, flush, "
                                  "reconnect_buffer, reconnect_wait, reconnect_wait_max, max_reconnect, "
                                  "connect_timeout, drain_timeout, jetstream, stream, replicas, max_pending, ack_wait)",
                                  make_sink)
                        .ok();
  const bool source = registry
                          .add_source("nats",
                                      "subscribes to NATS subjects (wildcards, queue group, optional JetStream "
                                      "replay), key = the subject's last token (servers, subjects, queue, "
                                      "queue_capacity, max_pending_messages, jetstream, stream, deliver, "
                                      "reconnect_wait, reconnect_wait_max, max_reconnect, connect_timeout)",
                                      make_source)
                          .ok();
  return sink && source;
}();

}  // namespace
}  // namespace hypergate::nats
