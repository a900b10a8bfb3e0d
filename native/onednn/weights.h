// Reads FILM's convolution weights out of a loaded TorchScript extractor, for the oneDNN engine.
#pragma once

#include <torch/script.h>

#include <array>
#include <vector>

#include "engine.h"

namespace film {
namespace onednn {

// stages[j][k] = extract_sublevels.convs.{j}.{k}.0.{weight,bias} of `extractor`, for j < sub_levels.
// Throws std::runtime_error naming a missing tensor.
std::vector<std::array<ConvWeights, 2>> ReadConvWeights(const torch::jit::Module& extractor, int64_t sub_levels);

}  // namespace onednn
}  // namespace film
