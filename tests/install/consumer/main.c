/* A program outside the tree that uses the installed public API. */
#include <mlxengine/mlxengine.h>
#include <stdio.h>

int main(void) {
    mlxe_error err;
    mlxe_error_clear(&err);
    mlxe_cancel *cancel = mlxe_cancel_create();
    mlxe_cancel_request(cancel);
    int ok = mlxe_cancel_is_requested(cancel);
    mlxe_cancel_free(cancel);
    printf("mlxengine %s %s\n", mlxe_version_string(), ok ? "ok" : "broken");
    return ok ? 0 : 1;
}
