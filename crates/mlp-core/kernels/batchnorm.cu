// BatchNorm1d (PyTorch semantics) over row-major [rows, n] activations.
// Statistics are two-pass in double (PyTorch's CPU accumulate type, as mlp-core's CPU path);
// column layout as in reduce.cu: block (32, 8), grid.x covers the columns.
//
// Activation codes: 0 identity, 1 ReLU, 2 ELU.

#define BN_COLS 32
#define BN_LANES 8

__device__ __forceinline__ float bn_act(float v, int act) {
    if (act == 1) return v > 0.0f ? v : 0.0f;
    if (act == 2) return v > 0.0f ? v : expm1f(v);
    return v;
}

// Train-mode batch statistics: mean[j] and inv_std[j] = 1/sqrt(var_biased + eps) (as f32),
// and, when update_running != 0, running_mean/var ← momentum·batch + (1 − momentum)·running
// with the unbiased variance (rows > 1).
extern "C" __global__ void bn_stats(const float* z, int rows, int n, double eps,
                                    double momentum, int update_running, float* mean_out,
                                    float* inv_std_out, float* running_mean,
                                    float* running_var) {
    __shared__ double part[BN_LANES][BN_COLS];
    __shared__ double col_mean[BN_COLS];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int j = blockIdx.x * BN_COLS + tx;
    double s = 0.0;
    if (j < n)
        for (int r = ty; r < rows; r += BN_LANES) s += (double)z[(size_t)r * n + j];
    part[ty][tx] = s;
    __syncthreads();
    if (ty == 0) {
        double t = 0.0;
        for (int l = 0; l < BN_LANES; ++l) t += part[l][tx];
        col_mean[tx] = t / (double)rows;
    }
    __syncthreads();
    const double m = col_mean[tx];
    double q = 0.0;
    if (j < n)
        for (int r = ty; r < rows; r += BN_LANES) {
            const double d = (double)z[(size_t)r * n + j] - m;
            q += d * d;
        }
    part[ty][tx] = q;
    __syncthreads();
    if (ty == 0 && j < n) {
        double var_sum = 0.0;
        for (int l = 0; l < BN_LANES; ++l) var_sum += part[l][tx];
        const double var = var_sum / (double)rows;
        inv_std_out[j] = (float)(1.0 / sqrt(var + eps));
        mean_out[j] = (float)m;
        if (update_running) {
            const double unbiased = rows > 1 ? var_sum / (double)(rows - 1) : var;
            running_mean[j] = (float)(momentum * m + (1.0 - momentum) * (double)running_mean[j]);
            running_var[j] = (float)(momentum * unbiased + (1.0 - momentum) * (double)running_var[j]);
        }
    }
}

// Train-mode normalisation fused with the activation, in place:
// xhat = (z − mean)·inv_std (stored), z ← act(gamma·xhat + beta).
extern "C" __global__ void bn_normalize_act(float* z, float* xhat, const float* mean,
                                            const float* inv_std, const float* gamma,
                                            const float* beta, int rows, int n, int act) {
    const size_t len = (size_t)rows * n;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < len;
         i += (size_t)gridDim.x * blockDim.x) {
        const int j = (int)(i % n);
        const float h = (z[i] - mean[j]) * inv_std[j];
        xhat[i] = h;
        z[i] = bn_act(gamma[j] * h + beta[j], act);
    }
}

// Eval mode with running statistics, fused with the activation, in place:
// z ← act(gamma·(z − running_mean)/sqrt(running_var + eps) + beta).
extern "C" __global__ void bn_eval_act(float* z, const float* running_mean,
                                       const float* running_var, const float* gamma,
                                       const float* beta, float eps, int rows, int n, int act) {
    const size_t len = (size_t)rows * n;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < len;
         i += (size_t)gridDim.x * blockDim.x) {
        const int j = (int)(i % n);
        const float h = (z[i] - running_mean[j]) / sqrtf(running_var[j] + eps);
        z[i] = bn_act(gamma[j] * h + beta[j], act);
    }
}

// Train-mode input gradient given the column sums Σdy (= dβ) and Σdy·x̂ (= dγ), in place:
// dy ← gamma·inv_std/N · (N·dy − Σdy − x̂·Σdy·x̂).
extern "C" __global__ void bn_backward_input(float* dy, const float* xhat, const float* gamma,
                                             const float* inv_std, const float* sum_dy,
                                             const float* sum_dy_xhat, int rows, int n) {
    const size_t len = (size_t)rows * n;
    const float nf = (float)rows;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < len;
         i += (size_t)gridDim.x * blockDim.x) {
        const int j = (int)(i % n);
        const float k = gamma[j] * inv_std[j] / nf;
        dy[i] = k * (nf * dy[i] - sum_dy[j] - xhat[i] * sum_dy_xhat[j]);
    }
}
