// NatsSource (adapters/nats): the stream sequence read from a JetStream reply subject, which the source
// uses to resume a consumer after a failed consumer request and to drop redeliveries.
#include <gtest/gtest.h>

#include <string>

#include "nats/nats_source.hpp"

namespace {

// Suite names start with "nats" so that `ctest -R nats` selects them.
using hypergate::nats::jetstream_stream_sequence;

TEST(natsSource, StreamSequenceFromTheNineTokenReplySubject) {
  // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>
  EXPECT_EQ(jetstream_stream_sequence("$JS.ACK.JS.ordered_x.1.4711.12.1733212800000000000.3"), 4711u);
  EXPECT_EQ(jetstream_stream_sequence("$JS.ACK.S.C.3.1.1.1.0"), 1u);
  EXPECT_EQ(jetstream_stream_sequence("$JS.ACK.S.C.1.9999999999999999999.1.1.0"), 9999999999999999999ull);
}

TEST(natsSource, StreamSequenceFromTheDomainForms) {
  // $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>
  EXPECT_EQ(jetstream_stream_sequence("$JS.ACK.hub.ACCHASH.JS.C.1.99.5.1733212800000000000.0"), 99u);
  // ... and a trailing random token (12 tokens)
  EXPECT_EQ(jetstream_stream_sequence("$JS.ACK.hub.ACCHASH.JS.C.1.100.5.1733212800000000000.0.r4nd"), 100u);
}

TEST(natsSource, AnythingElseIsZero) {
  for (const char* bad : {"", "_INBOX.abc", "$JS.ACK", "$JS.ACK.", "$JS.ACK.S.C.1.2.3.4",        // 8 tokens
                          "$JS.ACK.S.C.1.2.3.4.5.6",                                             // 10 tokens
                          "$JS.ACK.a.b.S.C.1.2.3.4.5.6.7",                                       // 13 tokens
                          "$JS.ACK.S.C.1.x2.3.4.5", "$JS.ACK.S.C.1..3.4.5", "$JS.ACK.S.C.1.-2.3.4.5",
                          "$JS.ACK.S.C.1.12345678901234567890.3.4.5",                            // 20 digits
                          "$JS.NAK.S.C.1.2.3.4.5", "js.ACK.S.C.1.2.3.4.5"}) {
    EXPECT_EQ(jetstream_stream_sequence(bad), 0u) << bad;
  }
  const std::string many = "$JS.ACK" + std::string(200, '.');
  EXPECT_EQ(jetstream_stream_sequence(many), 0u);
}

}  // namespace
