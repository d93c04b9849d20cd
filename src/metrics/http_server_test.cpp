#include "metrics/http_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "metrics/registry.hpp"

namespace vigil::metrics {
namespace {

/// Sends `request` to 127.0.0.1:`port` and returns everything the server answered.
std::string http_exchange(uint16_t port, const std::string& request, bool shut_write = false) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  size_t off = 0;
  while (off < request.size()) {
    ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  if (shut_write) ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string get(uint16_t port, const std::string& path) {
  return http_exchange(port, "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
}

class http_server_test : public ::testing::Test {
 protected:
  void SetUp() override {
    ready_ = std::make_shared<readiness>("job store not loaded");
    auto s = http_server::start({"127.0.0.1", 0}, ready_);
    ASSERT_TRUE(s.ok()) << s.err().message;
    server_ = std::move(*s);
    ASSERT_NE(server_->port(), 0);
  }

  std::shared_ptr<readiness> ready_;
  std::unique_ptr<http_server> server_;
};

TEST_F(http_server_test, serves_metrics_in_text_format) {
  series<prometheus::Counter> c(family().checkpoints_completed, {{"job", "http-test"}});
  c->Increment(3);
  std::string r = get(server_->port(), "/metrics");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r;
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
  EXPECT_NE(r.find("# TYPE vigil_checkpoints_completed_total counter"), std::string::npos) << r;
  EXPECT_NE(r.find("vigil_checkpoints_completed_total{job=\"http-test\"} 3"), std::string::npos)
      << r;
  EXPECT_NE(r.find("vigil_build_info{"), std::string::npos) << r;
  EXPECT_NE(r.find("version=\"" VIGIL_VERSION "\""), std::string::npos) << r;
  // A query string is ignored.
  EXPECT_EQ(get(server_->port(), "/metrics?x=1").rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(http_server_test, healthz_and_readyz) {
  std::string h = get(server_->port(), "/healthz");
  EXPECT_EQ(h.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << h;
  EXPECT_EQ(h.substr(h.size() - 3), "ok\n");
  std::string r = get(server_->port(), "/readyz");
  EXPECT_EQ(r.rfind("HTTP/1.1 503 ", 0), 0u) << r;
  EXPECT_NE(r.find("not ready: job store not loaded"), std::string::npos) << r;
  ready_->set_ready();
  r = get(server_->port(), "/readyz");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  ready_->set_not_ready("coordinator lost");
  r = get(server_->port(), "/readyz");
  EXPECT_EQ(r.rfind("HTTP/1.1 503 ", 0), 0u) << r;
  EXPECT_NE(r.find("coordinator lost"), std::string::npos) << r;
}

TEST_F(http_server_test, unknown_paths_and_methods) {
  EXPECT_EQ(get(server_->port(), "/").rfind("HTTP/1.1 404 ", 0), 0u);
  EXPECT_EQ(get(server_->port(), "/metricsx").rfind("HTTP/1.1 404 ", 0), 0u);
  std::string post = http_exchange(server_->port(), "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405 ", 0), 0u) << post;
  std::string head = http_exchange(server_->port(), "HEAD /healthz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 ", 0), 0u) << head;
  EXPECT_EQ(head.find("ok\n"), std::string::npos) << head;
}

TEST_F(http_server_test, survives_garbage) {
  EXPECT_EQ(http_exchange(server_->port(), "garbage\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
  EXPECT_EQ(http_exchange(server_->port(), "GET /metrics FTP/9\r\n\r\n").rfind("HTTP/1.1 400 ", 0),
            0u);
  std::string binary(300, '\0');
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 37);
  EXPECT_EQ(http_exchange(server_->port(), binary, true), "");  // Closed without an answer.
  std::string huge = "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
  EXPECT_EQ(http_exchange(server_->port(), huge).rfind("HTTP/1.1 431 ", 0), 0u);
  EXPECT_EQ(http_exchange(server_->port(), "", true), "");
  // Still serving.
  EXPECT_EQ(get(server_->port(), "/healthz").rfind("HTTP/1.1 200 ", 0), 0u);
}

TEST_F(http_server_test, a_stalled_client_is_dropped_after_the_connection_timeout) {
  // A client that sends half a request and then nothing holds the serving thread at most the
  // connection timeout (3 s); the next request is answered after it.
  int stalled = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(stalled, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(stalled, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string half = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(::send(stalled, half.data(), half.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(half.size()));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(get(server_->port(), "/healthz").rfind("HTTP/1.1 200 ", 0), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  char buf[16];
  EXPECT_EQ(::recv(stalled, buf, sizeof buf, 0), 0);  // Closed by the server, unanswered.
  ::close(stalled);
}

TEST(http_server, refuses_a_taken_port_and_bad_flag) {
  auto ready = std::make_shared<readiness>();
  auto first = http_server::start({"127.0.0.1", 0}, ready);
  ASSERT_TRUE(first.ok());
  auto second = http_server::start({"127.0.0.1", (*first)->port()}, ready);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.err().code, errc::io_error);
  auto bad = start_if_configured("nonsense", ready);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("--metrics-listen"), std::string::npos) << bad.err().message;
  auto off = start_if_configured("", ready);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->get(), nullptr);
}

}  // namespace
}  // namespace vigil::metrics
