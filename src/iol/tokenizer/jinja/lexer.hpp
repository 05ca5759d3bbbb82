// Lexer: template source → text, {{ expression }} and {% statement %} pieces, each tag's inside
// split into tokens. Whitespace control is applied here exactly as Jinja's lexer does with the
// settings transformers uses (trim_blocks, lstrip_blocks, keep_trailing_newline=False):
// `{%-`/`-%}` strip all adjacent whitespace, `{%+`/`+%}` opt out, a block or comment tag drops
// the one newline after it and the indentation before it when only whitespace precedes it on
// its line, \r\n and \r become \n, and one trailing newline of the source is dropped.
#pragma once
#include <string>
#include <vector>

#include "iol/tokenizer/jinja/value.hpp"

namespace iol::tokenizer::jinja {

struct Token {
  enum class Kind { kName, kString, kInt, kFloat, kOperator, kEnd };
  Kind kind;
  std::string text;  // name, operator, or the unescaped string
  Value number;      // for kInt / kFloat
  int line;
};

struct Piece {
  enum class Kind { kText, kExpression, kStatement };
  Kind kind;
  std::string text;           // kText
  std::vector<Token> tokens;  // kExpression / kStatement, ending with a kEnd token
  int line;
};

// Throws iol::Error ("<name>: line N: ...") on an unclosed tag or string, or a stray character.
std::vector<Piece> lex(const std::string& source, const std::string& name);

}  // namespace iol::tokenizer::jinja
