#include "common/host_port.hpp"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(HostPort, ParsesHostAndPort) {
  auto hp = parse_host_port("127.0.0.1:7071", "--coordinator");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 7071);
  EXPECT_EQ(hp->to_string(), "127.0.0.1:7071");
  auto any = parse_host_port("vigil-0.vigil.svc:0", "--listen");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->host, "vigil-0.vigil.svc");
  EXPECT_EQ(any->port, 0);
}

TEST(HostPort, RefusesMalformedEndpointsNamingTheFlag) {
  for (const char* text : {"localhost", ":7071", "host:", "host:x", "host:70000", "host:-1"}) {
    auto hp = parse_host_port(text, "--coordinator");
    ASSERT_FALSE(hp.ok()) << text;
    EXPECT_EQ(hp.err().code, errc::invalid_argument);
    EXPECT_NE(hp.err().message.find("--coordinator"), std::string::npos) << hp.err().message;
    EXPECT_NE(hp.err().message.find(text), std::string::npos) << hp.err().message;
  }
}

}  // namespace
}  // namespace vigil
