#include "iol/cli/ablation_plan.hpp"

namespace iol::cli {

namespace {

struct Lever {
  const char* name;
  bool cuda_only;
  void (*off)(EngineOptions&);
  void (*on)(EngineOptions&);
};

// Off = what a naive engine does (PyTorch generate's static batches, a max-length KV reservation
// per sequence, no reuse, whole prefills, one launch per kernel); on = iol's default.
const Lever kLevers[] = {
    {"inflight-batching", false, [](EngineOptions& o) { o.batching = "static"; }, [](EngineOptions& o) { o.batching = "inflight"; }},
    {"paged-kv", false, [](EngineOptions& o) { o.kv_layout = "contiguous"; }, [](EngineOptions& o) { o.kv_layout = "paged"; }},
    {"prefix-caching", false, [](EngineOptions& o) { o.no_prefix_caching = true; }, [](EngineOptions& o) { o.no_prefix_caching = false; }},
    {"chunked-prefill", false, [](EngineOptions& o) { o.no_chunked_prefill = true; }, [](EngineOptions& o) { o.no_chunked_prefill = false; }},
    {"cuda-graphs", true, [](EngineOptions& o) { o.no_cuda_graphs = true; }, [](EngineOptions& o) { o.no_cuda_graphs = false; }},
    {"decode-gemv", true, [](EngineOptions& o) { o.no_decode_gemv = true; }, [](EngineOptions& o) { o.no_decode_gemv = false; }},
};

}  // namespace

AblationPlan plan_ablation(const EngineOptions& user, const std::string& backend, const std::string& pytorch_reason) {
  AblationPlan plan;
  if (!pytorch_reason.empty()) plan.skipped.emplace_back("pytorch-baseline", pytorch_reason);
  std::vector<const Lever*> levers;
  for (const Lever& l : kLevers) {
    if (l.cuda_only && backend != "cuda") plan.skipped.emplace_back(l.name, "needs the cuda backend (this run uses " + backend + ")");
    else levers.push_back(&l);
  }
  plan.skipped.emplace_back("quantization", "not lossless, so not an ablation step: run --quantization fp8|int8-weight-only beside it");
  plan.skipped.emplace_back("speculative-decoding",
                            "needs a proposer chosen for the workload: run --speculative-method ngram or "
                            "--speculative-model DIR beside it (cpu backend only so far; docs/speculative.md)");
  EngineOptions off = user;
  for (const Lever* l : levers) l->off(off);
  plan.steps.push_back({"all-off", "", off});
  for (const Lever* l : levers) {
    EngineOptions one = off;
    l->on(one);
    plan.steps.push_back({std::string("+") + l->name, l->name, one});
  }
  EngineOptions all = user;
  for (const Lever* l : levers) l->on(all);
  plan.steps.push_back({"all-on", "", all});
  return plan;
}

}  // namespace iol::cli
