#include "iol/tokenizer/jinja/lexer.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "iol/core/error.hpp"
#include "iol/tokenizer/jinja/py_string.hpp"

namespace iol::tokenizer::jinja {

namespace {

std::string normalize_newlines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();  // keep_trailing_newline=False
  return out;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's text.rstrip() (Unicode whitespace), used by `{%-`.
std::string rstrip_all(const std::string& text) { return py::strip(text, std::nullopt, false, true); }

class Lexer {
 public:
  Lexer(std::string source, const std::string& name) : src_(std::move(source)), name_(name) {
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') newlines_.push_back(i);
  }

  std::vector<Piece> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t start = find_tag_start(pos_);
      std::string text = src_.substr(pos_, (start == std::string::npos ? src_.size() : start) - pos_);
      if (start == std::string::npos) {
        push_text(std::move(text));
        break;
      }
      const char kind = src_[start + 1];
      const char sign = start + 2 < src_.size() && (src_[start + 2] == '-' || src_[start + 2] == '+') ? src_[start + 2] : 0;
      if (sign == '-') {
        text = rstrip_all(text);
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks: not for {{ }}
        size_t line_begin = text.rfind('\n');
        line_begin = line_begin == std::string::npos ? 0 : line_begin + 1;
        if ((line_begin > 0 || line_starting) && line_begin < text.size() &&
            std::all_of(text.begin() + static_cast<std::ptrdiff_t>(line_begin), text.end(), is_blank))
          text.resize(line_begin);
      }
      push_text(std::move(text));
      pos_ = start + 2 + (sign ? 1 : 0);
      char end_sign = 0;
      if (kind == '#') {
        end_sign = skip_comment(start);
      } else {
        Piece piece{kind == '{' ? Piece::Kind::kExpression : Piece::Kind::kStatement, {}, {}, line_at(start)};
        end_sign = lex_tag(piece, kind == '{' ? "}}" : "%}");
        const bool raw = piece.kind == Piece::Kind::kStatement && piece.tokens.size() == 2 &&
                         piece.tokens[0].kind == Token::Kind::kName && piece.tokens[0].text == "raw";
        if (raw) {
          after_tag(kind, end_sign);
          end_sign = lex_raw(start);
        } else {
          pieces_.push_back(std::move(piece));
        }
      }
      after_tag(kind, end_sign);
      line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
    }
    return std::move(pieces_);
  }

 private:
  [[noreturn]] void error(size_t at, const std::string& what) const { fail("{}: line {}: {}", name_, line_at(at), what); }

  int line_at(size_t at) const {
    return 1 + static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), at) - newlines_.begin());
  }

  size_t find_tag_start(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return std::string::npos;
  }

  void push_text(std::string text) {
    if (text.empty()) return;
    if (!pieces_.empty() && pieces_.back().kind == Piece::Kind::kText) pieces_.back().text += text;
    else pieces_.push_back(Piece{Piece::Kind::kText, std::move(text), {}, 0});
  }

  // After a tag: `-` eats all following whitespace; a block/comment tag (trim_blocks) eats one newline.
  void after_tag(char kind, char end_sign) {
    if (end_sign == '-') {
      while (pos_ < src_.size() && (is_blank(src_[pos_]) || static_cast<unsigned char>(src_[pos_]) >= 0x80)) {
        if (static_cast<unsigned char>(src_[pos_]) >= 0x80) {  // Unicode whitespace (\s in Python's re)
          size_t n = 1;
          while (pos_ + n < src_.size() && (static_cast<unsigned char>(src_[pos_ + n]) & 0xC0) == 0x80) ++n;
          std::u32string c = py::decode(src_.substr(pos_, n));
          if (c.size() != 1 || !py::is_space(c[0])) break;
          pos_ += n;
        } else {
          ++pos_;
        }
      }
    } else if (kind != '{' && end_sign != '+' && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
  }

  char skip_comment(size_t start) {
    size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) error(start, "unclosed comment: '{#' without '#}'");
    char sign = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
    pos_ = end + 2;
    return sign;
  }

  // {% raw %}...{% endraw %}: the text between is kept verbatim.
  char lex_raw(size_t start) {
    for (size_t at = find_tag_start(pos_); at != std::string::npos; at = find_tag_start(at + 1)) {
      if (src_[at + 1] != '%') continue;
      size_t i = at + 2;
      const char sign = i < src_.size() && (src_[i] == '-' || src_[i] == '+') ? src_[i] : 0;
      if (sign) ++i;
      while (i < src_.size() && is_blank(src_[i])) ++i;
      if (src_.compare(i, 6, "endraw") != 0) continue;
      i += 6;
      while (i < src_.size() && is_blank(src_[i])) ++i;
      char end_sign = 0;
      if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) end_sign = src_[i++];
      if (src_.compare(i, 2, "%}") != 0) continue;
      std::string text = src_.substr(pos_, at - pos_);
      if (sign == '-') text = rstrip_all(text);
      push_text(std::move(text));
      pos_ = i + 2;
      return end_sign;
    }
    error(start, "unclosed '{% raw %}': no '{% endraw %}'");
  }

  // Tokens of one tag up to its end marker (at bracket depth 0, as Jinja balances brackets).
  char lex_tag(Piece& piece, const char* marker) {
    int depth = 0;
    const size_t tag_start = pos_;
    while (true) {
      while (pos_ < src_.size() && is_blank(src_[pos_])) ++pos_;
      if (pos_ >= src_.size())
        error(tag_start, std::string("unclosed tag: expected '") + marker + "'");
      if (depth == 0) {
        if (src_.compare(pos_, 2, marker) == 0) {
          pos_ += 2;
          piece.tokens.push_back(Token{Token::Kind::kEnd, "", {}, line_at(pos_)});
          return 0;
        }
        const char c = src_[pos_];
        if ((c == '-' || (c == '+' && marker[0] == '%')) && src_.compare(pos_ + 1, 2, marker) == 0) {
          pos_ += 3;
          piece.tokens.push_back(Token{Token::Kind::kEnd, "", {}, line_at(pos_)});
          return c;
        }
      }
      Token token = next_token();
      if (token.kind == Token::Kind::kOperator) {
        const char c = token.text[0];
        if (c == '(' || c == '[' || c == '{') ++depth;
        if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
      }
      piece.tokens.push_back(std::move(token));
    }
  }

  Token next_token() {
    const size_t start = pos_;
    const int line = line_at(start);
    const char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
      return Token{Token::Kind::kName, src_.substr(start, pos_ - start), {}, line};
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return number(line);
    if (c == '\'' || c == '"') return string_literal(c, line);
    static const char* const kOperators[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                             ">",  "=",  ".",  ",",  ":",  "|",  "(", ")", "[", "]", "{", "}"};
    for (const char* op : kOperators) {
      const size_t n = std::strlen(op);
      if (src_.compare(pos_, n, op) == 0) {
        pos_ += n;
        return Token{Token::Kind::kOperator, op, {}, line};
      }
    }
    error(start, std::string("unexpected character '") + c + "' in a tag");
  }

  void digits(std::string& out) {
    while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) ||
                                  (src_[pos_] == '_' && pos_ + 1 < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))))) {
      if (src_[pos_] != '_') out += src_[pos_];
      ++pos_;
    }
  }

  Token number(int line) {
    std::string text;
    digits(text);
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      is_float = true;
      text += src_[pos_++];
      digits(text);
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t save = pos_;
      std::string exp = "e";
      ++pos_;
      if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) exp += src_[pos_++];
      if (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) {
        digits(exp);
        text += exp;
        is_float = true;
      } else {
        pos_ = save;
      }
    }
    if (is_float) return Token{Token::Kind::kFloat, text, Value(std::strtod(text.c_str(), nullptr)), line};
    errno = 0;
    long long v = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE) error(pos_, "integer literal " + text + " does not fit in 64 bits");
    return Token{Token::Kind::kInt, text, Value(static_cast<int64_t>(v)), line};
  }

  Token string_literal(char quote, int line) {
    const size_t start = pos_++;
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) error(start, "unclosed string literal");
      const char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') { out += c; continue; }
      if (pos_ >= src_.size()) error(start, "unclosed string literal");
      const char e = src_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'a': out += '\a'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // line continuation
        case 'x': case 'u': case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (pos_ + n > src_.size()) error(start, "truncated \\" + std::string(1, e) + " escape in a string literal");
          std::string hex = src_.substr(pos_, n);
          if (!std::all_of(hex.begin(), hex.end(), [](char h) { return std::isxdigit(static_cast<unsigned char>(h)); }))
            error(start, "invalid \\" + std::string(1, e) + " escape in a string literal");
          pos_ += n;
          unsigned long cp = std::stoul(hex, nullptr, 16);
          if (cp > 0x10FFFF) error(start, "escape \\" + std::string(1, e) + hex + " is not a Unicode code point");
          py::append_utf8(out, static_cast<char32_t>(cp));
          break;
        }
        default:
          if (e >= '0' && e <= '7') {  // octal, up to 3 digits
            unsigned cp = static_cast<unsigned>(e - '0');
            for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++k)
              cp = cp * 8 + static_cast<unsigned>(src_[pos_++] - '0');
            py::append_utf8(out, static_cast<char32_t>(cp));
          } else {  // Python keeps unknown escapes as written
            out += '\\';
            out += e;
          }
      }
    }
    return Token{Token::Kind::kString, std::move(out), {}, line};
  }

  std::string src_;
  const std::string& name_;
  std::vector<size_t> newlines_;
  size_t pos_ = 0;
  std::vector<Piece> pieces_;
};

}  // namespace

std::vector<Piece> lex(const std::string& source, const std::string& name) {
  return Lexer(normalize_newlines(source), name).run();
}

}  // namespace iol::tokenizer::jinja
