#include "graph.h"

#include <algorithm>

namespace film {
namespace onednn {

Graph BuildGraph(int levels, int64_t channels, int sub_levels) {
  Graph g;
  g.output_channels.assign(levels, 0);
  for (int i = 0; i < levels; ++i) {
    const int depth = std::min(levels - i, sub_levels);
    for (int j = 0; j < depth; ++j) {
      const int64_t width = channels << j;
      StageStep s;
      s.level = i;
      s.stage = j;
      s.output = i + j;
      s.channel_offset = channels * ((int64_t{1} << j) - 1);
      g.steps.push_back(s);
      g.output_channels[s.output] += width;
    }
  }
  return g;
}

}  // namespace onednn
}  // namespace film
