#include "graph.h"

#include <algorithm>

namespace film {
namespace onednn {

Graph BuildGraph(int levels, int64_t channels, int sub_levels) {
  Graph g;
  g.levels = levels;
  g.channels = channels;
  g.sub_levels = sub_levels;
  g.output_channels.assign(levels, 0);
  for (int i = 0; i < levels; ++i) {
    const int depth = std::min(levels - i, sub_levels);
    for (int j = 0; j < depth; ++j) {
      const int64_t width = channels << j;
      StageStep s;
      s.level = i;
      s.stage = j;
      s.in_channels = j == 0 ? 3 : width / 2;
      s.out_channels = width;
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
