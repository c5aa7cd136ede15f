// Affine resample (ops/resample.h), threaded over output rows (forward) and over images (backward:
// each image's dx is owned by one thread, so the scatter needs no atomics and the sums' order does not
// depend on the thread count). Per output pixel the taps are found once; the channel loop then runs
// without bounds tests when all four taps are inside the image (the common case).
#include <cstring>

#include "fastnn.h"
#include "ops/resample_map.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
constexpr int64_t kRowGrain = 4096;  // output elements per thread chunk, in units of rows below

void fill_pixel(float* out, int64_t C, float v) {
  for (int64_t c = 0; c < C; ++c) out[c] = v;
}

// out[c] = sum_j w_j * tap_j[c] (a tap outside the image reads fill).
void blend(float* out, const float* img, const resample::Taps& k, int64_t C, float fill) {
  if (k.n == 1) {
    if (k.off[0] < 0) return fill_pixel(out, C, fill);
    const float* src = img + k.off[0];
    for (int64_t c = 0; c < C; ++c) out[c] = src[c];  // (not memcpy: C is 1-4 for images, a call costs more)
    return;
  }
  if (k.off[0] >= 0 && k.off[1] >= 0 && k.off[2] >= 0 && k.off[3] >= 0) {
    const float *a = img + k.off[0], *b = img + k.off[1], *c2 = img + k.off[2], *d = img + k.off[3];
    const float w0 = k.w[0], w1 = k.w[1], w2 = k.w[2], w3 = k.w[3];
    for (int64_t c = 0; c < C; ++c) out[c] = w0 * a[c] + w1 * b[c] + w2 * c2[c] + w3 * d[c];
    return;
  }
  for (int64_t c = 0; c < C; ++c) {
    float v = 0.0f;
    for (int j = 0; j < 4; ++j) v += k.w[j] * (k.off[j] < 0 ? fill : img[k.off[j] + c]);
    out[c] = v;
  }
}

void resample_forward(float* y, const float* x, const float* transforms, const ResampleParams& p) {
  const int64_t row = p.OW * p.C;
  parallel_for(0, p.B * p.OH, std::max<int64_t>(1, kRowGrain / std::max<int64_t>(row, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / p.OH, oy = r % p.OH;
      const float* t = transforms + b * p.tstride;
      const float* img = x + b * p.H * p.W * p.C;
      float* out = y + r * row;
      for (int64_t ox = 0; ox < p.OW; ++ox, out += p.C) {
        double ix, iy;
        if (!resample::source_point(t, ox, oy, p, &ix, &iy)) {
          fill_pixel(out, p.C, p.fill_value);
          continue;
        }
        blend(out, img, resample::taps_of(ix, iy, p), p.C, p.fill_value);
      }
    }
  });
}

void resample_backward(float* dx, const float* dy, const float* transforms, const ResampleParams& p) {
  const int64_t image = p.H * p.W * p.C;
  parallel_for(0, p.B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* t = transforms + b * p.tstride;
      float* img = dx + b * image;
      std::memset(img, 0, sizeof(float) * size_t(image));
      const float* g = dy + b * p.OH * p.OW * p.C;
      for (int64_t oy = 0; oy < p.OH; ++oy)
        for (int64_t ox = 0; ox < p.OW; ++ox, g += p.C) {
          double ix, iy;
          if (!resample::source_point(t, ox, oy, p, &ix, &iy)) continue;
          const resample::Taps k = resample::taps_of(ix, iy, p);
          for (int j = 0; j < k.n; ++j) {
            if (k.off[j] < 0) continue;
            float* d = img + k.off[j];
            const float w = k.w[j];
            for (int64_t c = 0; c < p.C; ++c) d[c] += w * g[c];
          }
        }
    }
  });
}
}  // namespace

void fill_resample(ImageOps& t) {
  t.resample_forward = resample_forward;
  t.resample_backward = resample_backward;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
