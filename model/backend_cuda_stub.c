/* The CUDA slot of the backend table in builds without CUDA: creation fails with a clear
 * reason. Not for: any kernel code. */
#include "backend.h"

tl_status tl_backend_cuda_create(tl_backend **out, int device, tl_error *err) {
    *out = NULL;
    return tl_fail(err, TL_ERR_UNSUPPORTED, "this build has no CUDA backend (device %d asked for)",
                   device);
}
