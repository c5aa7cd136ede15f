// Reference affine resample (ops/resample.h): one output element at a time, every tap read through
// the bounds test. The ISA kernel shares only the coordinate mapping (resample::taps_of).
#include <cstring>

#include "fastnn.h"
#include "ops/resample_map.h"

namespace fastnn {
namespace ref {
namespace {
float tap_value(const float* img, int64_t off, int64_t c, float fill) { return off < 0 ? fill : img[off + c]; }

void resample_forward(float* y, const float* x, const float* transforms, const ResampleParams& p) {
  for (int64_t b = 0; b < p.B; ++b) {
    const float* t = transforms + b * p.tstride;
    const float* img = x + b * p.H * p.W * p.C;
    for (int64_t oy = 0; oy < p.OH; ++oy)
      for (int64_t ox = 0; ox < p.OW; ++ox) {
        float* out = y + ((b * p.OH + oy) * p.OW + ox) * p.C;
        double ix, iy;
        if (!resample::source_point(t, ox, oy, p, &ix, &iy)) {
          for (int64_t c = 0; c < p.C; ++c) out[c] = p.fill_value;
          continue;
        }
        const resample::Taps k = resample::taps_of(ix, iy, p);
        for (int64_t c = 0; c < p.C; ++c) {
          float v = 0.0f;
          for (int j = 0; j < k.n; ++j) v += k.w[j] * tap_value(img, k.off[j], c, p.fill_value);
          out[c] = v;
        }
      }
  }
}

void resample_backward(float* dx, const float* dy, const float* transforms, const ResampleParams& p) {
  std::memset(dx, 0, sizeof(float) * size_t(p.B * p.H * p.W * p.C));
  for (int64_t b = 0; b < p.B; ++b) {
    const float* t = transforms + b * p.tstride;
    float* img = dx + b * p.H * p.W * p.C;
    for (int64_t oy = 0; oy < p.OH; ++oy)
      for (int64_t ox = 0; ox < p.OW; ++ox) {
        double ix, iy;
        if (!resample::source_point(t, ox, oy, p, &ix, &iy)) continue;
        const resample::Taps k = resample::taps_of(ix, iy, p);
        const float* g = dy + ((b * p.OH + oy) * p.OW + ox) * p.C;
        for (int j = 0; j < k.n; ++j)
          if (k.off[j] >= 0)
            for (int64_t c = 0; c < p.C; ++c) img[k.off[j] + c] += k.w[j] * g[c];
      }
  }
}
}  // namespace

void fill_resample(ImageOps& t) {
  t.resample_forward = resample_forward;
  t.resample_backward = resample_backward;
}
}  // namespace ref
}  // namespace fastnn
