#include "iol/engine/sequence.hpp"

#include <algorithm>
#include <random>

#include "iol/engine/block_manager.hpp"

namespace iol::engine {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Length: return "length";
    case FinishReason::Stop: return "stop";
    case FinishReason::Abort: return "abort";
    case FinishReason::Error: return "error";
    case FinishReason::None: break;
  }
  return "none";
}

Sequence::Sequence(RequestId id, std::vector<int32_t> prompt_ids, sampling::SamplingParams params,
                   std::vector<int32_t> eos_token_ids, const tokenizer::Vocabulary* vocabulary, double arrival,
                   int64_t block_size)
    : id_(id),
      token_ids_(std::move(prompt_ids)),
      num_prompt_tokens_(static_cast<int64_t>(token_ids_.size())),
      params_(std::move(params)),
      seed_(params_.seed ? *params_.seed : std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32)),
      block_size_(block_size),
      stop_checker_(params_.stop) {
  if (block_size_ > 0) BlockManager::extend_block_hashes(token_ids_, block_size_, block_hashes_);
  stop_token_ids_ = params_.stop_token_ids;
  if (!params_.ignore_eos) stop_token_ids_.insert(stop_token_ids_.end(), eos_token_ids.begin(), eos_token_ids.end());
  if (vocabulary) detokenizer_.emplace(*vocabulary);
  timestamps.arrival = arrival;
}

std::string Sequence::append_token(sampling::SampledToken sampled, double now) {
  const int32_t token = sampled.token;
  token_ids_.push_back(token);
  if (block_size_ > 0 && token_ids_.size() % static_cast<size_t>(block_size_) == 0)
    BlockManager::extend_block_hashes(token_ids_, block_size_, block_hashes_);
  sampled_.push_back(std::move(sampled));
  if (timestamps.first_token < 0) timestamps.first_token = now;
  timestamps.token_times.push_back(now);

  FinishReason reason = FinishReason::None;
  bool cut_by_stop_string = false;
  if (std::find(stop_token_ids_.begin(), stop_token_ids_.end(), token) != stop_token_ids_.end()) {
    reason = FinishReason::Stop;
  } else if (detokenizer_) {
    std::string piece = detokenizer_->add(token);
    text_ += piece;
    if (auto cut = stop_checker_.find_stop(text_, piece.size())) {
      text_.resize(*cut);
      reason = FinishReason::Stop;
      cut_by_stop_string = true;
    }
  }
  if (reason == FinishReason::None && num_output_tokens() >= params_.max_tokens) reason = FinishReason::Length;
  if (reason != FinishReason::None) {
    if (detokenizer_ && !cut_by_stop_string) text_ += detokenizer_->flush();
    finish(reason, now);
  }
  size_t ready = finished() ? text_.size() : stop_checker_.streamable_prefix(text_);
  std::string delta;
  if (ready > streamed_bytes_) {
    delta = text_.substr(streamed_bytes_, ready - streamed_bytes_);
    streamed_bytes_ = ready;
  }
  return delta;
}

void Sequence::abort(double now) { finish(FinishReason::Abort, now); }

void Sequence::fail_request(std::string error, double now) {
  error_ = std::move(error);
  finish(FinishReason::Error, now);
}

std::unique_ptr<Sequence> Sequence::fork(int32_t sample_index) const {
  auto child = std::make_unique<Sequence>(*this);
  child->sample_index_ = sample_index;
  child->block_table.clear();
  // Same seed, its own sample index: an independent stream (core/philox.hpp).
  return child;
}

void Sequence::finish(FinishReason reason, double now) {
  finish_reason_ = reason;
  status = SequenceStatus::Finished;
  timestamps.finished = now;
}

}  // namespace iol::engine
