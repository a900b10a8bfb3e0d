#include "same_padding.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>

#include <vector>

namespace film {
namespace {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

// Integer padding equal to 'same', or empty when the kernel or dilation is unknown or even.
std::vector<int64_t> IntegerPadding(Node* conv) {
  auto weight = torch::jit::toIValue(conv->input(1));
  auto dilation = torch::jit::toIValue(conv->input(5));
  if (!weight || !weight->isTensor() || !dilation || !dilation->isIntList()) return {};
  const at::Tensor& w = weight->toTensor();
  std::vector<int64_t> d = dilation->toIntVector();
  if (w.dim() != 4 || d.size() != 2) return {};
  std::vector<int64_t> padding;
  for (int i = 0; i < 2; ++i) {
    const int64_t total = d[i] * (w.size(2 + i) - 1);
    if (total % 2 != 0) return {};  // 'same' pads asymmetrically here
    padding.push_back(total / 2);
  }
  return padding;
}

int RewriteBlock(Block* block) {
  int rewritten = 0;
  std::vector<Node*> nodes(block->nodes().begin(), block->nodes().end());
  for (Node* node : nodes) {
    for (Block* inner : node->blocks()) rewritten += RewriteBlock(inner);
    if (node->kind() != c10::Symbol::fromQualString("aten::conv2d") || node->inputs().size() != 7) continue;
    auto padding = torch::jit::toIValue(node->input(4));
    if (!padding || !padding->isString() || padding->toStringRef() != "same") continue;
    std::vector<int64_t> ints = IntegerPadding(node);
    if (ints.empty()) continue;
    auto* graph = node->owningGraph();
    torch::jit::WithInsertPoint guard(node);
    Value* pad = graph->insertConstant(c10::IValue(ints));
    std::vector<Value*> inputs(node->inputs().begin(), node->inputs().end());
    inputs[4] = pad;
    Node* replacement = graph->create(node->kind(), inputs, 1);
    replacement->insertBefore(node);
    replacement->output()->setType(node->output()->type());
    node->output()->replaceAllUsesWith(replacement->output());
    node->destroy();
    ++rewritten;
  }
  return rewritten;
}

}  // namespace

int ReplaceSamePadding(torch::jit::Module& frozen) {
  auto graph = frozen.get_method("forward").graph();
  return RewriteBlock(graph->block());
}

}  // namespace film
