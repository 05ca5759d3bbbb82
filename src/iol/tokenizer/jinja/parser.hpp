// Parser: lexer pieces → AST, with Jinja's operator precedence (conditional < or < and < not <
// comparisons < + - < ~ < * / // % < ** < unary - + < postfix (. [] ()) < filters and tests).
// A construct outside the subset fails at parse time with an error that names it.
#pragma once
#include <string>
#include <vector>

#include "iol/tokenizer/jinja/ast.hpp"
#include "iol/tokenizer/jinja/lexer.hpp"

namespace iol::tokenizer::jinja {

// Throws iol::Error ("<name>: line N: ...").
Body parse(const std::vector<Piece>& pieces, const std::string& name);

}  // namespace iol::tokenizer::jinja
