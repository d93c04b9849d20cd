#include "metrics/http_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>

#include "metrics/registry.hpp"

namespace vigil::metrics {

namespace {

constexpr size_t max_request_bytes = 8192;
/// A connection is served within this time, reading and writing together, or dropped: a client
/// that trickles bytes cannot hold the only serving thread (and fail the health probes).
constexpr int connection_timeout_ms = 3000;

using clock = std::chrono::steady_clock;

/// Milliseconds left until `deadline`, at least 0.
int ms_left(clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

/// Writes `data` before `deadline`; gives up (silently: the client is gone or too slow) after.
void send_all(int fd, std::string_view data, clock::time_point deadline) {
  while (!data.empty()) {
    pollfd p{fd, POLLOUT, 0};
    const int left = ms_left(deadline);
    if (left == 0) return;
    const int r = ::poll(&p, 1, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

/// The deadline of the connection being served (one at a time, on the serving thread).
thread_local clock::time_point connection_deadline;

void respond(int fd, int code, std::string_view reason, std::string_view content_type,
             std::string_view body, bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) +
                    "\r\nContent-Type: " + std::string(content_type) +
                    "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n\r\n";
  if (!head) out += body;
  send_all(fd, out, connection_deadline);
}

void respond_text(int fd, int code, std::string_view reason, std::string_view body,
                  bool head = false) {
  respond(fd, code, reason, "text/plain; charset=utf-8", body, head);
}

/// Reads until the end of the request head; false on timeout, close, or more than the limit.
bool read_head(int fd, std::string& buf) {
  char chunk[2048];
  while (buf.find("\r\n\r\n") == std::string::npos && buf.find("\n\n") == std::string::npos) {
    if (buf.size() > max_request_bytes) return false;
    const int left = ms_left(connection_deadline);
    if (left == 0) return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf.append(chunk, static_cast<size_t>(n));
  }
  return buf.size() <= max_request_bytes;
}

}  // namespace

result<std::unique_ptr<http_server>> http_server::start(const host_port& at,
                                                        std::shared_ptr<readiness> ready) {
  std::unique_ptr<http_server> s(new http_server(std::move(ready)));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(at.port);
  const char* host = at.host.empty() ? nullptr : at.host.c_str();
  if (int rc = ::getaddrinfo(host, port.c_str(), &hints, &found); rc != 0) {
    return make_error(errc::io_error,
                      "metrics endpoint " + at.to_string() + ": " + ::gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    s->listen_fd_ = fd;
    break;
  }
  ::freeaddrinfo(found);
  if (s->listen_fd_ < 0) {
    return make_error(errc::io_error, "metrics endpoint " + at.to_string() + ": " + last_error);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  s->host_ = at.host.empty() ? "0.0.0.0" : at.host;
  if (::pipe2(s->wake_fd_, O_CLOEXEC) != 0) {
    return make_error(errc::io_error,
                      std::string("metrics endpoint: pipe: ") + std::strerror(errno));
  }
  registry();  // Registers vigil_build_info and the families before the first scrape.
  family();
  s->thread_ = std::thread([p = s.get()] { p->serve(); });
  return s;
}

http_server::~http_server() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  for (int fd : wake_fd_) {
    if (fd >= 0) ::close(fd);
  }
}

void http_server::stop() {
  if (!thread_.joinable()) return;
  char c = 1;
  while (::write(wake_fd_[1], &c, 1) < 0 && errno == EINTR) {
  }
  thread_.join();
}

void http_server::serve() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    int r = ::poll(p, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0) return;
    if ((p[0].revents & POLLIN) == 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors (EMFILE, ENFILE) or memory: the pending connection stays queued and
      // poll() would report it again at once; wait a little instead of spinning.
      if (errno != EINTR && errno != ECONNABORTED) ::poll(p + 1, 1, 50);
      continue;
    }
    connection_deadline = clock::now() + std::chrono::milliseconds(connection_timeout_ms);
    handle(fd);
    // Close gracefully: a reset (close with unread input) could destroy the reply in flight.
    ::shutdown(fd, SHUT_WR);
    char sink[1024];
    const auto drain_until =
        std::min(connection_deadline, clock::now() + std::chrono::milliseconds(200));
    while (ms_left(drain_until) > 0) {
      pollfd q{fd, POLLIN, 0};
      if (::poll(&q, 1, ms_left(drain_until)) <= 0) break;
      if (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) <= 0) break;
    }
    ::close(fd);
  }
}

void http_server::handle(int fd) {
  std::string req;
  if (!read_head(fd, req)) {
    if (req.size() > max_request_bytes) {
      respond_text(fd, 431, "Request Header Fields Too Large", "request too large\n");
    }
    return;
  }
  // Request line: METHOD SP TARGET SP HTTP/x.y
  std::string_view line(req);
  line = line.substr(0, line.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.substr(sp2 + 1).substr(0, 5) != "HTTP/") {
    respond_text(fd, 400, "Bad Request", "bad request\n");
    return;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  bool head = method == "HEAD";
  if (method != "GET" && !head) {
    respond_text(fd, 405, "Method Not Allowed", "only GET and HEAD\n");
    return;
  }
  if (target == "/metrics") {
    respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", serialize(), head);
  } else if (target == "/healthz") {
    respond_text(fd, 200, "OK", "ok\n", head);
  } else if (target == "/readyz") {
    std::string reason;
    if (ready_->ready(reason)) {
      respond_text(fd, 200, "OK", "ready\n", head);
    } else {
      respond_text(fd, 503, "Service Unavailable", "not ready: " + reason + "\n", head);
    }
  } else {
    respond_text(fd, 404, "Not Found", "not found\n", head);
  }
}

result<std::unique_ptr<http_server>> start_if_configured(const std::string& listen,
                                                         std::shared_ptr<readiness> ready,
                                                         std::string_view what) {
  if (listen.empty()) return std::unique_ptr<http_server>();
  auto at = parse_host_port(listen, what);
  if (!at) return at.err();
  return http_server::start(*at, std::move(ready));
}

}  // namespace vigil::metrics
