// vigil-mock-kafka: a Kafka cluster for integration tests and the demo, backed by librdkafka's
// built-in mock cluster (real Kafka protocol on 127.0.0.1, state in memory).
//
//   vigil-mock-kafka [--brokers 3] [--topic NAME:PARTITIONS[:REPLICATION]]... [--listen 127.0.0.1]
//
// Once the brokers listen and the topics exist it prints exactly one line on stdout,
//   vigil-mock-kafka: bootstrap 127.0.0.1:PORT,127.0.0.1:PORT,...
// and serves until SIGINT or SIGTERM (exit 0). A bad flag exits 2, a librdkafka failure 1.
//
// The mock cluster does not implement transaction isolation (DESIGN.md, "Exactly-once sinks"):
// transactional calls succeed, but read_committed consumers also see aborted records, offsets
// sent in a transaction are dropped, and init_transactions fences no other producer.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "common/signals.hpp"
#include "tools/mock_kafka/mock_kafka.hpp"

int main(int argc, char** argv) {
  CLI::App app{"vigil-mock-kafka: librdkafka's mock Kafka cluster on loopback, for tests"};
  app.footer(
      "Prints 'vigil-mock-kafka: bootstrap <host:port,...>' once ready, then serves until "
      "SIGINT/SIGTERM.\n"
      "Limit: the mock cluster does not implement transaction isolation. Transactional calls "
      "succeed, but read_committed consumers also see aborted records, offsets sent in a "
      "transaction are dropped, and init_transactions fences no other producer.");
  int brokers = 3;
  std::vector<std::string> topic_specs;
  std::string listen = "127.0.0.1";
  app.add_option("--brokers", brokers, "Number of brokers")
      ->capture_default_str()
      ->check(CLI::Range(1, vigil::tools::max_mock_brokers));
  app.add_option("--topic", topic_specs,
                 "Create topic NAME:PARTITIONS[:REPLICATION] (replication 1..brokers, default "
                 "min(3, brokers)); repeatable");
  app.add_option("--listen", listen,
                 "Address the brokers listen on (the mock supports only 127.0.0.1; ports are "
                 "ephemeral)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; a bad flag is a refusal: exit 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (listen != "127.0.0.1") {
    std::fprintf(stderr,
                 "vigil-mock-kafka: --listen '%s': librdkafka's mock cluster listens only on "
                 "127.0.0.1\n",
                 listen.c_str());
    return 2;
  }
  std::vector<vigil::tools::mock_topic> topics;
  for (const auto& spec : topic_specs) {
    auto topic = vigil::tools::parse_mock_topic(spec, brokers);
    if (!topic) {
      std::fprintf(stderr, "vigil-mock-kafka: %s\n", topic.err().message.c_str());
      return 2;
    }
    topics.push_back(std::move(*topic));
  }

  // Before librdkafka starts its threads, so that only sigwait() below receives the signals.
  sigset_t signals = vigil::block_stop_signals();
  auto cluster = vigil::tools::mock_kafka_cluster::start(brokers, topics);
  if (!cluster) {
    std::fprintf(stderr, "vigil-mock-kafka: %s\n", cluster.err().message.c_str());
    return cluster.err().code == vigil::errc::invalid_argument ? 2 : 1;
  }
  std::printf("vigil-mock-kafka: bootstrap %s\n", (*cluster)->bootstrap().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "vigil-mock-kafka: signal %d, shutting down\n", sig);
  return 0;
}
