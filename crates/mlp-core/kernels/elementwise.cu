// Elementwise kernels of the training step: fused bias + activation, activation (and dropout)
// backward, dropout with a counter-based RNG, batch gather, AXPY.
//
// Activation codes (match mlp_core::backend::act_code): 0 identity, 1 ReLU, 2 ELU (alpha 1).

__device__ __forceinline__ float act_fwd(float v, int act) {
    if (act == 1) return v > 0.0f ? v : 0.0f;
    if (act == 2) return v > 0.0f ? v : expm1f(v);
    return v;
}

// z[r, j] = act(z[r, j] + bias[j]) in place (bias may be null: activation only).
extern "C" __global__ void bias_act_forward(float* z, const float* bias, int rows, int n,
                                            int act) {
    const size_t len = (size_t)rows * n;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < len;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = z[i];
        if (bias != 0) v += bias[i % n];
        z[i] = act_fwd(v, act);
    }
}

// grad = grad · mask (when mask != null: dropout backward) · act'(out), with act' taken from
// the activation's output like PyTorch (ReLU: out > 0; ELU: out + 1 where out <= 0).
extern "C" __global__ void act_backward(float* grad, const float* out, const float* mask,
                                        int len, int act) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < len; i += gridDim.x * blockDim.x) {
        float g = grad[i];
        if (mask != 0) g *= mask[i];
        const float o = out[i];
        if (act == 1) g = o <= 0.0f ? 0.0f : g;
        else if (act == 2) g *= o <= 0.0f ? o + 1.0f : 1.0f;
        grad[i] = g;
    }
}

// dst = a · b elementwise (dropout forward with a given mask).
extern "C" __global__ void mul_into(float* dst, const float* a, const float* b, int len) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < len; i += gridDim.x * blockDim.x)
        dst[i] = a[i] * b[i];
}

// y[i] += s · x[i] (scikit-learn's L2 term on weight gradients).
extern "C" __global__ void axpy(float* y, const float* x, float s, int len) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < len; i += gridDim.x * blockDim.x)
        y[i] += s * x[i];
}

// ---- Philox4x32-10 (Salmon et al., SC'11; Random123's constants) ----
__device__ __forceinline__ void philox_round(unsigned int ctr[4], const unsigned int key[2]) {
    const unsigned int M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    const unsigned int hi0 = __umulhi(M0, ctr[0]), lo0 = M0 * ctr[0];
    const unsigned int hi1 = __umulhi(M1, ctr[2]), lo1 = M1 * ctr[2];
    const unsigned int c0 = hi1 ^ ctr[1] ^ key[0];
    const unsigned int c2 = hi0 ^ ctr[3] ^ key[1];
    ctr[0] = c0; ctr[1] = lo1; ctr[2] = c2; ctr[3] = lo0;
}

__device__ __forceinline__ void philox4x32_10(unsigned int ctr[4], unsigned int key[2]) {
#pragma unroll
    for (int r = 0; r < 10; ++r) {
        if (r > 0) { key[0] += 0x9E3779B9u; key[1] += 0xBB67AE85u; }
        philox_round(ctr, key);
    }
}

// Inverted dropout: element i keeps iff word(i) >= threshold (threshold = p·2³²), where
// word(i) is lane i % 4 of Philox4x32-10(counter = (i / 4, stream_lo, stream_hi, 0),
// key = (seed_lo, seed_hi)). mask[i] = keep ? scale : 0, dst[i] = src[i] · mask[i].
// `stream` identifies (step, block) so every mask of a run is a distinct counter range.
extern "C" __global__ void dropout_philox(float* dst, float* mask, const float* src, int len,
                                          unsigned int threshold, float scale,
                                          unsigned int seed_lo, unsigned int seed_hi,
                                          unsigned int stream_lo, unsigned int stream_hi) {
    const int groups = (len + 3) / 4;
    for (int g = blockIdx.x * blockDim.x + threadIdx.x; g < groups;
         g += gridDim.x * blockDim.x) {
        unsigned int ctr[4] = {(unsigned int)g, stream_lo, stream_hi, 0u};
        unsigned int key[2] = {seed_lo, seed_hi};
        philox4x32_10(ctr, key);
#pragma unroll
        for (int l = 0; l < 4; ++l) {
            const int i = g * 4 + l;
            if (i < len) {
                const float m = ctr[l] >= threshold ? scale : 0.0f;
                mask[i] = m;
                dst[i] = src[i] * m;
            }
        }
    }
}

// Gathers one batch from the device-resident training set: for r < rows, with i = idx[r]:
// xb[r, :] = x[i, :], yb[r] = y[i], wb[r] = class_w[y[i]].
extern "C" __global__ void gather_batch(const float* x, const int* y, const float* class_w,
                                        const int* idx, int rows, int nf, float* xb, int* yb,
                                        float* wb) {
    const size_t len = (size_t)rows * nf;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < len;
         e += (size_t)gridDim.x * blockDim.x) {
        const int r = (int)(e / nf), c = (int)(e % nf);
        const int i = idx[r];
        xb[e] = x[(size_t)i * nf + c];
        if (c == 0) {
            yb[r] = y[i];
            wb[r] = class_w[y[i]];
        }
    }
}
