#include "iol/model/checkpoint.hpp"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"

namespace iol::model {

namespace fs = std::filesystem;
using nlohmann::json;

std::shared_ptr<Checkpoint> Checkpoint::open(const std::string& directory) {
  auto checkpoint = std::shared_ptr<Checkpoint>(new Checkpoint());
  checkpoint->directory_ = directory;
  fs::path dir(directory);
  fs::path single = dir / "model.safetensors";
  fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(single)) {
    checkpoint->files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
    for (const auto& [name, view] : checkpoint->files_.back()->tensors()) checkpoint->tensors_[name] = &view;
    return checkpoint;
  }
  if (!fs::exists(index))
    fail("{}: no model.safetensors or model.safetensors.index.json (use --load-format dummy for random "
         "weights)", directory);

  json index_json = read_json_file(index.string());
  auto weight_map = index_json.find("weight_map");
  if (!index_json.is_object() || weight_map == index_json.end() || !weight_map->is_object())
    fail("{}: missing 'weight_map' object", index.string());
  std::map<std::string, SafetensorsFile*> shard_by_name;
  for (const auto& [tensor, shard] : weight_map->items()) {
    if (!shard.is_string()) fail("{}: weight_map entry '{}' must be a file name", index.string(), tensor);
    std::string shard_name = shard.get<std::string>();
    if (shard_name.find('/') != std::string::npos || shard_name.find("..") != std::string::npos)
      fail("{}: weight_map entry '{}' names '{}', which is not a file in the model directory", index.string(),
           tensor, shard_name);
    auto& file = shard_by_name[shard_name];
    if (!file) {
      fs::path shard_path = dir / shard_name;
      if (!fs::exists(shard_path))
        fail("{}: shard '{}' (holding '{}') does not exist", index.string(), shard_name, tensor);
      checkpoint->files_.push_back(std::make_unique<SafetensorsFile>(shard_path.string()));
      file = checkpoint->files_.back().get();
    }
    auto found = file->tensors().find(tensor);
    if (found == file->tensors().end())
      fail("{}: tensor '{}' is listed in {} but missing from the shard", file->path(), tensor, index.string());
    checkpoint->tensors_[tensor] = &found->second;
  }
  return checkpoint;
}

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

}  // namespace iol::model
