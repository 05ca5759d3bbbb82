#include "iol/tokenizer/jinja/parser.hpp"

#include <algorithm>
#include <set>

#include "iol/core/error.hpp"

namespace iol::tokenizer::jinja {

namespace {

// Tags Jinja has that the subset leaves out: named in the error so the user knows why.
const std::set<std::string> kUnsupportedTags = {"filter", "call",  "include", "import",     "from", "extends",
                                                 "block",  "autoescape", "do", "trans", "pluralize", "print"};
const std::set<std::string> kCompareOps = {"==", "!=", "<", "<=", ">", ">="};

class Parser {
 public:
  Parser(const std::vector<Piece>& pieces, const std::string& name) : pieces_(pieces), name_(name) {}

  Body parse_template() {
    std::string end;
    Body body = parse_body({}, end);
    return body;
  }

 private:
  // --- statements ---------------------------------------------------------------------------

  // Parses nodes until a statement whose tag is one of `end_tags` (left current, its tag consumed;
  // its name in `found`). With no end tags, parses to the end of the template.
  Body parse_body(const std::vector<std::string>& end_tags, std::string& found, int opened_line = 0,
                  const std::string& opened_tag = "") {
    Body body;
    while (index_ < pieces_.size()) {
      const Piece& piece = pieces_[index_];
      if (piece.kind == Piece::Kind::kText) {
        auto node = make_node(Node::Kind::kText, piece.line);
        node->text = piece.text;
        body.push_back(std::move(node));
        ++index_;
        continue;
      }
      begin_piece(piece);
      if (piece.kind == Piece::Kind::kExpression) {
        auto node = make_node(Node::Kind::kOutput, piece.line);
        node->expr = parse_tuple_expression(true);
        expect_end();
        body.push_back(std::move(node));
        ++index_;
        continue;
      }
      const Token& tag = next();
      if (tag.kind != Token::Kind::kName) error(tag, "expected a tag name after '{%'");
      if (std::find(end_tags.begin(), end_tags.end(), tag.text) != end_tags.end()) {
        found = tag.text;
        return body;
      }
      body.push_back(parse_statement(tag));
    }
    if (!end_tags.empty()) {
      std::string expected;
      for (const auto& t : end_tags) expected += (expected.empty() ? "'" : " or '") + t + "'";
      fail("{}: line {}: unexpected end of template: '{{% {} %}}' opened here is not closed (expected {})", name_,
           opened_line, opened_tag, expected);
    }
    return body;
  }

  NodePtr parse_statement(const Token& tag) {
    if (++depth_ > kMaxNesting) error(tag, "blocks nested too deeply");
    struct Leave { int& d; ~Leave() { --d; } } leave{depth_};
    const std::string& t = tag.text;
    if (t == "if") return parse_if(tag);
    if (t == "for") return parse_for(tag);
    if (t == "set") return parse_set(tag);
    if (t == "macro") return parse_macro(tag);
    if (t == "with") return parse_with(tag);
    if (t == "generation") return parse_block(tag, "endgeneration");
    if (t == "break" || t == "continue") {
      if (loop_depth_ == 0) error(tag, "'{% " + t + " %}' outside of a loop");
      expect_end();
      ++index_;
      return make_node(t == "break" ? Node::Kind::kBreak : Node::Kind::kContinue, tag.line);
    }
    if (kUnsupportedTags.count(t)) error(tag, "'{% " + t + " %}' is not supported by iol's Jinja subset");
    error(tag, "unknown tag '" + t + "'");
  }

  NodePtr parse_if(const Token& tag) {
    auto node = make_node(Node::Kind::kIf, tag.line);
    ExprPtr condition = parse_tuple_expression(true);
    expect_end();
    ++index_;
    while (true) {
      std::string found;
      Body body = parse_body({"elif", "else", "endif"}, found, tag.line, "if");
      node->branches.emplace_back(std::move(condition), std::move(body));
      if (found == "endif") break;
      if (found == "else") {
        expect_end();
        ++index_;
        Body else_body = parse_body({"endif"}, found, tag.line, "if");
        node->branches.emplace_back(nullptr, std::move(else_body));
        break;
      }
      condition = parse_tuple_expression(true);  // elif
      expect_end();
      ++index_;
    }
    expect_end();
    ++index_;
    return node;
  }

  NodePtr parse_for(const Token& tag) {
    auto node = make_node(Node::Kind::kFor, tag.line);
    node->targets = parse_targets();
    const Token& in = next();
    if (in.kind != Token::Kind::kName || in.text != "in") error(in, "expected 'in' in '{% for %}'");
    node->expr = parse_expression(false);
    if (peek_name("if")) {
      next();
      node->filter = parse_expression(true);
    }
    if (peek_name("recursive")) error(peek(), "recursive for loops are not supported by iol's Jinja subset");
    expect_end();
    ++index_;
    ++loop_depth_;
    std::string found;
    node->body = parse_body({"endfor", "else"}, found, tag.line, "for");
    --loop_depth_;
    if (found == "else") {
      expect_end();
      ++index_;
      node->else_body = parse_body({"endfor"}, found, tag.line, "for");
    }
    expect_end();
    ++index_;
    return node;
  }

  NodePtr parse_set(const Token& tag) {
    auto node = make_node(Node::Kind::kSet, tag.line);
    const Token& first = next();
    if (first.kind != Token::Kind::kName) error(first, "expected a variable name after 'set'");
    if (peek_op(".")) {  // namespace attribute
      next();
      const Token& attr = next();
      if (attr.kind != Token::Kind::kName) error(attr, "expected an attribute name after '.'");
      node->targets = {first.text};
      node->attribute = attr.text;
    } else {
      node->targets = {first.text};
      while (peek_op(",")) {
        next();
        const Token& more = next();
        if (more.kind != Token::Kind::kName) error(more, "expected a variable name in the 'set' target list");
        node->targets.push_back(more.text);
      }
    }
    if (peek().kind == Token::Kind::kEnd) {  // {% set x %}...{% endset %}
      if (node->targets.size() != 1 || !node->attribute.empty()) error(tag, "a block set takes one variable name");
      node->kind = Node::Kind::kSetBlock;
      ++index_;
      std::string found;
      node->body = parse_body({"endset"}, found, tag.line, "set");
      expect_end();
      ++index_;
      return node;
    }
    expect_op("=");
    node->expr = parse_tuple_expression(true);
    expect_end();
    ++index_;
    return node;
  }

  NodePtr parse_macro(const Token& tag) {
    auto node = make_node(Node::Kind::kMacro, tag.line);
    const Token& name = next();
    if (name.kind != Token::Kind::kName) error(name, "expected the macro's name");
    node->text = name.text;
    expect_op("(");
    while (!peek_op(")")) {
      if (!node->params.empty()) expect_op(",");
      if (peek_op(")")) break;
      const Token& param = next();
      if (param.kind != Token::Kind::kName) error(param, "expected a parameter name");
      ExprPtr dflt;
      if (peek_op("=")) {
        next();
        dflt = parse_expression(true);
      }
      node->params.emplace_back(param.text, std::move(dflt));
    }
    expect_op(")");
    expect_end();
    ++index_;
    const int saved_depth = loop_depth_;
    loop_depth_ = 0;
    std::string found;
    node->body = parse_body({"endmacro"}, found, tag.line, "macro");
    loop_depth_ = saved_depth;
    if (peek().kind == Token::Kind::kName) next();  // {% endmacro name %}
    expect_end();
    ++index_;
    return node;
  }

  NodePtr parse_with(const Token& tag) {
    auto node = make_node(Node::Kind::kWith, tag.line);
    while (peek().kind != Token::Kind::kEnd) {
      if (!node->params.empty()) expect_op(",");
      const Token& target = next();
      if (target.kind != Token::Kind::kName) error(target, "expected a variable name in '{% with %}'");
      expect_op("=");
      node->params.emplace_back(target.text, parse_expression(true));
    }
    ++index_;
    std::string found;
    node->body = parse_body({"endwith"}, found, tag.line, "with");
    expect_end();
    ++index_;
    return node;
  }

  NodePtr parse_block(const Token& tag, const std::string& end_tag) {
    auto node = make_node(Node::Kind::kBlock, tag.line);
    expect_end();
    ++index_;
    std::string found;
    node->body = parse_body({end_tag}, found, tag.line, tag.text);
    expect_end();
    ++index_;
    return node;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> targets;
    const bool parenthesized = peek_op("(");
    if (parenthesized) next();
    do {
      if (!targets.empty()) next();  // the comma
      const Token& t = next();
      if (t.kind != Token::Kind::kName) error(t, "expected a loop variable name");
      targets.push_back(t.text);
    } while (peek_op(","));
    if (parenthesized) expect_op(")");
    return targets;
  }

  // --- expressions --------------------------------------------------------------------------

  // An expression, or a bare tuple `a, b` (as Jinja allows in {{ }} and set).
  ExprPtr parse_tuple_expression(bool with_conditional) {
    ExprPtr first = parse_expression(with_conditional);
    if (!peek_op(",")) return first;
    auto tuple = make(Expr::Kind::kTuple, first->line);
    tuple->args.push_back(std::move(first));
    while (peek_op(",")) {
      next();
      if (peek().kind == Token::Kind::kEnd) break;
      tuple->args.push_back(parse_expression(with_conditional));
    }
    return tuple;
  }

  ExprPtr parse_expression(bool with_conditional) {
    // Bounded nesting: a hostile template cannot overflow the stack.
    if (++depth_ > kMaxNesting) error(peek(), "expression nested too deeply");
    ExprPtr e = with_conditional ? parse_conditional() : parse_or();
    --depth_;
    return e;
  }

  ExprPtr parse_conditional() {
    ExprPtr expr = parse_or();
    while (peek_name("if")) {
      const int line = next().line;
      auto cond = make(Expr::Kind::kConditional, line);
      cond->args.push_back(parse_or());
      cond->args.push_back(std::move(expr));
      if (peek_name("else")) {
        next();
        cond->args.push_back(parse_conditional());
      } else {
        cond->args.push_back(nullptr);
      }
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (peek_name("or")) {
      auto node = make(Expr::Kind::kOr, next().line);
      node->args.push_back(std::move(left));
      node->args.push_back(parse_and());
      left = std::move(node);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (peek_name("and")) {
      auto node = make(Expr::Kind::kAnd, next().line);
      node->args.push_back(std::move(left));
      node->args.push_back(parse_not());
      left = std::move(node);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (peek_name("not")) {
      auto node = make(Expr::Kind::kUnary, next().line);
      node->name = "not";
      node->args.push_back(parse_not());
      return node;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr first = parse_math1();
    ExprPtr node;
    while (true) {
      std::string op;
      const Token& t = peek();
      if (t.kind == Token::Kind::kOperator && kCompareOps.count(t.text)) {
        op = t.text;
        next();
      } else if (peek_name("in")) {
        op = "in";
        next();
      } else if (peek_name("not") && peek(1).kind == Token::Kind::kName && peek(1).text == "in") {
        op = "not in";
        next();
        next();
      } else {
        break;
      }
      if (!node) {
        node = make(Expr::Kind::kCompare, first->line);
        node->args.push_back(std::move(first));
      }
      node->ops.push_back(op);
      node->args.push_back(parse_math1());
    }
    return node ? std::move(node) : std::move(first);
  }

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, int line) {
    auto node = make(Expr::Kind::kBinary, line);
    node->name = op;
    node->args.push_back(std::move(left));
    node->args.push_back(std::move(right));
    return node;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (peek_op("+") || peek_op("-")) {
      const Token& op = next();
      left = binary(op.text, std::move(left), parse_concat(), op.line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (peek_op("~")) {
      const Token& op = next();
      left = binary("~", std::move(left), parse_math2(), op.line);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (peek_op("*") || peek_op("/") || peek_op("//") || peek_op("%")) {
      const Token& op = next();
      left = binary(op.text, std::move(left), parse_pow(), op.line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (peek_op("**")) {
      const Token& op = next();
      left = binary("**", std::move(left), parse_unary(true), op.line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    if (++depth_ > kMaxNesting) error(peek(), "expression nested too deeply");
    struct Leave { int& d; ~Leave() { --d; } } leave{depth_};
    ExprPtr node;
    if (peek_op("-") || peek_op("+")) {
      const Token& op = next();
      node = make(Expr::Kind::kUnary, op.line);
      node->name = op.text;
      node->args.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = next();
    switch (t.kind) {
      case Token::Kind::kName: {
        auto node = make(Expr::Kind::kLiteral, t.line);
        if (t.text == "true" || t.text == "True") node->value = Value(true);
        else if (t.text == "false" || t.text == "False") node->value = Value(false);
        else if (t.text == "none" || t.text == "None") node->value = Value::none();
        else { node->kind = Expr::Kind::kName; node->name = t.text; }
        return node;
      }
      case Token::Kind::kString: {
        std::string s = t.text;
        while (peek().kind == Token::Kind::kString) s += next().text;  // adjacent literals concatenate
        auto node = make(Expr::Kind::kLiteral, t.line);
        node->value = Value(std::move(s));
        return node;
      }
      case Token::Kind::kInt: case Token::Kind::kFloat: {
        auto node = make(Expr::Kind::kLiteral, t.line);
        node->value = t.number;
        return node;
      }
      case Token::Kind::kOperator:
        if (t.text == "(") return parse_parenthesized(t);
        if (t.text == "[") return parse_list(t);
        if (t.text == "{") return parse_dict(t);
        break;
      default: break;
    }
    error(t, "unexpected " + describe(t));
  }

  ExprPtr parse_parenthesized(const Token& open) {
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (!peek_op(")")) {
      items.push_back(parse_expression(true));
      if (!peek_op(",")) break;
      next();
      is_tuple = true;
    }
    expect_op(")");
    if (items.size() == 1 && !is_tuple) return std::move(items[0]);
    auto node = make(Expr::Kind::kTuple, open.line);
    node->args = std::move(items);
    return node;
  }

  ExprPtr parse_list(const Token& open) {
    auto node = make(Expr::Kind::kList, open.line);
    while (!peek_op("]")) {
      if (!node->args.empty()) {
        expect_op(",");
        if (peek_op("]")) break;
      }
      node->args.push_back(parse_expression(true));
    }
    expect_op("]");
    return node;
  }

  ExprPtr parse_dict(const Token& open) {
    auto node = make(Expr::Kind::kDict, open.line);
    while (!peek_op("}")) {
      if (!node->args.empty()) {
        expect_op(",");
        if (peek_op("}")) break;
      }
      node->args.push_back(parse_expression(true));
      expect_op(":");
      node->args.push_back(parse_expression(true));
    }
    expect_op("}");
    return node;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (peek_op(".")) {
        const int line = next().line;
        const Token& attr = next();
        if (attr.kind == Token::Kind::kName) {
          auto get = make(Expr::Kind::kGetAttr, line);
          get->name = attr.text;
          get->args.push_back(std::move(node));
          node = std::move(get);
        } else if (attr.kind == Token::Kind::kInt) {  // x.0 is x[0]
          auto get = make(Expr::Kind::kGetItem, line);
          get->args.push_back(std::move(node));
          auto index = make(Expr::Kind::kLiteral, line);
          index->value = attr.number;
          get->args.push_back(std::move(index));
          node = std::move(get);
        } else {
          error(attr, "expected an attribute name after '.'");
        }
      } else if (peek_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (peek_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target) {
    const int line = next().line;  // '['
    ExprPtr parts[3];
    bool is_slice = false;
    if (!peek_op(":")) parts[0] = parse_expression(true);
    if (peek_op(":")) {
      is_slice = true;
      next();
      if (!peek_op("]") && !peek_op(":")) parts[1] = parse_expression(true);
      if (peek_op(":")) {
        next();
        if (!peek_op("]")) parts[2] = parse_expression(true);
      }
    }
    expect_op("]");
    auto node = make(is_slice ? Expr::Kind::kSlice : Expr::Kind::kGetItem, line);
    node->args.push_back(std::move(target));
    if (is_slice) {
      for (auto& p : parts) node->args.push_back(std::move(p));
    } else {
      node->args.push_back(std::move(parts[0]));
    }
    return node;
  }

  // `(` args `)` appended to `node` (positional from args[first_arg], keyword into kwargs).
  void parse_call_args(Expr& node) {
    expect_op("(");
    bool first = true;
    while (!peek_op(")")) {
      if (!first) {
        expect_op(",");
        if (peek_op(")")) break;
      }
      first = false;
      if (peek_op("*") || peek_op("**")) error(peek(), "*args and **kwargs in calls are not supported by iol's Jinja subset");
      if (peek().kind == Token::Kind::kName && peek(1).kind == Token::Kind::kOperator && peek(1).text == "=") {
        std::string key = next().text;
        next();
        node.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!node.kwargs.empty()) error(peek(), "a positional argument follows a keyword argument");
        node.args.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto node = make(Expr::Kind::kCall, peek().line);
    node->args.push_back(std::move(callee));
    parse_call_args(*node);
    return node;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (peek_op("|")) {
        const int line = next().line;
        const Token& name = next();
        if (name.kind != Token::Kind::kName) error(name, "expected a filter name after '|'");
        auto filter = make(Expr::Kind::kFilter, line);
        filter->name = name.text;
        filter->args.push_back(std::move(node));
        if (peek_op("(")) parse_call_args(*filter);
        node = std::move(filter);
      } else if (peek_name("is")) {
        const int line = next().line;
        auto test = make(Expr::Kind::kTest, line);
        if (peek_name("not")) {
          next();
          test->negated = true;
        }
        const Token& name = next();
        if (name.kind != Token::Kind::kName) error(name, "expected a test name after 'is'");
        test->name = name.text;
        test->args.push_back(std::move(node));
        const Token& t = peek();
        if (peek_op("(")) {
          parse_call_args(*test);
        } else if ((t.kind == Token::Kind::kName && t.text != "else" && t.text != "or" && t.text != "and") ||
                   t.kind == Token::Kind::kString || t.kind == Token::Kind::kInt || t.kind == Token::Kind::kFloat ||
                   peek_op("[") || peek_op("{")) {
          if (peek_name("is")) error(t, "tests cannot be chained with 'is'");
          test->args.push_back(parse_postfix(parse_primary()));
        }
        node = std::move(test);
      } else if (peek_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  // --- tokens -------------------------------------------------------------------------------

  void begin_piece(const Piece& piece) {
    tokens_ = &piece.tokens;
    token_ = 0;
  }
  const Token& peek(size_t ahead = 0) const {
    size_t i = std::min(token_ + ahead, tokens_->size() - 1);
    return (*tokens_)[i];
  }
  const Token& next() {
    const Token& t = peek();
    if (token_ + 1 < tokens_->size()) ++token_;
    return t;
  }
  bool peek_op(const char* op) const { return peek().kind == Token::Kind::kOperator && peek().text == op; }
  bool peek_name(const char* name) const { return peek().kind == Token::Kind::kName && peek().text == name; }
  void expect_op(const char* op) {
    if (!peek_op(op)) error(peek(), std::string("expected '") + op + "', found " + describe(peek()));
    next();
  }
  void expect_end() {
    if (peek().kind != Token::Kind::kEnd) error(peek(), "unexpected " + describe(peek()) + " (expected the end of the tag)");
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Token::Kind::kEnd: return "end of tag";
      case Token::Kind::kString: return "string '" + t.text + "'";
      default: return "'" + t.text + "'";
    }
  }
  static NodePtr make_node(Node::Kind kind, int line) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->line = line;
    return n;
  }
  ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  [[noreturn]] void error(const Token& at, const std::string& what) const { fail("{}: line {}: {}", name_, at.line, what); }

  const std::vector<Piece>& pieces_;
  const std::string& name_;
  size_t index_ = 0;
  const std::vector<Token>* tokens_ = nullptr;
  size_t token_ = 0;
  int loop_depth_ = 0;
  int depth_ = 0;
  static constexpr int kMaxNesting = 200;
};

}  // namespace

Body parse(const std::vector<Piece>& pieces, const std::string& name) { return Parser(pieces, name).parse_template(); }

}  // namespace iol::tokenizer::jinja
