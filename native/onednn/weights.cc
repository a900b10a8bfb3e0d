#include "weights.h"

#include <map>
#include <stdexcept>
#include <string>

namespace film {
namespace onednn {

std::vector<std::array<ConvWeights, 2>> ReadConvWeights(const torch::jit::Module& extractor, int64_t sub_levels) {
  std::map<std::string, at::Tensor> params;
  for (const auto& p : extractor.named_parameters(/*recurse=*/true)) params[p.name] = p.value;
  auto get = [&](const std::string& name) {
    auto it = params.find(name);
    if (it == params.end()) throw std::runtime_error("the extractor has no parameter " + name);
    return it->second.detach();
  };
  std::vector<std::array<ConvWeights, 2>> stages(sub_levels);
  for (int64_t j = 0; j < sub_levels; ++j) {
    for (int k = 0; k < 2; ++k) {
      const std::string prefix = "extract_sublevels.convs." + std::to_string(j) + "." + std::to_string(k) + ".0.";
      stages[j][k] = {get(prefix + "weight"), get(prefix + "bias")};
    }
  }
  return stages;
}

}  // namespace onednn
}  // namespace film
