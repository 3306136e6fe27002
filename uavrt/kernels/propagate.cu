// CUDA build of the propagation kernels (compiled with NVRTC to a CUBIN at first use).
// One thread per (batch item, pixel) does a whole propagation step for all channels: warp the
// propagated frame, check forward/backward consistency, blend, write. The recurrence over frames
// stays on the host (one launch per step on torch's current stream): each step needs the
// previous step's output frame everywhere, so steps cannot overlap.
// Layouts (all contiguous): latent frames are channel planes sC apart inside a batch item sB
// apart; flows are two component planes fC apart inside a batch item fB apart.
#include "propagate.h"

// This thread's item of a launch over N x H x W (batch item b, pixel px, py; i its flat index).
// False past the end: the grid is rounded up to whole blocks, so the last one is partial.
struct UavItem {
    long long i, b;
    int px, py;
};

__device__ __forceinline__ bool uav_thread_item(int N, int H, int W, UavItem& it) {
    it.i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long hw = (long long)H * W;
    if (it.i >= (long long)N * hw) return false;
    it.b = it.i / hw;
    it.py = (int)((it.i - it.b * hw) / W);
    it.px = (int)(it.i - it.b * hw - (long long)it.py * W);
    return true;
}

template <typename T>
__device__ __forceinline__ void step_one(const T* prev, const T* cur, T* out, const float* flow, const float* check,
                                         int B, int C, int H, int W, long long sB, long long sC, long long fB,
                                         long long fC, int nearest, int copy, float fuse_w, float fuse_c,
                                         float alpha1, float alpha2) {
    UavItem it;
    if (!uav_thread_item(B, H, W, it)) return;
    const UavStep p = uav_make_step(C, H, W, sC, fC, nearest, copy, fuse_w, fuse_c, alpha1, alpha2);
    uav_propagate_pixel(prev + it.b * sB, cur + it.b * sB, out + it.b * sB, flow + it.b * fB, check + it.b * fB, p,
                        it.px, it.py);
}

template <typename T>
__device__ __forceinline__ void warp_one(const T* x, T* out, const float* flow, int N, int C, int H, int W,
                                         long long sB, long long sC, long long fB, long long fC, int nearest) {
    UavItem it;
    if (!uav_thread_item(N, H, W, it)) return;
    uav_warp_pixel(x + it.b * sB, out + it.b * sB, flow + it.b * fB, C, H, W, sC, fC, nearest, it.px, it.py);
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
    UavItem it;
    if (!uav_thread_item(N, H, W, it)) return;
    uav_store(mask, it.i, uav_check_pixel(fw + it.b * fB, bw + it.b * fB, H, W, fC, alpha1, alpha2, it.px, it.py));
}
