#include "iol/engine/llm.hpp"

#include "iol/core/error.hpp"

namespace iol::engine {

std::vector<Completion> generate(Engine& engine, const std::vector<std::vector<int32_t>>& prompts,
                                 const std::vector<sampling::SamplingParams>& params, const OutputCallback& on_output) {
  if (params.size() != 1 && params.size() != prompts.size())
    fail("generate: {} sampling params for {} prompts (give one, or one per prompt)", params.size(), prompts.size());
  std::vector<size_t> first_completion;
  size_t total = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    first_completion.push_back(total);
    total += static_cast<size_t>(params[params.size() == 1 ? 0 : i].n);
  }
  std::vector<Completion> completions(total);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const size_t first = first_completion[i];
    engine.add_request(prompts[i], params[params.size() == 1 ? 0 : i], [&completions, first, &on_output](const RequestOutput& out) {
      if (on_output) on_output(out);
      if (!out.finished) return;
      const Sequence& seq = out.sequence;
      Completion& c = completions[first + static_cast<size_t>(out.sample_index)];
      c.sample_index = out.sample_index;
      c.prompt_ids.assign(seq.prompt_ids().begin(), seq.prompt_ids().end());
      c.output_ids.assign(seq.output_ids().begin(), seq.output_ids().end());
      c.tokens = seq.sampled();
      c.text = seq.text();
      c.finish_reason = seq.finish_reason();
      c.error = seq.error();
      c.timestamps = seq.timestamps;
      c.num_cached_prompt_tokens = seq.num_cached_prompt_tokens;
      c.num_preemptions = seq.num_preemptions;
    });
  }
  while (engine.has_unfinished()) engine.step();
  return completions;
}

}  // namespace iol::engine
