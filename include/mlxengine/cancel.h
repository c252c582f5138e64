/* mlxengine/cancel.h — cancellation tokens.
 *
 * Long work (loading, downloading, generating) takes an optional mlxe_cancel
 * and stops with MLXE_ERR_CANCELLED soon after mlxe_cancel_request() is
 * called on it from any thread (a signal handler included: requesting is a
 * single atomic store). */
#ifndef MLXENGINE_CANCEL_H
#define MLXENGINE_CANCEL_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef struct mlxe_cancel mlxe_cancel;

/* Returns a new token, not requested, or NULL when out of memory. */
mlxe_cancel *mlxe_cancel_create(void);
/* Asks the work watching this token to stop. Idempotent. Accepts NULL. */
void mlxe_cancel_request(mlxe_cancel *cancel);
/* True once requested. A NULL token is never requested. */
bool mlxe_cancel_is_requested(const mlxe_cancel *cancel);
/* Clears a request so the token can be used again. Accepts NULL. */
void mlxe_cancel_reset(mlxe_cancel *cancel);
/* Accepts NULL. */
void mlxe_cancel_free(mlxe_cancel *cancel);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
