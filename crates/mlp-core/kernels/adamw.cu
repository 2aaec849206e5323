// Adam(W) updates over the flat parameter buffer. The per-step scalars (bias corrections,
// OneCycle's lr and beta1) are computed on the host in f64 and cast once, exactly as
// mlp_core::cpu::adam_step does, so the per-element arithmetic is the same.

// PyTorch AdamW (_single_tensor_adamw):
//   p ← p·decay (when apply_decay), m ← m + (g − m)(1 − β1), v ← β2·v + (1 − β2)·g²,
//   p ← p − step_size · m / (√v / √bc2 + eps)
extern "C" __global__ void adamw_step(float* p, const float* g, float* m, float* v, int len,
                                      float step_size, float b1, float b2, float bc2_sqrt,
                                      float eps, float decay, int apply_decay) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < len; i += gridDim.x * blockDim.x) {
        const float gi = g[i];
        float pi = p[i];
        if (apply_decay) pi *= decay;
        float mi = m[i];
        mi += (gi - mi) * (1.0f - b1);
        const float vi = v[i] * b2 + (1.0f - b2) * gi * gi;
        const float denom = sqrtf(vi) / bc2_sqrt + eps;
        pi -= step_size * (mi / denom);
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
    }
}

// scikit-learn's Adam: m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g², p ← p − lr_t·m/(√v + eps).
extern "C" __global__ void adam_sklearn_step(float* p, const float* g, float* m, float* v,
                                             int len, float lr_t, float b1, float b2,
                                             float eps) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < len; i += gridDim.x * blockDim.x) {
        const float gi = g[i];
        const float mi = b1 * m[i] + (1.0f - b1) * gi;
        const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr_t * mi / (sqrtf(vi) + eps);
    }
}
