/* mlxengine/default_model.h — where the embedded default model lives.
 *
 * mlxengine ships a small chat model trained on the King James Bible
 * (docs/DEFAULT_MODEL.md) so that `mlxengine run "PROMPT"` works offline on
 * a fresh machine. It exists in two variants: BF16 (models/default) and
 * 4-bit MLX (models/default-4bit). This finds the folder, looking in order:
 *   1. the environment variable MLXENGINE_DEFAULT_MODEL (a folder path; for
 *      the 4-bit variant MLXENGINE_DEFAULT_MODEL_4BIT), used as given;
 *   2. the source tree's models/<variant> (a path fixed when mlxengine was
 *      compiled), so a build tree works without installing;
 *   3. the installed copy, <prefix>/share/mlxengine/models/<variant>.
 * A folder counts when it holds config.json.
 *
 * Thread-safety: safe from any thread (reads the environment). */
#ifndef MLXENGINE_DEFAULT_MODEL_H
#define MLXENGINE_DEFAULT_MODEL_H

#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef enum mlxe_default_model_variant {
    MLXE_DEFAULT_MODEL_BF16 = 0, /* models/default: the exact weights as trained */
    MLXE_DEFAULT_MODEL_4BIT = 1  /* models/default-4bit: MLX affine 4-bit, group 32 */
} mlxe_default_model_variant;

/* Sets *out to a malloc'd folder path of the default model (free it).
 * Errors: MLXE_ERR_INVALID_ARGUMENT for a bad variant or NULL out;
 * MLXE_ERR_NOT_FOUND when no place holds it (the message lists the places
 * looked and how to name a model instead); MLXE_ERR_OUT_OF_MEMORY. */
mlxe_status mlxe_default_model_path(mlxe_default_model_variant variant, char **out, mlxe_error *err);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif

#endif
