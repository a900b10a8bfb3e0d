// FILM's extractor as a list of steps, for a pyramid of L levels and a sub-tree of S stages of base
// width C. No oneDNN here: this is the network's shape.
//
// The sub-tree runs on pyramid level i with depth min(L - i, S); stage j of level i lands in output
// level i + j at channel offset C * (2^j - 1). Stages whose output no level uses are not listed.
#pragma once

#include <cstdint>
#include <vector>

namespace film {
namespace onednn {

struct StageStep {
  int level;              // pyramid level the sub-tree runs on
  int stage;              // j: 0 convolves the image, j > 0 convolves the pooled stage j - 1
  int output;             // output level: level + stage
  int64_t channel_offset; // where this stage's channels start in that output level
};

struct Graph {
  std::vector<StageStep> steps;          // level by level, stages in order within a level
  std::vector<int64_t> output_channels;  // per output level
};

Graph BuildGraph(int levels, int64_t channels, int sub_levels);

}  // namespace onednn
}  // namespace film
