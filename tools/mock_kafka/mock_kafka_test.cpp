#include "tools/mock_kafka/mock_kafka.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace vigil::tools {
namespace {

TEST(MockKafkaToolTest, ParsesTopicWithDefaultReplication) {
  auto topic = parse_mock_topic("vitals.raw-1:3", 3);
  ASSERT_TRUE(topic.ok()) << topic.err().message;
  EXPECT_EQ(topic->name, "vitals.raw-1");
  EXPECT_EQ(topic->partitions, 3);
  EXPECT_EQ(topic->replication_factor, 3);

  auto single = parse_mock_topic("t:8", 1);
  ASSERT_TRUE(single.ok()) << single.err().message;
  EXPECT_EQ(single->replication_factor, 1);
}

TEST(MockKafkaToolTest, ParsesExplicitReplication) {
  auto topic = parse_mock_topic("progress:1:2", 3);
  ASSERT_TRUE(topic.ok()) << topic.err().message;
  EXPECT_EQ(topic->partitions, 1);
  EXPECT_EQ(topic->replication_factor, 2);
}

TEST(MockKafkaToolTest, RejectsBadTopicSpecs) {
  for (const char* spec : {"novalue", ":3", "a b:3", "t:0", "t:-1", "t:x", "t:3x", "t:", "t:99999",
                           "t:3:0", "t:3:4", "t:3:", ".:1", "..:1", "t:1:1:1"}) {
    auto topic = parse_mock_topic(spec, 3);
    ASSERT_FALSE(topic.ok()) << spec;
    EXPECT_EQ(topic.err().code, errc::invalid_argument) << spec;
    EXPECT_NE(topic.err().message.find(spec), std::string::npos) << topic.err().message;
  }
  EXPECT_FALSE(parse_mock_topic(std::string(250, 'a') + ":1", 3).ok());
  EXPECT_TRUE(parse_mock_topic(std::string(249, 'a') + ":1", 3).ok());
}

TEST(MockKafkaToolTest, StartsBrokersAndReportsTheirBootstrapList) {
  auto cluster = mock_kafka_cluster::start(3, {{"a", 3, 3}, {"b", 1, 1}});
  ASSERT_TRUE(cluster.ok()) << cluster.err().message;
  const std::string& bootstrap = (*cluster)->bootstrap();
  EXPECT_EQ(std::count(bootstrap.begin(), bootstrap.end(), ','), 2) << bootstrap;
  EXPECT_EQ(bootstrap.rfind("127.0.0.1:", 0), 0u) << bootstrap;
}

TEST(MockKafkaToolTest, RefusesBadClusterShapes) {
  for (int brokers : {0, -1, max_mock_brokers + 1}) {
    auto cluster = mock_kafka_cluster::start(brokers, {});
    ASSERT_FALSE(cluster.ok()) << brokers;
    EXPECT_EQ(cluster.err().code, errc::invalid_argument);
  }
  auto twice = mock_kafka_cluster::start(1, {{"a", 1, 1}, {"a", 2, 1}});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.err().message.find("twice"), std::string::npos) << twice.err().message;
  auto too_many_replicas = mock_kafka_cluster::start(2, {{"a", 1, 3}});
  ASSERT_FALSE(too_many_replicas.ok());
  EXPECT_EQ(too_many_replicas.err().code, errc::invalid_argument);
}

}  // namespace
}  // namespace vigil::tools
