#include "operators/core/key_by.hpp"

#include <gtest/gtest.h>

#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cell;
using testing::cfg;
using testing::list;
using testing::make_rows;
using testing::num;
using testing::operator_harness;
using testing::str;

class KeyBy : public ::testing::Test {
 protected:
  KeyBy() { register_key_by_operator(registry_); }

  operator_registry registry_;
  schema_ptr schema_ = make_schema({{"patient", type_id::string, true},
                                    {"code", type_id::int64, false},
                                    {"value", type_id::float64, true}});
  std::vector<std::vector<cell>> rows_ = {
      {std::string("p1"), int64_t{7}, 1.5},
      {std::string("p2"), int64_t{7}, 2.5},
      {std::monostate{}, int64_t{8}, std::monostate{}},
      {std::string("p1"), int64_t{8}, 4.0},
  };
  std::vector<int64_t> times_ = {10, 30, 20, 40};
};

TEST_F(KeyBy, SingleFieldHashMatchesEncodedKey) {
  operator_harness h(registry_, "key_by", cfg({{"key", str("patient")}}), {{schema_, {}}});
  ASSERT_EQ(h.plan().outputs.size(), 1u);
  EXPECT_EQ(h.plan().outputs[0].key_fields, (std::vector<int>{0}));
  EXPECT_EQ(*h.plan().outputs[0].schema, *schema_);
  h.push(0, make_rows(schema_, rows_, times_));
  ASSERT_EQ(h.batches().size(), 1u);
  const record_batch& out = *h.batches()[0];
  auto expected = make_rows(schema_, rows_, times_, {0});
  EXPECT_EQ(out.key_hash, expected->key_hash);
  EXPECT_EQ(h.rows(), (std::vector<std::string>{"p1|7|1.5@10", "p2|7|2.5@30", "null|8|null@20",
                                                "p1|8|4@40"}));
  // Equal keys hash alike, different keys (almost surely) not.
  EXPECT_EQ(out.key_hash[0], out.key_hash[3]);
  EXPECT_NE(out.key_hash[0], out.key_hash[1]);
  EXPECT_NE(out.key_hash[0], out.key_hash[2]);
  std::string p1 = "\1p1";
  p1.append(2, '\0');
  EXPECT_EQ(out.key_hash[0], hash_encoded_key(p1));
  EXPECT_EQ(out.key_hash[2], hash_encoded_key(std::string(1, '\0')));
}

TEST_F(KeyBy, CompositeKeyInConfigOrder) {
  operator_harness h(registry_, "key_by", cfg({{"key", list({"code", "patient"})}}),
                     {{schema_, {}}});
  EXPECT_EQ(h.plan().outputs[0].key_fields, (std::vector<int>{1, 0}));
  h.push(0, make_rows(schema_, rows_, times_));
  auto expected = make_rows(schema_, rows_, times_, {1, 0});
  ASSERT_EQ(h.batches().size(), 1u);
  EXPECT_EQ(h.batches()[0]->key_hash, expected->key_hash);
  EXPECT_NE(h.batches()[0]->key_hash[0], h.batches()[0]->key_hash[3]);  // p1/7 vs p1/8
}

TEST_F(KeyBy, StableAcrossBatchSplitsAndRekeying) {
  operator_harness h(registry_, "key_by", cfg({{"key", str("patient")}}), {{schema_, {}}});
  for (size_t i = 0; i < rows_.size(); ++i) {
    h.push(0, make_rows(schema_, {rows_[i]}, {times_[i]}));
  }
  // An already keyed input (on another field) is re-keyed.
  h.push(0, make_rows(schema_, rows_, times_, {1}));
  auto expected = make_rows(schema_, rows_, times_, {0});
  std::vector<uint64_t> hashes;
  for (const auto& b : h.batches())
    hashes.insert(hashes.end(), b->key_hash.begin(), b->key_hash.end());
  ASSERT_EQ(hashes.size(), 8u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(hashes[i], expected->key_hash[i]) << i;
    EXPECT_EQ(hashes[4 + i], expected->key_hash[i]) << i;
  }
}

TEST_F(KeyBy, EmptyBatchEmitsNothing) {
  operator_harness h(registry_, "key_by", cfg({{"key", str("code")}}), {{schema_, {}}});
  h.push(0, make_rows(schema_, {}, {}));
  h.finish();
  EXPECT_TRUE(h.batches().empty());
}

TEST_F(KeyBy, Traits) {
  const operator_factory* f = registry_.find("key_by");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->traits().keyed);
  EXPECT_FALSE(f->traits().stateful);
  EXPECT_EQ(f->traits().input_ports, (std::vector<std::string>{"in"}));
  EXPECT_EQ(f->traits().output_ports, (std::vector<std::string>{"out"}));
}

TEST_F(KeyBy, ConfigErrorsNameTheKey) {
  auto missing = operator_harness::try_plan(registry_, "key_by", cfg({}), {{schema_, {}}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().message, "config.key: required");

  auto unknown =
      operator_harness::try_plan(registry_, "key_by", cfg({{"key", str("mrn")}}), {{schema_, {}}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.err().code, errc::invalid_argument);
  EXPECT_EQ(unknown.err().message.rfind("config.key: field 'mrn' is not in the input", 0), 0u)
      << unknown.err().message;

  auto twice = operator_harness::try_plan(registry_, "key_by",
                                          cfg({{"key", list({"code", "code"})}}), {{schema_, {}}});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.err().message, "config.key: field 'code' listed twice");

  auto wrong_type =
      operator_harness::try_plan(registry_, "key_by", cfg({{"key", num(3)}}), {{schema_, {}}});
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.err().message.rfind("config.key: ", 0), 0u);

  auto typo = operator_harness::try_plan(
      registry_, "key_by", cfg({{"key", str("code")}, {"kye", str("x")}}), {{schema_, {}}});
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.err().message, "config.kye: unknown key");
}

}  // namespace
}  // namespace vigil
