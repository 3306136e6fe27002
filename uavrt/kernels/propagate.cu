// CUDA build of the propagation kernels (compiled with NVRTC to a CUBIN at first use).
// One thread per (batch item, pixel) does a whole propagation step for all channels: warp the
// propagated frame, check forward/backward consistency, blend, write. The recurrence over frames
// stays on the host (one launch per step on torch's current stream): each step needs the
// previous step's output frame everywhere, so steps cannot overlap.
// Layouts (all contiguous): latent frames are channel planes sC apart inside a batch item sB
// apart; flows are two component planes fC apart inside a batch item fB apart.
#include "propagate.h"

template <typename T>
__device__ __forceinline__ void step_one(const T* prev, const T* cur, T* out, const float* flow, const float* check,
                                         int B, int C, int H, int W, long long sB, long long sC, long long fB,
                                         long long fC, int nearest, int copy, float fuse_w, float fuse_c,
                                         float alpha1, float alpha2) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long hw = (long long)H * W;
    if (i >= (long long)B * hw) return;
    long long b = i / hw;
    int py = (int)((i - b * hw) / W);
    int px = (int)(i - b * hw - (long long)py * W);
    const UavStep p = uav_make_step(C, H, W, sC, fC, nearest, copy, fuse_w, fuse_c, alpha1, alpha2);
    uav_propagate_pixel(prev + b * sB, cur + b * sB, out + b * sB, flow + b * fB, check + b * fB, p, px, py);
}

template <typename T>
__device__ __forceinline__ void warp_one(const T* x, T* out, const float* flow, int N, int C, int H, int W,
                                         long long sB, long long sC, long long fB, long long fC, int nearest) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long hw = (long long)H * W;
    if (i >= (long long)N * hw) return;
    long long b = i / hw;
    int py = (int)((i - b * hw) / W);
    int px = (int)(i - b * hw - (long long)py * W);
    uav_warp_pixel(x + b * sB, out + b * sB, flow + b * fB, C, H, W, sC, fC, nearest, px, py);
}

extern "C" __global__ void uav_propagate_step_f32(const float* prev, const float* cur, float* out, const float* flow,
                                                  const float* check, int B, int C, int H, int W, long long sB,
                                                  long long sC, long long fB, long long fC, int nearest, int copy,
                                                  float fuse_w, float fuse_c, float alpha1, float alpha2) {
    step_one(prev, cur, out, flow, check, B, C, H, W, sB, sC, fB, fC, nearest, copy, fuse_w, fuse_c, alpha1, alpha2);
}

extern "C" __global__ void uav_propagate_step_f16(const __half* prev, const __half* cur, __half* out,
                                                  const float* flow, const float* check, int B, int C, int H, int W,
                                                  long long sB, long long sC, long long fB, long long fC, int nearest,
                                                  int copy, float fuse_w, float fuse_c, float alpha1, float alpha2) {
    step_one(prev, cur, out, flow, check, B, C, H, W, sB, sC, fB, fC, nearest, copy, fuse_w, fuse_c, alpha1, alpha2);
}

extern "C" __global__ void uav_flow_warp_f32(const float* x, float* out, const float* flow, int N, int C, int H, int W,
                                             long long sB, long long sC, long long fB, long long fC, int nearest) {
    warp_one(x, out, flow, N, C, H, W, sB, sC, fB, fC, nearest);
}

extern "C" __global__ void uav_flow_warp_f16(const __half* x, __half* out, const float* flow, int N, int C, int H,
                                             int W, long long sB, long long sC, long long fB, long long fC,
                                             int nearest) {
    warp_one(x, out, flow, N, C, H, W, sB, sC, fB, fC, nearest);
}

// mask: [N, H, W] float 0/1
extern "C" __global__ void uav_fb_check_f32(const float* fw, const float* bw, float* mask, int N, int H, int W,
                                            long long fB, long long fC, float alpha1, float alpha2) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long hw = (long long)H * W;
    if (i >= (long long)N * hw) return;
    long long b = i / hw;
    int py = (int)((i - b * hw) / W);
    int px = (int)(i - b * hw - (long long)py * W);
    mask[i] = uav_check_pixel(fw + b * fB, bw + b * fB, H, W, fC, alpha1, alpha2, px, py);
}
