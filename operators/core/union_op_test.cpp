#include "operators/core/union_op.hpp"

#include <gtest/gtest.h>

#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cfg;
using testing::make_rows;
using testing::operator_harness;
using testing::str;

class Union : public ::testing::Test {
 protected:
  Union() { register_union_operator(registry_); }

  operator_registry registry_;
  schema_ptr schema_ = make_schema({{"id", type_id::string, false}, {"v", type_id::int64, true}});
};

TEST_F(Union, PassesBatchesThroughInArrivalOrder) {
  operator_harness h(registry_, "union", cfg({}), {{schema_, {}}, {schema_, {}}, {schema_, {}}});
  EXPECT_EQ(*h.plan().outputs[0].schema, *schema_);
  EXPECT_FALSE(h.plan().outputs[0].keyed());
  const std::vector<batch_ptr> in = {
      make_rows(schema_, {{std::string("a"), int64_t{1}}}, {5}),
      make_rows(schema_, {{std::string("b"), std::monostate{}}, {std::string("c"), int64_t{3}}},
                {2, 9}),
      make_rows(schema_, {}, {}), make_rows(schema_, {{std::string("d"), int64_t{4}}}, {1})};
  for (const batch_ptr& b : in) h.push(0, b);
  h.finish();
  EXPECT_EQ(h.rows(), (std::vector<std::string>{"a|1@5", "b|null@2", "c|3@9", "d|4@1"}));
  ASSERT_EQ(h.batches().size(), 3u);
  // Batches are immutable: they pass on as they are, not copied.
  EXPECT_EQ(h.batches()[0], in[0]);
  EXPECT_EQ(h.batches()[1], in[1]);
  EXPECT_EQ(h.batches()[2], in[3]);
}

TEST_F(Union, KeyedWhenAllInputsShareTheKey) {
  operator_harness h(registry_, "union", cfg({}), {{schema_, {0}}, {schema_, {0}}});
  EXPECT_EQ(h.plan().outputs[0].key_fields, (std::vector<int>{0}));
  auto in = make_rows(schema_, {{std::string("a"), int64_t{1}}, {std::string("b"), int64_t{2}}},
                      {1, 2}, {0});
  h.push(0, in);
  ASSERT_EQ(h.batches().size(), 1u);
  EXPECT_EQ(h.batches()[0], in) << "passed on as it is";
}

TEST_F(Union, UnkeyedWhenKeysDiffer) {
  operator_harness h(registry_, "union", cfg({}), {{schema_, {0}}, {schema_, {1}}});
  EXPECT_FALSE(h.plan().outputs[0].keyed());
  h.push(0, make_rows(schema_, {{std::string("a"), int64_t{1}}}, {1}, {0}));
  ASSERT_EQ(h.batches().size(), 1u);
  EXPECT_FALSE(h.batches()[0]->keyed()) << "a copy without the key hashes";
  EXPECT_EQ(h.rows(), (std::vector<std::string>{"a|1@1"}));

  auto mixed =
      operator_harness::try_plan(registry_, "union", cfg({}), {{schema_, {0}}, {schema_, {}}});
  ASSERT_TRUE(mixed.ok());
  EXPECT_FALSE((*mixed)->outputs[0].keyed());
}

TEST_F(Union, SingleInput) {
  operator_harness h(registry_, "union", cfg({}), {{schema_, {1}}});
  EXPECT_EQ(h.plan().outputs[0].key_fields, (std::vector<int>{1}));
}

TEST_F(Union, SchemaMismatchNamesFieldAndInput) {
  auto other_type = make_schema({{"id", type_id::string, false}, {"v", type_id::float64, true}});
  auto r = operator_harness::try_plan(registry_, "union", cfg({}),
                                      {{schema_, {}}, {schema_, {}}, {other_type, {}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_graph);
  EXPECT_EQ(r.err().message.rfind("union input 2 does not match input 0 at field 1: 'v:double?' vs "
                                  "'v:int64?'",
                                  0),
            0u)
      << r.err().message;

  auto not_null = make_schema({{"id", type_id::string, false}, {"v", type_id::int64, false}});
  r = operator_harness::try_plan(registry_, "union", cfg({}), {{schema_, {}}, {not_null, {}}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("input 1"), std::string::npos) << r.err().message;
  EXPECT_NE(r.err().message.find("'v:int64' vs 'v:int64?'"), std::string::npos) << r.err().message;

  auto renamed = make_schema({{"id", type_id::string, false}, {"w", type_id::int64, true}});
  r = operator_harness::try_plan(registry_, "union", cfg({}), {{schema_, {}}, {renamed, {}}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("'w:int64?' vs 'v:int64?'"), std::string::npos) << r.err().message;

  auto shorter = make_schema({{"id", type_id::string, false}});
  r = operator_harness::try_plan(registry_, "union", cfg({}), {{schema_, {}}, {shorter, {}}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("at field 1: missing vs 'v:int64?'"), std::string::npos)
      << r.err().message;
}

TEST_F(Union, RefusesConfigAndNoInputs) {
  auto r =
      operator_harness::try_plan(registry_, "union", cfg({{"mode", str("all")}}), {{schema_, {}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message, "config.mode: unknown key");
  r = operator_harness::try_plan(registry_, "union", cfg({}), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_graph);
}

TEST_F(Union, Traits) {
  const operator_factory* f = registry_.find("union");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->traits().variadic_input);
  EXPECT_FALSE(f->traits().keyed);
  EXPECT_FALSE(f->traits().stateful);
}

}  // namespace
}  // namespace vigil
