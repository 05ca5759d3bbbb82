// A Hugging Face model directory's weights: model.safetensors or the shards named by
// model.safetensors.index.json, memory-mapped; tensors looked up by name without copying.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "iol/model/safetensors.hpp"

namespace iol::model {

class Checkpoint {
 public:
  // Opens `directory`; throws iol::Error naming the file and tensor on any inconsistency.
  static std::shared_ptr<Checkpoint> open(const std::string& directory);

  const TensorView* find(const std::string& name) const;
  const std::map<std::string, const TensorView*>& tensors() const { return tensors_; }
  const std::string& directory() const { return directory_; }

 private:
  std::string directory_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> tensors_;
};

}  // namespace iol::model
