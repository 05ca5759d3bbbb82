// ApiError: an error answered as OpenAI's error object — {"error": {message, type, param, code}}
// with its HTTP status — thrown while parsing and validating a request, caught by the server.
#pragma once
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"

namespace iol::server {

// An iol::Error, so the fuzz target's contract (a result or an iol::Error) covers the parser.
class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string param = "", std::string type = "", std::string code = "")
      : Error(message), status_(status), param_(std::move(param)), type_(std::move(type)), code_(std::move(code)) {
    if (type_.empty()) type_ = default_type(status);
  }
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& type() const { return type_; }

  nlohmann::json to_json() const {
    return {{"error",
             {{"message", what()},
              {"type", type_},
              {"param", param_.empty() ? nlohmann::json(nullptr) : nlohmann::json(param_)},
              {"code", code_.empty() ? nlohmann::json(nullptr) : nlohmann::json(code_)}}}};
  }

 private:
  // OpenAI's error types by status.
  static std::string default_type(int status) {
    if (status == 401) return "authentication_error";
    if (status == 404) return "not_found_error";
    if (status == 429) return "rate_limit_error";
    if (status >= 500) return "server_error";
    return "invalid_request_error";
  }
  int status_;
  std::string param_, type_, code_;
};

}  // namespace iol::server
