// Image resampling op group: one affine (or projective) resample pass over a batch of NHWC images,
// with TensorFlow's ImageProjectiveTransformV3 semantics (what Keras 3's RandomRotation, RandomZoom,
// RandomTranslation and keras.ops.image.affine_transform compute; Resizing and RandomFlip are affine
// transforms too).
//
// Output pixel (ox, oy) of image b reads the input at
//   k  = t6*ox + t7*oy + 1                (k == 0: the whole pixel is fill_value)
//   ix = (t0*ox + t1*oy + t2) / k,   iy = (t3*ox + t4*oy + t5) / k
// with t = transforms[b * tstride .. + 8] (tstride 0: one transform for every image). The point is
// first mapped by the fill mode (map_coord in ops/resample_map.h), then interpolated (nearest: std::round, half away
// from zero; bilinear: the 4 taps floor/floor+1); a tap outside the image reads fill_value.
// Coordinates are computed in double: products of float entries and integer pixel indices are
// exact, so every ISA (with or without FMA contraction) and the reference find the same taps.
#pragma once
#include <cstdint>

namespace fastnn {
enum ResampleInterp : int { kInterpNearest = 0, kInterpBilinear = 1 };
enum FillMode : int { kFillReflect = 0, kFillWrap = 1, kFillConstant = 2, kFillNearest = 3 };

// x is (B,H,W,C), y is (B,OH,OW,C), transforms is (B or 1, 8) (tstride 8 or 0).
struct ResampleParams {
  int64_t B, H, W, C, OH, OW, tstride;
  int interpolation, fill_mode;
  float fill_value;
};

struct ImageOps {
  void (*resample_forward)(float* y, const float* x, const float* transforms, const ResampleParams& p);
  // dx (B,H,W,C) = the adjoint of the forward (each tap's weight times dy, summed); taps that read
  // fill_value carry no gradient. The transforms get none (they are random constants).
  void (*resample_backward)(float* dx, const float* dy, const float* transforms, const ResampleParams& p);
};
}  // namespace fastnn
