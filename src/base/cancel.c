/* base/cancel.c — cancellation tokens: one atomic flag each. */
#include "mlxengine/cancel.h"

#include <stdatomic.h>
#include <stdlib.h>

struct mlxe_cancel {
    atomic_bool requested;
};

mlxe_cancel *mlxe_cancel_create(void) {
    mlxe_cancel *cancel = malloc(sizeof *cancel);
    if (cancel) atomic_init(&cancel->requested, false);
    return cancel;
}

void mlxe_cancel_request(mlxe_cancel *cancel) {
    if (cancel) atomic_store_explicit(&cancel->requested, true, memory_order_release);
}

bool mlxe_cancel_is_requested(const mlxe_cancel *cancel) {
    if (!cancel) return false;
    return atomic_load_explicit(&((mlxe_cancel *)cancel)->requested, memory_order_acquire);
}

void mlxe_cancel_reset(mlxe_cancel *cancel) {
    if (cancel) atomic_store_explicit(&cancel->requested, false, memory_order_release);
}

void mlxe_cancel_free(mlxe_cancel *cancel) { free(cancel); }
