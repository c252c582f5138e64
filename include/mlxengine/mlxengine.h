/* mlxengine/mlxengine.h — the whole public API in one include.
 *
 * Conventions (they hold for every header here):
 *  - Opaque handles named mlxe_<thing>, made by mlxe_<thing>_create/open/load
 *    and released by mlxe_<thing>_free, which accepts NULL.
 *  - Calls that can fail return mlxe_status and fill an optional mlxe_error.
 *    No call prints, exits or aborts on bad input, and none leaks on an
 *    error path.
 *  - Option structs come with an _init() that fills the defaults, so fields
 *    can be added at the end without breaking callers.
 *  - Each handle's header states its thread-safety. */
#ifndef MLXENGINE_H
#define MLXENGINE_H

#include "mlxengine/status.h"
#include "mlxengine/version.h"
#include "mlxengine/log.h"
#include "mlxengine/cancel.h"
#include "mlxengine/diag.h"
#include "mlxengine/hub.h"
#include "mlxengine/model.h"
#include "mlxengine/context.h"
#include "mlxengine/sampler.h"
#include "mlxengine/generate.h"
#include "mlxengine/tokenizer.h"
#include "mlxengine/template.h"
#include "mlxengine/chat.h"
#include "mlxengine/convert.h"

#endif
