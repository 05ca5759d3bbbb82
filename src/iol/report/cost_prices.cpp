#include "iol/report/cost_prices.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "iol/core/error.hpp"

namespace iol::report {

using nlohmann::json;

namespace {

// Indicative prices, recorded 2025-06 from the sources named beside each (docs/report.md keeps
// the same table). Prices move: check them, and override with --prices FILE.
const std::string kDefaultPricesYaml = R"(# iol cost: default prices (USD). Copy this file, change any value, pass it with --prices.
date: "2025-06"
gpus:
  H100:
    match: [H100]
    cloud_usd_per_gpu_hour: 2.99   # Lambda on-demand 8x H100 SXM 80GB, per GPU-hour (2025 list price)
    purchase_usd_per_gpu: 30000    # reported H100 SXM price 2023-2024: $25,000-30,000 per GPU
    power_w: 700                   # NVIDIA H100 SXM datasheet: max TDP 700 W
    source: "cloud: Lambda on-demand list price; purchase: reported 2023-2024 street price; power: NVIDIA datasheet"
  H200:
    match: [H200]
    cloud_usd_per_gpu_hour: 3.50   # estimate: 2025 on-demand offers ranged about $3-4 per GPU-hour
    purchase_usd_per_gpu: 35000    # estimate: reported $30,000-40,000 per GPU (2024)
    power_w: 700                   # NVIDIA H200 SXM datasheet: max TDP up to 700 W
    source: "cloud and purchase: estimates (no single list price); power: NVIDIA datasheet"
  A100:
    match: [A100]
    cloud_usd_per_gpu_hour: 1.79   # Lambda on-demand 8x A100 SXM 80GB, per GPU-hour (2025 list price)
    purchase_usd_per_gpu: 15000    # estimate
    power_w: 400                   # NVIDIA A100 SXM datasheet: 400 W
    source: "cloud: Lambda on-demand list price; purchase: estimate; power: NVIDIA datasheet"
  L40S:
    match: [L40S]
    cloud_usd_per_gpu_hour: 0.90   # estimate
    purchase_usd_per_gpu: 8000     # estimate
    power_w: 350                   # NVIDIA L40S datasheet: 350 W
    source: "cloud and purchase: estimates; power: NVIDIA datasheet"
on_premise:
  amortization_years: 3            # straight-line depreciation period common for servers
  pue: 1.56                        # Uptime Institute Global Data Center Survey 2024: average PUE 1.56
  usd_per_kwh: 0.13                # U.S. EIA: 2024 average retail price to commercial customers, about 13 cents/kWh
  host_power_w_per_gpu: 0          # add your server's CPU/memory/fan/network power per GPU
  source: "PUE: Uptime Institute 2024 survey; electricity: U.S. EIA 2024 commercial average; amortization: 3-year straight line"
)";

json yaml_to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    json out = json::object();
    for (const auto& kv : node) out[kv.first.as<std::string>()] = yaml_to_json(kv.second);
    return out;
  }
  if (node.IsSequence()) {
    json out = json::array();
    for (const auto& item : node) out.push_back(yaml_to_json(item));
    return out;
  }
  if (node.IsNull()) return nullptr;
  const std::string text = node.as<std::string>();
  if (node.Tag() != "!") {  // unquoted: a number when it reads as one
    try {
      size_t used = 0;
      double value = std::stod(text, &used);
      if (used == text.size()) return value;
    } catch (const std::exception&) {
    }
  }
  return text;
}

void merge(json& base, const json& over) {
  for (auto it = over.begin(); it != over.end(); ++it) {
    if (it->is_object() && base.contains(it.key()) && base[it.key()].is_object()) merge(base[it.key()], *it);
    else base[it.key()] = *it;
  }
}

double positive(const json& j, const std::string& key, const std::string& where, bool allow_zero = false) {
  if (!j.contains(key)) fail("{}: '{}' is missing", where, key);
  if (!j[key].is_number()) fail("{}: '{}' must be a number (got {})", where, key, j[key].dump());
  const double v = j[key].get<double>();
  if (!(allow_zero ? v >= 0 : v > 0)) fail("{}: '{}' must be {} (got {})", where, key, allow_zero ? ">= 0" : "> 0", v);
  return v;
}

void check_keys(const json& j, std::initializer_list<const char*> known, const std::string& where) {
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::find_if(known.begin(), known.end(), [&](const char* k) { return it.key() == k; }) == known.end())
      fail("{}: unknown key '{}' (known: {})", where, it.key(), fmt::join(known, ", "));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

PriceTable table_from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) fail("{}: must be a YAML map (date, gpus, on_premise)", origin);
  check_keys(j, {"date", "gpus", "on_premise"}, origin);
  PriceTable t;
  t.origin = origin;
  t.date = j.contains("date") && j["date"].is_string() ? j["date"].get<std::string>()
                                                      : (j.contains("date") ? j["date"].dump() : "?");
  if (!j.contains("gpus") || !j["gpus"].is_object()) fail("{}: 'gpus' must be a map of GPU names", origin);
  for (auto it = j["gpus"].begin(); it != j["gpus"].end(); ++it) {
    const std::string where = fmt::format("{}: gpus.{}", origin, it.key());
    if (!it->is_object()) fail("{}: must be a map", where);
    check_keys(*it, {"match", "cloud_usd_per_gpu_hour", "purchase_usd_per_gpu", "power_w", "source"}, where);
    GpuPrice g;
    g.name = it.key();
    if (it->contains("match")) {
      if (!(*it)["match"].is_array()) fail("{}: 'match' must be a list of strings", where);
      for (const auto& m : (*it)["match"]) g.match.push_back(m.is_string() ? m.get<std::string>() : m.dump());
    }
    if (g.match.empty()) g.match.push_back(g.name);
    g.cloud_usd_per_gpu_hour = positive(*it, "cloud_usd_per_gpu_hour", where);
    g.purchase_usd_per_gpu = positive(*it, "purchase_usd_per_gpu", where);
    g.power_w = positive(*it, "power_w", where);
    g.source = it->value("source", "");
    t.gpus.push_back(g);
  }
  const std::string where = origin + ": on_premise";
  if (!j.contains("on_premise") || !j["on_premise"].is_object()) fail("{}: must be a map", where);
  const json& o = j["on_premise"];
  check_keys(o, {"amortization_years", "pue", "usd_per_kwh", "host_power_w_per_gpu", "source"}, where);
  t.amortization_years = positive(o, "amortization_years", where);
  t.pue = positive(o, "pue", where);
  if (t.pue < 1) fail("{}: 'pue' is total facility power over IT power, so >= 1 (got {})", where, t.pue);
  t.usd_per_kwh = positive(o, "usd_per_kwh", where, true);
  t.host_power_w_per_gpu = positive(o, "host_power_w_per_gpu", where, true);
  t.on_premise_source = o.value("source", "");
  return t;
}

json parse_yaml(const std::string& text, const std::string& origin) {
  try {
    return yaml_to_json(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    fail("{}: not valid YAML: {}", origin, e.what());
  }
}

}  // namespace

const GpuPrice* PriceTable::find(const std::string& gpu_name) const {
  const std::string name = lower(gpu_name);
  for (const auto& g : gpus)
    for (const auto& m : g.match)
      if (!m.empty() && name.find(lower(m)) != std::string::npos) return &g;
  return nullptr;
}

const GpuPrice& PriceTable::at(const std::string& name) const {
  for (const auto& g : gpus)
    if (lower(g.name) == lower(name)) return g;
  if (const GpuPrice* g = find(name)) return *g;
  std::vector<std::string> names;
  for (const auto& g : gpus) names.push_back(g.name);
  throw UsageError(fmt::format("--gpu: no price for '{}' in {} (known: {}; add it with --prices FILE)", name, origin,
                               fmt::join(names, ", ")));
}

const std::string& default_prices_yaml() { return kDefaultPricesYaml; }

PriceTable price_table_from_yaml(const std::string& override_yaml, const std::string& origin) {
  json merged = parse_yaml(kDefaultPricesYaml, "built-in prices");
  if (!override_yaml.empty()) {
    json over = parse_yaml(override_yaml, origin);
    if (!over.is_null() && !over.is_object()) fail("{}: must be a YAML map (date, gpus, on_premise)", origin);
    if (over.is_object()) {
      check_keys(over, {"date", "gpus", "on_premise"}, origin);
      merge(merged, over);
    }
  }
  return table_from_json(merged, override_yaml.empty() ? "built-in prices" : origin);
}

PriceTable load_price_table(const std::string& override_file) {
  if (override_file.empty()) return price_table_from_yaml("", "built-in prices");
  std::ifstream in(override_file);
  if (!in) fail("{}: cannot open the price file", override_file);
  std::stringstream text;
  text << in.rdbuf();
  return price_table_from_yaml(text.str(), override_file);
}

}  // namespace iol::report
