#include "operators/core/expr/expr.hpp"

#include "operators/core/expr/parser.hpp"
#include "operators/core/expr/type_checker.hpp"

namespace vigil::expr {

result<std::shared_ptr<const expression>> expression::compile(std::string_view text,
                                                              const schema& input,
                                                              std::optional<type_id> expected) {
  auto parsed = parse(text);
  if (!parsed) return parsed.err();
  node_ptr root = std::move(*parsed);
  auto slots = check(root, input);
  if (!slots) return slots.err();
  if (root->untyped_null) {
    if (!expected) {
      return make_error(errc::invalid_argument,
                        "cannot infer the type of null (write e.g. cast(null as int64)) at "
                        "position " +
                            std::to_string(root->pos));
    }
    settle_null(*root, *expected);
  }
  if (expected && root->type != *expected) {
    return make_error(errc::invalid_argument, "expression must be " +
                                                  std::string(to_string(*expected)) + ", got " +
                                                  std::string(to_string(root->type)));
  }
  std::shared_ptr<expression> e(new expression());
  e->text_ = std::string(text);
  e->root_ = std::move(root);
  e->slots_ = *slots;
  return std::shared_ptr<const expression>(std::move(e));
}

}  // namespace vigil::expr
