// Template: a Jinja template compiled once (lex, parse, check that every filter and test it
// names exists) and rendered many times. The subset covers what Hugging Face chat templates use;
// docs/tokenizer.md lists it. It renders as transformers' sandboxed environment does
// (trim_blocks, lstrip_blocks, loop controls, json.dumps-style tojson), checked against
// transformers on tests/fixtures/chat_template.
#pragma once
#include <memory>
#include <string>

#include "iol/tokenizer/jinja/ast.hpp"

namespace iol::tokenizer::jinja {

class Template {
 public:
  // `name` prefixes every error ("tokenizer_config.json chat_template: line 3: ...").
  // Throws iol::Error on a syntax error or a construct outside the subset.
  Template(const std::string& source, std::string name);

  // Throws iol::Error on a runtime error (undefined value used, TypeError, raise_exception()).
  std::string render(const ValueDict& variables) const;

  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::shared_ptr<const Body> body_;
};

}  // namespace iol::tokenizer::jinja
