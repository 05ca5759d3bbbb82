// The parsed template: expression and statement nodes of the Jinja subset (see docs/tokenizer.md
// for the list). Plain structs with a kind tag; the interpreter switches on it.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "iol/tokenizer/jinja/value.hpp"

namespace iol::tokenizer::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,      // value
    kName,         // name
    kList,         // args
    kTuple,        // args
    kDict,         // args: key, value, key, value, ...
    kGetAttr,      // args[0] . name
    kGetItem,      // args[0] [ args[1] ]
    kSlice,        // args[0] [ args[1] : args[2] : args[3] ] (null = omitted)
    kCall,         // args[0] ( args[1..] , kwargs )
    kFilter,       // args[0] | name ( args[1..], kwargs )
    kTest,         // args[0] is [not] name ( args[1..] )
    kUnary,        // name in {"-", "+", "not"} args[0]
    kBinary,       // args[0] name args[1]: + - * / // % ** ~
    kAnd,          // args[0] and args[1]
    kOr,           // args[0] or args[1]
    kCompare,      // args[0] ops[0] args[1] ops[1] args[2] ... (chained, as Python)
    kConditional,  // args[1] if args[0] else args[2] (args[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name;
  bool negated = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches: (condition, body); condition null = else
    kFor,       // targets in expr [if filter] body [else else_body]
    kSet,       // targets = expr, or attribute: targets[0].attribute = expr
    kSetBlock,  // targets[0] = rendered body
    kMacro,     // name(params) body
    kWith,      // assignments, body
    kBreak,
    kContinue,
    kBlock,     // a body rendered as is ({% generation %})
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr, filter;
  std::vector<std::string> targets;
  std::string attribute;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters (default may be null); with
};

}  // namespace iol::tokenizer::jinja
