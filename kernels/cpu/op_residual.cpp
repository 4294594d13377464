// Residual connection: the block's output is added onto the stream it read.
#include "kernels/cpu/ops.hpp"

namespace cake::cpu {

void residual_add(float* x, const float* delta, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] += delta[i];
}

void add_bias(float* y, int64_t rows, int width, const float* bias) {
  for (int64_t r = 0; r < rows; ++r)
    for (int o = 0; o < width; ++o) y[r * width + o] += bias[o];
}

}  // namespace cake::cpu
