// Convolution and pooling op group (NHWC). Filled in by the convolution issue.
#pragma once
namespace fastnn {
struct ConvOps {
  int unused_;  // placeholder until the first conv kernel lands
};
}  // namespace fastnn
